-- Daily roll-ups of the request log (issue #6, RELIABILITY 27): requests, tokens and cost per
-- day for each value of each report grouping (`key`, `team`, `user`, `project`, `model`,
-- `provider`, `tag`, and `all` for totals by day), kept up to date with every batch of
-- records. A month's report over the whole gateway then reads a few thousand rows instead
-- of scanning a million. Filled here from the records already written.
CREATE TABLE usage_rollup (
    dim           TEXT NOT NULL,
    value         TEXT NOT NULL,
    day           BIGINT NOT NULL,
    requests      BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_nanos    BIGINT NOT NULL,
    PRIMARY KEY (dim, day, value)
);
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'key', COALESCE(key_name, key_id, '-'), (created_at / 86400) * 86400, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
FROM usage_records GROUP BY COALESCE(key_name, key_id, '-'), (created_at / 86400) * 86400;
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'team', COALESCE(team, '-'), (created_at / 86400) * 86400, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
FROM usage_records GROUP BY COALESCE(team, '-'), (created_at / 86400) * 86400;
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'user', COALESCE(user_name, '-'), (created_at / 86400) * 86400, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
FROM usage_records GROUP BY COALESCE(user_name, '-'), (created_at / 86400) * 86400;
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'project', COALESCE(project, '-'), (created_at / 86400) * 86400, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
FROM usage_records GROUP BY COALESCE(project, '-'), (created_at / 86400) * 86400;
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'model', COALESCE(model, requested_model), (created_at / 86400) * 86400, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
FROM usage_records GROUP BY COALESCE(model, requested_model), (created_at / 86400) * 86400;
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'provider', COALESCE(provider, '-'), (created_at / 86400) * 86400, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
FROM usage_records GROUP BY COALESCE(provider, '-'), (created_at / 86400) * 86400;
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'all', '', (created_at / 86400) * 86400, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
FROM usage_records GROUP BY (created_at / 86400) * 86400;
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'tag', t.tag, (u.created_at / 86400) * 86400, COUNT(*), SUM(u.input_tokens), SUM(u.output_tokens), SUM(u.cost_nanos)
FROM usage_records u JOIN usage_tags t ON t.request_id = u.request_id GROUP BY t.tag, (u.created_at / 86400) * 86400;
