-- Bodies of logged requests (issue #6), kept only where `log_bodies` asks for them: the
-- client's request and the reply it got, and (`all`) the last attempt's request to its
-- provider and the provider's raw response. Each is redacted of secrets and cut to the
-- configured limit before it is written; `*_bytes` is the size that passed (NULL when it was
-- not kept), and `truncated` lists the bodies that were cut (`request,reply`). A table of
-- its own, so that the request log's scans never read them.
CREATE TABLE request_bodies (
    request_id              TEXT PRIMARY KEY,
    created_at              BIGINT NOT NULL,
    provider                TEXT,
    request                 TEXT,
    request_bytes           BIGINT,
    reply                   TEXT,
    reply_bytes             BIGINT,
    provider_request        TEXT,
    provider_request_bytes  BIGINT,
    provider_response       TEXT,
    provider_response_bytes BIGINT,
    truncated               TEXT NOT NULL
);
