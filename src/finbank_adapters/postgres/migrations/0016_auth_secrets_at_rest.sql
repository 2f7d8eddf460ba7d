-- Secrets at rest: auth_users.totp_secret and pending_totp_secret now hold
-- envelope-encrypted values (finbank_adapters.crypto: "fbx1." + KEK id +
-- wrapped data key + nonce + AES-256-GCM ciphertext). secrets_key_id is the
-- id of the key-encryption key that sealed the row's secrets (NULL: no secret,
-- or a plaintext secret written before this migration), so the re-wrap
-- command finds the rows still sealed with an old key, or not sealed at all,
-- without reading every row. Existing plaintext secrets stay readable and are
-- sealed by `python -m finbank_adapters.crypto.rewrap` or on their next write.

ALTER TABLE auth_users ADD COLUMN IF NOT EXISTS secrets_key_id text;

CREATE INDEX IF NOT EXISTS auth_users_secrets_key_id ON auth_users (secrets_key_id);
