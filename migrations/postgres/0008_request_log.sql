-- The request log (issue #6): what the client spoke (chat, messages, responses, gemini,
-- embeddings), the HTTP status it got (0 when it left first), why a request failed (the
-- error's code and message), the time to the reply's first byte, reasoning tokens,
-- translation warnings, and whether a cache answered.
ALTER TABLE usage_records ADD COLUMN client_schema TEXT;
ALTER TABLE usage_records ADD COLUMN http_status INTEGER;
ALTER TABLE usage_records ADD COLUMN error_class TEXT;
ALTER TABLE usage_records ADD COLUMN error TEXT;
ALTER TABLE usage_records ADD COLUMN ttft_ms BIGINT;
ALTER TABLE usage_records ADD COLUMN reasoning_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN warnings TEXT;
ALTER TABLE usage_records ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0;
