-- Routing decisions in the usage record (issue #4): the rule that served, whether a
-- fallback served, every attempt (JSON), the time to the reply's end, and for a mirror's
-- shadow request the primary's id and the mirroring rule. `output` keeps the reply text of
-- a mirrored request and of its shadow, for comparison.
ALTER TABLE usage_records ADD COLUMN route TEXT;
ALTER TABLE usage_records ADD COLUMN fallback INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN attempts TEXT;
ALTER TABLE usage_records ADD COLUMN latency_ms BIGINT;
ALTER TABLE usage_records ADD COLUMN mirror_of TEXT;
ALTER TABLE usage_records ADD COLUMN mirror_route TEXT;
ALTER TABLE usage_records ADD COLUMN output TEXT;
CREATE INDEX usage_records_mirror_of ON usage_records (mirror_of);
CREATE INDEX usage_records_mirror_route ON usage_records (mirror_route, created_at);
