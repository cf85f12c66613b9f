-- Dashboard sign-ins (`ui::session`). The session id lives only in the browser's cookie;
-- the store keeps its SHA-256 (`id_hash`), who signed in (`who`: 'admin' or 'key') and
-- the SHA-256 of the credential they signed in with (`credential_hash`: the admin token's,
-- or the key's, as `virtual_keys.hash`), so that a rotated admin token or a revoked key
-- ends its sessions. A signed-out session keeps its row, revoked, until it expires.
CREATE TABLE ui_sessions (
    id_hash TEXT PRIMARY KEY,
    who TEXT NOT NULL,
    credential_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);
