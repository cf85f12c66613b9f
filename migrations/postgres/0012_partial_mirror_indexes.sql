-- Only a mirror's shadow requests have `mirror_of` and `mirror_route`: index those rows
-- alone, so that every other record (nearly all of them) costs two B-tree inserts fewer.
-- Their queries (`mirror_of = $1`, `mirror_route = $1 AND created_at ...`) imply the
-- indexes' conditions, so they keep using them. Not CONCURRENTLY: that waits for every
-- open transaction, including an instance waiting on the migrator's lock, and deadlocks
-- when instances start together. Building them blocks writes to the table for one scan of
-- it (about a second a million rows); those writes come from the log writers' queues, off
-- the request path, which wait and drain after (RELIABILITY 26), so no request waits.
DROP INDEX usage_records_mirror_of;
DROP INDEX usage_records_mirror_route;
CREATE INDEX usage_records_mirror_of ON usage_records (mirror_of) WHERE mirror_of IS NOT NULL;
CREATE INDEX usage_records_mirror_route ON usage_records (mirror_route, created_at) WHERE mirror_route IS NOT NULL;
