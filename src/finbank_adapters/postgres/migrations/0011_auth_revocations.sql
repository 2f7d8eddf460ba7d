-- Revoked access-token ids (jti) and login sessions (sid / origin_jti): the
-- durable side of the token denylist. Redis caches it; a flushed or failed-over
-- Redis is rebuilt from here, so a revoked token never comes back to life.
-- token_hash is the sha256 (hex) of the id, never the bearer id itself.
-- revoked_at (the writer's clock) lets a cache catch up on recent revocations
-- without reloading them all.

CREATE TABLE auth_revocations (
    token_hash  text        PRIMARY KEY,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz NOT NULL
);

CREATE INDEX auth_revocations_expires_at ON auth_revocations (expires_at);
CREATE INDEX auth_revocations_revoked_at ON auth_revocations (revoked_at);
