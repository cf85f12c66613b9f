-- Spend and usage (issue #3).
--
-- usage_records: one row per admitted request, written when it ends (also on failure or
-- client disconnect): who called, what served, the tokens and the cost in nano-USD.
CREATE TABLE usage_records (
    request_id         TEXT PRIMARY KEY,
    created_at         BIGINT NOT NULL,
    key_id             TEXT,
    key_name           TEXT,
    user_name          TEXT,
    team               TEXT,
    project            TEXT,
    end_user           TEXT,
    provider           TEXT,
    model              TEXT,
    requested_model    TEXT NOT NULL,
    input_tokens       BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    cache_read_tokens  BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cost_nanos         BIGINT NOT NULL,
    -- ok | error | cancelled
    status             TEXT NOT NULL
);
CREATE INDEX usage_records_created ON usage_records (created_at);
CREATE INDEX usage_records_key ON usage_records (key_id, created_at);
CREATE INDEX usage_records_team ON usage_records (team, created_at);

-- Tags of a request (`x-gatehouse-tags: feature=search`), one row each.
CREATE TABLE usage_tags (
    request_id TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (request_id, tag)
);
CREATE INDEX usage_tags_tag ON usage_tags (tag);

-- Budget counters when no Redis is configured: one row per budget and period, named
-- `b:<scope>:<name>:<unit>:<start>:<end>`. `reserved` is the sum of the live reservations
-- below; it is kept here so that admission reads one row.
CREATE TABLE budget_counters (
    counter    TEXT PRIMARY KEY,
    spent      BIGINT NOT NULL,
    reserved   BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Worst-case amounts held for requests in flight, until they settle. A reservation whose
-- lease passed (its instance died) is dropped by the next admission on that counter.
CREATE TABLE budget_reservations (
    request_id  TEXT NOT NULL,
    counter     TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    PRIMARY KEY (request_id, counter)
);
CREATE INDEX budget_reservations_lease ON budget_reservations (counter, lease_until);

-- Alerts sent (50, 80, 100 %), so that each goes out once per period whatever the number of
-- instances.
CREATE TABLE budget_alerts (
    counter   TEXT NOT NULL,
    threshold INTEGER NOT NULL,
    sent_at   BIGINT NOT NULL,
    PRIMARY KEY (counter, threshold)
);

-- Limits of stored keys (JSON: budgets and rate limit), NULL = none of their own.
ALTER TABLE virtual_keys ADD COLUMN policy TEXT;
