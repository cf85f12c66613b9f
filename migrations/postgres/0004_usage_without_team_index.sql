-- Reports by team scan the time range (usage_records_created) and filter; an index per team
-- cost every write a B-tree insert and no query needed it.
DROP INDEX usage_records_team;
