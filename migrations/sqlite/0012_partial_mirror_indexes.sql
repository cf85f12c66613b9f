-- Only a mirror's shadow requests have `mirror_of` and `mirror_route`: index those rows
-- alone, so that every other record (nearly all of them) costs two B-tree inserts fewer.
-- Their queries (`mirror_of = ?`, `mirror_route = ? AND created_at ...`) imply the indexes'
-- conditions, so they keep using them.
DROP INDEX usage_records_mirror_of;
DROP INDEX usage_records_mirror_route;
CREATE INDEX usage_records_mirror_of ON usage_records (mirror_of) WHERE mirror_of IS NOT NULL;
CREATE INDEX usage_records_mirror_route ON usage_records (mirror_route, created_at) WHERE mirror_route IS NOT NULL;
