-- A team's reports from roll-ups too (issue #6: a team admin's month under 200 ms at a
-- million rows): every grouping of 0009 again per team, as `team/key`, `team/model`...,
-- with values `{team}` + U+001F + `{value}`, filled here from the records that have a team.
-- Later batches add to them as they add to the others.
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'team/key', team || chr(31) || COALESCE(key_name, key_id, '-'), (created_at / 86400) * 86400, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
FROM usage_records WHERE team IS NOT NULL GROUP BY team, COALESCE(key_name, key_id, '-'), (created_at / 86400) * 86400;
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'team/user', team || chr(31) || COALESCE(user_name, '-'), (created_at / 86400) * 86400, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
FROM usage_records WHERE team IS NOT NULL GROUP BY team, COALESCE(user_name, '-'), (created_at / 86400) * 86400;
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'team/project', team || chr(31) || COALESCE(project, '-'), (created_at / 86400) * 86400, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
FROM usage_records WHERE team IS NOT NULL GROUP BY team, COALESCE(project, '-'), (created_at / 86400) * 86400;
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'team/model', team || chr(31) || COALESCE(model, requested_model), (created_at / 86400) * 86400, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
FROM usage_records WHERE team IS NOT NULL GROUP BY team, COALESCE(model, requested_model), (created_at / 86400) * 86400;
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'team/provider', team || chr(31) || COALESCE(provider, '-'), (created_at / 86400) * 86400, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
FROM usage_records WHERE team IS NOT NULL GROUP BY team, COALESCE(provider, '-'), (created_at / 86400) * 86400;
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'team/all', team || chr(31) || '', (created_at / 86400) * 86400, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
FROM usage_records WHERE team IS NOT NULL GROUP BY team, (created_at / 86400) * 86400;
INSERT INTO usage_rollup (dim, value, day, requests, input_tokens, output_tokens, cost_nanos)
SELECT 'team/tag', u.team || chr(31) || t.tag, (u.created_at / 86400) * 86400, COUNT(*), SUM(u.input_tokens), SUM(u.output_tokens), SUM(u.cost_nanos)
FROM usage_records u JOIN usage_tags t ON t.request_id = u.request_id WHERE u.team IS NOT NULL GROUP BY u.team, t.tag, (u.created_at / 86400) * 86400;
