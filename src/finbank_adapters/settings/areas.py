"""The settings of each area (``settings.postgres``, ``settings.kafka``, ...).

Every field is read from one ``FINBANK_*`` variable: ``FINBANK_<AREA>_<FIELD>``
unless :data:`VARIABLE_NAMES` gives the name it had before the split (the
names deployments already use). ``repr`` masks secrets, DSNs and URLs.
"""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar

import msgspec

NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
#: a wait that 0 would break (a 0 s socket timeout fails every call; a 0 s flush spins)
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
#: a TCP port; 0 where the field says it means none
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
#: what asyncpg takes: a malformed DSN is a settings error at start, not a driver's traceback
PostgresDsn = Annotated[str, msgspec.Meta(pattern=r"^postgres(ql)?://")]
#: what redis-py's ``from_url`` takes (TCP, TLS, Unix socket)
RedisUrl = Annotated[str, msgspec.Meta(pattern=r"^(rediss?|unix)://")]


class Area(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the area structs: a ``repr`` that never shows a secret."""

    #: fields masked in ``repr`` besides every ``*dsn`` and ``*url``
    secret_fields: ClassVar[frozenset[str]] = frozenset()

    def __repr__(self) -> str:
        shown = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if name in self.secret_fields or name.endswith(("dsn", "url")):
                value = "***" if value else value
            shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


class PostgresOptions(Area, frozen=True, kw_only=True):
    dsn: PostgresDsn = "postgresql://postgres@127.0.0.1:5432/test"
    pool_min: NonNegative = 1
    pool_max: Positive = 10
    #: group commit of the ledger's writes (docs/postgres.md): with this many transfer
    #: calls in flight, the callers that arrive wait and are sent together as one call,
    #: one transaction and one commit; 0 sends every call at once (off)
    ledger_group_max_in_flight: NonNegative = 1
    #: most transfers one grouped call carries (a bigger batch is sent alone)
    ledger_group_max_transfers: Positive = 512
    #: a grouped call of plain transfers carries at most its share of the callers in the
    #: ledger (one part in ledger_group_max_in_flight + 1; the others wait for the next
    #: slot); false: every waiting caller goes in one group
    ledger_group_split: bool = True
    #: coalesced reads of customer accounts (docs/postgres.md): with this many reads of
    #: accounts by id in flight, the callers that arrive wait and are read together in
    #: one statement; 0 sends every read at once (off)
    accounts_read_max_in_flight: NonNegative = 1


class RedisOptions(Area, frozen=True, kw_only=True):
    url: RedisUrl = "redis://127.0.0.1:6379/0"
    key_prefix: str = "finbank:"
    timeout_seconds: PositiveSeconds = 2.0


class KafkaOptions(Area, frozen=True, kw_only=True):
    """Kafka / MSK (docs/events.md)."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"sasl_password"})

    bootstrap: str = "127.0.0.1:9092"
    client_id: str = "finbank"
    #: PLAINTEXT, SSL or SASL_SSL; empty: SASL_SSL on the aws profile (MSK), else PLAINTEXT
    security_protocol: str = ""
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: str = ""
    #: unset: on for the aws profile (MSK), off elsewhere (Tansu rejects the handshake)
    idempotent_producer: bool | None = None
    acks: str = "all"
    topic_prefix: str = ""
    #: consumer group of ``finbank worker pix-settlement`` (and its inbox's consumer name);
    #: every worker of one deployment shares it. Same as
    #: ``finbank_adapters.workers.pix_settlement.SETTLEMENT_GROUP`` by default
    settlement_group: Annotated[str, msgspec.Meta(min_length=1)] = "finbank-pix-settlement"


class RelayOptions(Area, frozen=True, kw_only=True):
    """The outbox relay (docs/events.md)."""

    batch_size: Positive = 500
    #: batches a relay produces at once (each of other aggregates) while it claims the next
    max_in_flight: Positive = 2
    #: outbox lease per claimed batch; must exceed the Kafka request timeout (30 s)
    lease_seconds: Seconds = 60.0
    idle_seconds: Seconds = 0.2
    #: the next claim's delay after a batch that was not full (Kafka's linger.ms for
    #: the outbox): fewer, larger claims under a steady trickle; 0: claim at once
    linger_seconds: Seconds = 0.0


class JwtOptions(Area, frozen=True, kw_only=True):
    """The self-hosted identity provider's tokens."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"secret"})

    #: signing secret; random per process if unset (memory profile only)
    secret: str = ""
    issuer: str = "finbank-local"
    audience: str = "finbank"


class AuthOptions(Area, frozen=True, kw_only=True):
    """Token lifetimes, MFA challenges, lockout, rate limit, secrets at rest (docs/auth.md)."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"secrets_keys"})

    access_token_ttl_seconds: Positive = 900
    refresh_token_ttl_seconds: Positive = 30 * 24 * 3600
    #: lifetime of a stored MFA challenge; never longer than the provider's session
    mfa_challenge_ttl_seconds: Positive = 180
    mfa_max_attempts: Positive = 5
    lockout_max_failures: Positive = 10
    lockout_window_seconds: Positive = 15 * 60
    lockout_seconds: NonNegative = 30 * 60
    lockout_exponential: bool = False
    lockout_max_seconds: NonNegative = 24 * 3600
    #: requests per minute per client address on /v1/auth/*
    rate_limit_per_minute: Positive = 60
    #: lifetime of a step-up token (docs/auth.md, "Step-up")
    step_up_ttl_seconds: Positive = 300
    #: key-encryption keys for TOTP secrets and MFA sessions at rest: "id:base64-32-bytes,..."
    #: (the first seals; the others only open). Unset: see docs/auth.md, "Secrets at rest"
    secrets_keys: str = ""
    #: a KMS key (id, ARN or alias) that wraps the data keys instead (the aws profile)
    secrets_kms_key_id: str = ""
    #: KMS keys used before ``secrets_kms_key_id``, comma-separated: they only open
    secrets_previous_kms_key_ids: str = ""


class HttpOptions(Area, frozen=True, kw_only=True):
    """The API: input limits, headers, metrics listener, trusted proxies (docs/operations.md)."""

    #: largest request body accepted (413 above)
    max_body_bytes: Positive = 1024 * 1024
    #: deepest nesting of arrays and objects accepted in a JSON body (400 above)
    max_json_depth: Positive = 32
    #: ``Strict-Transport-Security`` max-age; 0 sends no HSTS header (set it behind TLS)
    hsts_max_age_seconds: NonNegative = 0
    hsts_include_subdomains: bool = False
    #: port of the separate ``/metrics`` listener of ``finbank serve`` (9464 is usual); 0: none
    metrics_port: Port = 0
    metrics_host: str = "127.0.0.1"
    #: also answer ``/metrics`` on the public API port (off: metrics stay off the API)
    metrics_on_api_port: bool = False
    #: proxies trusted for ``X-Forwarded-For``/``-Proto`` (uvicorn's forwarded_allow_ips):
    #: comma-separated addresses or CIDRs; empty trusts no proxy
    forwarded_allow_ips: str = ""


class AwsOptions(Area, frozen=True, kw_only=True):
    region: str = "sa-east-1"
    #: e.g. a moto server; empty for the real AWS endpoints
    endpoint_url: str = ""


class CognitoSignIn(enum.StrEnum):
    """What users of the pool type to log in (the pool's ``UsernameAttributes``)."""

    USERNAME = "username"
    EMAIL = "email"
    PHONE_NUMBER = "phone_number"


class CognitoOptions(Area, frozen=True, kw_only=True):
    secret_fields: ClassVar[frozenset[str]] = frozenset({"client_secret"})

    user_pool_id: str = ""
    client_id: str = ""
    #: only for app clients with a secret (SECRET_HASH); keep it in a secret store
    client_secret: str = ""
    #: token issuer; default https://cognito-idp.{aws region}.amazonaws.com/{pool id}
    issuer: str = ""
    #: default {issuer}/.well-known/jwks.json (moto: {endpoint}/{pool id}/...)
    jwks_url: str = ""
    #: the app client's AuthSessionValidity (Cognito default 3 minutes)
    auth_session_seconds: Positive = 180
    #: the pool's sign-in attribute when users log in with it instead of a username
    #: (``UsernameAttributes``: ``email`` or ``phone_number``; ``username``: none).
    #: Step-up and password change count towards the lockout of the name users log in
    #: with; with this unset in such a pool they counted under the pool's generated
    #: username, a lockout of its own
    sign_in_attribute: CognitoSignIn = CognitoSignIn.USERNAME


class FilesOptions(Area, frozen=True, kw_only=True):
    """The file store (its backend is ``settings.backends.files``)."""

    #: directory of the ``local`` backend
    root: str = "finbank-files"
    s3_bucket: str = ""
    s3_prefix: str = ""


class ReconciliationOptions(Area, frozen=True, kw_only=True):
    """The daily reconciliation job (docs/reconciliation.md)."""

    #: the day's settlement statement, ``{date}`` is YYYY-MM-DD (.csv or .jsonl)
    statement_path: str = "statements/{date}.csv"
    report_prefix: str = "reports/{date}"
    tolerance_seconds: NonNegative = 300
    max_hold_age_seconds: NonNegative = 3600


class PixOptions(Area, frozen=True, kw_only=True):
    """PIX (docs/pix.md); its stores' backend is ``settings.backends.pix``."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"cursor_secret"})

    #: the bank's ISPB (8 chars), used in PIX end-to-end ids
    ispb: str = "99999999"
    #: sandbox routes (simulated incoming PIX, ...); from_env: on for the memory profile
    sandbox: bool = True
    #: the DynamoDB table of PIX records (``finbank aws bootstrap`` creates it)
    table_name: str = "finbank-pix"
    #: base of dynamic BR Code locations, without scheme: ``{base}/cob/{id}``
    location_base_url: str = "pix.finbank.example/v2"
    merchant_city: str = "SAO PAULO"
    #: settle outgoing payments within the request (when no settlement worker runs);
    #: from_env turns it on for the memory profile only (local/aws run the settlement worker)
    inline_settlement: bool = True
    #: ledger timeout of pending PIX transfers; 0 = until settled or voided by reconciliation
    pending_timeout_seconds: NonNegative = 0
    charge_expiry_seconds: Positive = 24 * 3600
    #: seconds between the MED sweeper's passes in the settlement worker (docs/pix-med.md,
    #: "The sweeper"); 0: the worker does not sweep (run ``finbank med sweep`` instead)
    med_sweep_seconds: NonNegative = 60
    max_keys_individual: NonNegative = 5
    max_keys_company: NonNegative = 20
    refund_window_days: NonNegative = 90
    #: ``LimitSettings`` of the PIX core as JSON; empty for the defaults
    limits_json: str = ""
    #: a payment without ``X-Device-Id`` is under the new-device cap (R$ 200 a payment,
    #: and the R$ 1,000 a day of the owner's new devices), however old the account: a stolen
    #: token used outside the app names no device (``LimitSettings.unnamed_device_is_new``);
    #: from_env turns it on for the aws profile only
    unnamed_device_is_new: bool = False
    #: the simulated SPI (the ``sandbox`` network): latency, timeout, peer bank
    spi_latency_seconds: Seconds = 0.0
    spi_timeout_seconds: PositiveSeconds = 10.0
    sandbox_peer_ispb: str = "88888888"
    #: key that seals the cursors of payment listings (HMAC); empty: derived from the
    #: JWT secret, or random per process when there is none (cursors then die with it)
    cursor_secret: str = ""


class MetricsFormat(enum.StrEnum):
    """Where operational metrics go besides the in-process Prometheus registry."""

    #: ``emf`` on the ``aws`` profile, ``prometheus`` elsewhere
    AUTO = "auto"
    #: Prometheus text only: ``/metrics`` of the service, ``FINBANK_METRICS_PORT`` of workers
    PROMETHEUS = "prometheus"
    #: CloudWatch Embedded Metric Format lines on stdout as well (ECS/Batch ship them)
    EMF = "emf"


class MetricsOptions(Area, frozen=True, kw_only=True):
    """Operational metrics (``finbank_adapters.metrics``; docs/operations.md)."""

    #: ``auto``: ``emf`` on the ``aws`` profile, else ``prometheus`` (see :class:`MetricsFormat`)
    format: MetricsFormat = MetricsFormat.AUTO
    #: CloudWatch namespace of the custom metrics
    namespace: str = "Finbank"
    #: the ``Environment`` dimension of every metric (``dev``, ``prod``)
    environment: str = "local"
    #: port of the Prometheus endpoint of the relay and the worker; 0: none
    port: Port = 0
    #: how often counters and gauges are written as EMF lines
    flush_seconds: PositiveSeconds = 60.0


#: variables whose name is not ``FINBANK_<AREA>_<FIELD>`` (kept from the flat settings)
VARIABLE_NAMES: dict[tuple[str, str], str] = {
    ("auth", "access_token_ttl_seconds"): "FINBANK_ACCESS_TOKEN_TTL_SECONDS",
    ("auth", "refresh_token_ttl_seconds"): "FINBANK_REFRESH_TOKEN_TTL_SECONDS",
    ("auth", "mfa_challenge_ttl_seconds"): "FINBANK_MFA_CHALLENGE_TTL_SECONDS",
    ("auth", "mfa_max_attempts"): "FINBANK_MFA_MAX_ATTEMPTS",
    ("auth", "lockout_max_failures"): "FINBANK_LOCKOUT_MAX_FAILURES",
    ("auth", "lockout_window_seconds"): "FINBANK_LOCKOUT_WINDOW_SECONDS",
    ("auth", "lockout_seconds"): "FINBANK_LOCKOUT_SECONDS",
    ("auth", "lockout_exponential"): "FINBANK_LOCKOUT_EXPONENTIAL",
    ("auth", "lockout_max_seconds"): "FINBANK_LOCKOUT_MAX_SECONDS",
    ("reconciliation", "statement_path"): "FINBANK_STATEMENT_PATH",
    ("reconciliation", "report_prefix"): "FINBANK_REPORT_PREFIX",
    ("pix", "ispb"): "FINBANK_ISPB",
    ("pix", "sandbox"): "FINBANK_SANDBOX",
    ("http", "forwarded_allow_ips"): "FINBANK_FORWARDED_ALLOW_IPS",
}
