-- Virtual keys: the credential clients present to Gatehouse. Only a SHA-256 of the key is
-- kept; `hint` (prefix and last four characters) is what listings show.
CREATE TABLE virtual_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    hint        TEXT NOT NULL,
    user_name   TEXT,
    team        TEXT,
    project     TEXT,
    -- JSON array of model globs; NULL = every model the team may use.
    models      TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX virtual_keys_team ON virtual_keys (team);
