"""The self-hosted identity provider: argon2id passwords, TOTP, signed JWTs."""

from finbank_adapters.local_auth.provider import LocalIdentityProvider
from finbank_adapters.local_auth.tokens import LocalTokenIssuer, LocalTokenVerifier

__all__ = ["LocalIdentityProvider", "LocalTokenIssuer", "LocalTokenVerifier"]
