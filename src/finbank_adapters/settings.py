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
        "pix": "memory",
        "accounts": "memory",
        "users": "memory",
        "events": "memory",
        "identity": "local",
        "challenges": "memory",
        "throttle": "memory",
        "denylist": "memory",
        "refresh_tokens": "memory",
    },
    Profile.LOCAL: {
        "ledger": "postgres",
        "pix": "dynamodb",
        "accounts": "postgres",
        "users": "postgres",
        "events": "postgres",
        "identity": "local",
        "challenges": "redis",
        "throttle": "redis",
        "denylist": "redis_postgres",
        "refresh_tokens": "redis",
    },
    Profile.AWS: {
        "ledger": "postgres",
        "pix": "dynamodb",
        "accounts": "postgres",
        "users": "postgres",
        "events": "postgres",
        "identity": "cognito",
        "challenges": "redis",
        "throttle": "redis",
        "denylist": "redis_postgres",
        "refresh_tokens": "redis",
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
    throttle_backend: str = "memory"
    denylist_backend: str = "memory"
    refresh_tokens_backend: str = "memory"

    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/test"
    postgres_pool_min: int = 1
    postgres_pool_max: int = 10
    redis_url: str = "redis://127.0.0.1:6379/0"
    kafka_bootstrap: str = "127.0.0.1:9092"
    # -- Kafka / MSK and the outbox relay (docs/events.md) ----------------------
    kafka_client_id: str = "finbank"
    #: PLAINTEXT, SSL or SASL_SSL; empty: SASL_SSL on the aws profile (MSK), else PLAINTEXT
    kafka_security_protocol: str = ""
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    #: unset: on for the aws profile (MSK), off elsewhere (Tansu rejects the handshake)
    kafka_idempotent_producer: bool | None = None
    kafka_acks: str = "all"
    kafka_topic_prefix: str = ""
    relay_batch_size: int = 500
    #: batches a relay produces at once (each of other aggregates) while it claims the next
    relay_max_in_flight: int = 2
    #: outbox lease per claimed batch; must exceed the Kafka request timeout (30 s)
    relay_lease_seconds: float = 60.0
    relay_idle_seconds: float = 0.2

    #: signing secret of the self-hosted provider's JWTs; random per process if unset
    jwt_secret: str = ""
    jwt_issuer: str = "finbank-local"
    jwt_audience: str = "finbank"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600

    # -- auth: MFA challenges, lockout, rate limit (docs/auth.md) ---------------
    #: lifetime of a stored MFA challenge; never longer than the provider's session
    mfa_challenge_ttl_seconds: int = 180
    mfa_max_attempts: int = 5
    lockout_max_failures: int = 10
    lockout_window_seconds: int = 15 * 60
    lockout_seconds: int = 30 * 60
    lockout_exponential: bool = False
    lockout_max_seconds: int = 24 * 3600
    #: requests per minute per client address on /v1/auth/*
    auth_rate_limit_per_minute: int = 60
    redis_key_prefix: str = "finbank:"
    redis_timeout_seconds: float = 2.0

    # -- AWS / Cognito --------------------------------------------------------
    aws_region: str = "sa-east-1"
    #: e.g. a moto server; empty for the real AWS endpoints
    aws_endpoint_url: str = ""
    cognito_user_pool_id: str = ""
    cognito_client_id: str = ""
    #: only for app clients with a secret (SECRET_HASH); keep it in a secret store
    cognito_client_secret: str = ""
    #: token issuer; default https://cognito-idp.{aws_region}.amazonaws.com/{pool id}
    cognito_issuer: str = ""
    #: default {cognito_issuer}/.well-known/jwks.json (moto: {endpoint}/{pool id}/...)
    cognito_jwks_url: str = ""
    #: the app client's AuthSessionValidity (Cognito default 3 minutes)
    cognito_auth_session_seconds: int = 180

    # -- files and daily reconciliation (docs/reconciliation.md) -------------
    #: where statements are read and reports written: local, s3 or memory
    files_backend: str = "local"
    files_root: str = "finbank-files"
    files_s3_bucket: str = ""
    files_s3_prefix: str = ""
    #: the day's settlement statement, ``{date}`` is YYYY-MM-DD (.csv or .jsonl)
    statement_path: str = "statements/{date}.csv"
    report_prefix: str = "reports/{date}"
    reconciliation_tolerance_seconds: int = 300
    reconciliation_max_hold_age_seconds: int = 3600

    #: the bank's ISPB (8 chars), used in PIX end-to-end ids
    ispb: str = "99999999"
    sandbox: bool = True

    # -- PIX (ARCHITECTURE.md "PIX flows"; finbank_adapters/pix_wiring.py) ---------
    #: where PIX payments, keys, charges, limits and devices live: memory or dynamodb
    pix_backend: str = "memory"
    #: the DynamoDB table of PIX records (``finbank aws bootstrap`` creates it)
    pix_table_name: str = "finbank-pix"
    #: base of dynamic BR Code locations, without scheme: ``{base}/cob/{id}``
    pix_location_base_url: str = "pix.finbank.example/v2"
    pix_merchant_city: str = "SAO PAULO"
    #: settle outgoing payments within the request (when no settlement worker runs);
    #: from_env turns it on for the memory profile only (local/aws run the settlement worker)
    pix_inline_settlement: bool = True
    #: ledger timeout of pending PIX transfers; 0 = until settled or voided by reconciliation
    pix_pending_timeout_seconds: int = 0
    pix_charge_expiry_seconds: int = 24 * 3600
    pix_max_keys_individual: int = 5
    pix_max_keys_company: int = 20
    pix_refund_window_days: int = 90
    #: ``finbank_core.pix.limits.LimitSettings`` as JSON; empty for the defaults
    pix_limits_json: str = ""
    #: the simulated SPI of the memory profile: latency, timeout, peer bank
    pix_spi_latency_seconds: float = 0.0
    pix_spi_timeout_seconds: float = 10.0
    pix_sandbox_peer_ispb: str = "88888888"

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
        values.setdefault("pix_inline_settlement", profile is Profile.MEMORY)
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"invalid setting: {exc}") from None

    def uses_redis(self) -> bool:
        backends = (
            self.challenges_backend,
            self.throttle_backend,
            self.denylist_backend,
            self.refresh_tokens_backend,
        )
        return "redis" in backends or self.denylist_backend == "redis_postgres"

    def cognito_issuer_url(self) -> str:
        if self.cognito_issuer:
            return self.cognito_issuer.rstrip("/")
        self.require_cognito()
        return f"https://cognito-idp.{self.aws_region}.amazonaws.com/{self.cognito_user_pool_id}"

    def cognito_jwks_endpoint(self) -> str:
        return self.cognito_jwks_url or f"{self.cognito_issuer_url()}/.well-known/jwks.json"

    def require_cognito(self) -> None:
        if not self.cognito_user_pool_id or not self.cognito_client_id:
            raise SettingsError(
                "FINBANK_COGNITO_USER_POOL_ID and FINBANK_COGNITO_CLIENT_ID are required "
                "for the cognito identity backend"
            )

    def __repr__(self) -> str:
        # Secrets and DSNs (which may carry passwords) never reach a log or a traceback.
        shown = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if name in _SECRET_FIELDS or name.endswith(("_dsn", "_url")):
                value = "***" if value else value
            shown.append(f"{name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def jwt_secret_bytes(self) -> bytes:
        if self.jwt_secret:
            return self.jwt_secret.encode()
        if self.profile is not Profile.MEMORY:
            raise SettingsError("FINBANK_JWT_SECRET is required outside the memory profile")
        return _PROCESS_SECRET


_PROCESS_SECRET = secrets.token_bytes(32)
_SECRET_FIELDS = frozenset({"jwt_secret", "cognito_client_secret", "kafka_sasl_password"})
