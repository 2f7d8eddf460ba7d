"""Typed settings, read once from ``FINBANK_*`` environment variables.

``FINBANK_PROFILE`` picks a preset (``memory``, ``local``, ``aws``); a
per-port variable (``FINBANK_LEDGER_BACKEND``, ...) overrides the preset for
that port alone. Nothing here connects to anything.
"""

from __future__ import annotations

import enum
import os
import secrets
from collections.abc import Mapping

import msgspec


class Profile(enum.StrEnum):
    MEMORY = "memory"
    LOCAL = "local"
    AWS = "aws"


#: backend per port for each profile; per-port env variables override these
PROFILE_BACKENDS: dict[Profile, dict[str, str]] = {
    Profile.MEMORY: {
        "ledger": "memory",
        "accounts": "memory",
        "users": "memory",
        "events": "memory",
        "identity": "local",
        "challenges": "memory",
    },
    Profile.LOCAL: {
        "ledger": "postgres",
        "accounts": "postgres",
        "users": "postgres",
        "events": "postgres",
        "identity": "local",
        "challenges": "redis",
    },
    Profile.AWS: {
        "ledger": "postgres",
        "accounts": "postgres",
        "users": "postgres",
        "events": "postgres",
        "identity": "cognito",
        "challenges": "redis",
    },
}


class SettingsError(ValueError):
    """A setting is missing or malformed; raised at startup, never at import."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    profile: Profile = Profile.MEMORY
    ledger_backend: str = "memory"
    accounts_backend: str = "memory"
    users_backend: str = "memory"
    events_backend: str = "memory"
    identity_backend: str = "local"
    challenges_backend: str = "memory"

    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/test"
    postgres_pool_min: int = 1
    postgres_pool_max: int = 10
    redis_url: str = "redis://127.0.0.1:6379/0"
    kafka_bootstrap: str = "127.0.0.1:9092"

    #: signing secret of the self-hosted provider's JWTs; random per process if unset
    jwt_secret: str = ""
    jwt_issuer: str = "finbank-local"
    jwt_audience: str = "finbank"
    access_token_ttl_seconds: int = 900

    #: the bank's ISPB (8 chars), used in PIX end-to-end ids
    ispb: str = "99999999"
    sandbox: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        raw_profile = env.get("FINBANK_PROFILE", Profile.MEMORY.value)
        try:
            profile = Profile(raw_profile)
        except ValueError:
            choices = ", ".join(p.value for p in Profile)
            raise SettingsError(f"FINBANK_PROFILE must be one of {choices}") from None
        values: dict[str, object] = {"profile": profile}
        for port, backend in PROFILE_BACKENDS[profile].items():
            values[f"{port}_backend"] = env.get(f"FINBANK_{port.upper()}_BACKEND", backend)
        for field in cls.__struct_fields__:
            if field in values or field.endswith("_backend"):
                continue
            key = f"FINBANK_{field.upper()}"
            if key in env:
                values[field] = env[key]
        values.setdefault("sandbox", profile is Profile.MEMORY)
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"invalid setting: {exc}") from None

    def jwt_secret_bytes(self) -> bytes:
        if self.jwt_secret:
            return self.jwt_secret.encode()
        if self.profile is not Profile.MEMORY:
            raise SettingsError("FINBANK_JWT_SECRET is required outside the memory profile")
        return _PROCESS_SECRET


_PROCESS_SECRET = secrets.token_bytes(32)
