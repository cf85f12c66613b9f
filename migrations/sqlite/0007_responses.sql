-- Stored Responses API responses (issue #5): what `previous_response_id` continues and
-- `GET /v1/responses/{id}` returns. `owner` is the id of the virtual key that made it (NULL
-- on a gateway without keys); only that key sees the row. `input` holds this request's own
-- input items as a JSON array (earlier turns are reached through `previous_response_id`);
-- `response` the response object as returned, its `output` items included.
CREATE TABLE responses (
    id TEXT PRIMARY KEY,
    owner TEXT,
    previous_response_id TEXT,
    created_at BIGINT NOT NULL,
    input TEXT NOT NULL,
    response TEXT NOT NULL
);
CREATE INDEX responses_created_at ON responses (created_at);
