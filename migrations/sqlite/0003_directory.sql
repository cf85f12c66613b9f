-- Teams, users and projects managed through the admin API (issue #3). The config file may
-- define more; a name defined in both is the config's.
CREATE TABLE teams (
    name       TEXT PRIMARY KEY,
    -- JSON array of model globs; NULL = every model.
    models     TEXT,
    -- JSON budgets and rate limit (config::StoredPolicy); NULL = none.
    policy     TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    team       TEXT,
    policy     TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX users_team ON users (team);

CREATE TABLE projects (
    name       TEXT PRIMARY KEY,
    team       TEXT,
    policy     TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX projects_team ON projects (team);

-- `team_admin`: the key administers its team through the admin API. NULL: an ordinary key.
ALTER TABLE virtual_keys ADD COLUMN role TEXT;
