"""Typed settings, read once from ``FINBANK_*`` environment variables.

``FINBANK_PROFILE`` picks a preset (``memory``, ``local``, ``aws``); a
per-port variable (``FINBANK_LEDGER_BACKEND``, ...) overrides the preset for
that port alone. Settings are split by area (``settings.backends.ledger``,
``settings.postgres.dsn``, ``settings.pix.table_name``, ...); every field has
one variable (:meth:`Settings.variables`), listed in docs/configuration.md.

:meth:`Settings.from_env` refuses, with a :class:`SettingsError` naming the
variable and the valid choices, an unknown ``FINBANK_*`` variable (except the
few that other tools read, :data:`EXTERNAL_VARIABLES`), an unknown profile or
backend and a malformed value. Nothing here connects to anything.
"""

from __future__ import annotations

import difflib
import enum
import os
import secrets
from collections.abc import Mapping
from typing import Any, NamedTuple, TypeVar

import msgspec

from finbank_adapters.settings.areas import (
    VARIABLE_NAMES,
    Area,
    AuthOptions,
    AwsOptions,
    CognitoOptions,
    FilesOptions,
    HttpOptions,
    JwtOptions,
    KafkaOptions,
    MetricsFormat,
    MetricsOptions,
    PixOptions,
    PostgresOptions,
    ReconciliationOptions,
    RedisOptions,
    RelayOptions,
)
from finbank_adapters.settings.backends import (
    PROFILE_BACKENDS,
    Backends,
    CacheBackend,
    DatabaseBackend,
    DenylistBackend,
    FilesBackend,
    IdentityBackend,
    LookupBackend,
    PixBackend,
    PixNetworkBackend,
    Profile,
)

__all__ = [
    "EXTERNAL_VARIABLES",
    "PROFILE_BACKENDS",
    "AuthOptions",
    "AwsOptions",
    "Backends",
    "CacheBackend",
    "CognitoOptions",
    "DatabaseBackend",
    "DenylistBackend",
    "FilesBackend",
    "FilesOptions",
    "HttpOptions",
    "IdentityBackend",
    "JwtOptions",
    "KafkaOptions",
    "LookupBackend",
    "MetricsFormat",
    "MetricsOptions",
    "PixBackend",
    "PixNetworkBackend",
    "PixOptions",
    "PostgresOptions",
    "Profile",
    "ReconciliationOptions",
    "RedisOptions",
    "RelayOptions",
    "Settings",
    "SettingsError",
    "Variable",
]

PROFILE_VARIABLE = "FINBANK_PROFILE"

#: ``FINBANK_*`` variables that other parts read, not :class:`Settings`
EXTERNAL_VARIABLES: frozenset[str] = frozenset(
    {
        "FINBANK_SECRETS_ID",  # finbank_adapters.aws.secrets: the secret to load
        "FINBANK_LOG_LEVEL",  # finbank_http.observability.logs
        "FINBANK_LOG_FORMAT",
        "FINBANK_LOG_MASK_AMOUNTS",
        "FINBANK_TRACING",  # finbank_http.observability.tracing
        "FINBANK_REQUIRE_SERVICES",  # the test suite: fail instead of skip
        "FINBANK_CHECKOV",  # the deploy tests: where checkov is
    }
)
#: prefixes of variables owned by the tests and benchmarks (``FINBANK_TEST_POSTGRES_DSN``)
EXTERNAL_PREFIXES: tuple[str, ...] = ("FINBANK_TEST_",)


class SettingsError(ValueError):
    """A setting is missing or malformed; raised at startup, never at import."""


class Variable(NamedTuple):
    """Where one ``FINBANK_*`` variable lands: ``settings.<area>.<field>``."""

    name: str
    area: str
    field: str
    type: Any
    default: Any


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """All settings, by area; build with :meth:`from_env` or by hand (tests)."""

    profile: Profile = Profile.MEMORY
    backends: Backends = msgspec.field(default_factory=Backends)
    postgres: PostgresOptions = msgspec.field(default_factory=PostgresOptions)
    redis: RedisOptions = msgspec.field(default_factory=RedisOptions)
    kafka: KafkaOptions = msgspec.field(default_factory=KafkaOptions)
    relay: RelayOptions = msgspec.field(default_factory=RelayOptions)
    jwt: JwtOptions = msgspec.field(default_factory=JwtOptions)
    auth: AuthOptions = msgspec.field(default_factory=AuthOptions)
    aws: AwsOptions = msgspec.field(default_factory=AwsOptions)
    cognito: CognitoOptions = msgspec.field(default_factory=CognitoOptions)
    files: FilesOptions = msgspec.field(default_factory=FilesOptions)
    reconciliation: ReconciliationOptions = msgspec.field(default_factory=ReconciliationOptions)
    pix: PixOptions = msgspec.field(default_factory=PixOptions)
    http: HttpOptions = msgspec.field(default_factory=HttpOptions)
    metrics: MetricsOptions = msgspec.field(default_factory=MetricsOptions)

    @classmethod
    def variables(cls) -> dict[str, Variable]:
        """Every variable :meth:`from_env` reads except ``FINBANK_PROFILE``, by name."""
        return dict(_VARIABLES)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings ``environ`` (default ``os.environ``) names, over the profile's preset.

        Raises :class:`SettingsError` naming every unknown ``FINBANK_*`` variable, then
        every unknown profile or backend (with the valid ones) and malformed value.
        """
        env = os.environ if environ is None else environ
        _refuse_unknown(env)
        problems: list[str] = []
        try:
            profile = _parse_choice(PROFILE_VARIABLE, env.get(PROFILE_VARIABLE, "memory"), Profile)
        except SettingsError as exc:
            problems.append(str(exc))
            profile = Profile.MEMORY
        areas: dict[str, dict[str, Any]] = {area: {} for area in _AREAS}
        for variable in _VARIABLES.values():
            if variable.name in env:
                try:
                    value = _parse(variable, env[variable.name])
                except SettingsError as exc:
                    problems.append(str(exc))
                    continue
                areas[variable.area][variable.field] = value
        if problems:
            raise SettingsError("; ".join(problems))
        areas["pix"].setdefault("sandbox", profile is Profile.MEMORY)
        areas["pix"].setdefault("inline_settlement", profile is Profile.MEMORY)
        areas["pix"].setdefault("unnamed_device_is_new", profile is Profile.AWS)
        backends = msgspec.structs.replace(PROFILE_BACKENDS[profile], **areas.pop("backends"))
        built = {area: _AREAS[area](**values) for area, values in areas.items()}
        return _checked_together(cls(profile=profile, backends=backends, **built))

    def validated(self) -> Settings:
        """These settings, checked as :meth:`from_env` checks the environment's: every
        field's bounds and form, and the values that only work together. For settings
        built by hand (``Settings(postgres=PostgresOptions(...))``), which msgspec does not
        check on construction; :func:`~finbank_adapters.containers.build_container` calls it.

        ``SettingsError`` names the variable of the first field out of bounds (and what it
        expects, never the value).
        """
        try:
            msgspec.convert(msgspec.to_builtins(self), type(self))
        except msgspec.ValidationError as exc:
            expected, _, path = str(exc).partition(" - at `$.")
            area, _, field = path.rstrip("`").partition(".")
            variable = _variable_name(area, field) if area in _AREAS else path.rstrip("`")
            raise SettingsError(f"invalid setting {variable}: {expected}") from None
        return _checked_together(self)

    def replace_variables(self, values: Mapping[str, str]) -> Settings:
        """A copy with ``values`` (variable name -> text, as in the environment) applied;
        ``SettingsError`` names an unknown variable or a malformed value."""
        changes: dict[str, dict[str, Any]] = {}
        for name, raw in values.items():
            variable = _VARIABLES.get(name)
            if variable is None:
                raise SettingsError(_unknown_message(name))
            changes.setdefault(variable.area, {})[variable.field] = _parse(variable, raw)
        replaced = {
            area: msgspec.structs.replace(getattr(self, area), **fields)
            for area, fields in changes.items()
        }
        return _checked_together(msgspec.structs.replace(self, **replaced))

    def value_of(self, name: str) -> Any:
        """The value of the setting read from variable ``name``."""
        variable = _VARIABLES.get(name)
        if variable is None:
            raise SettingsError(_unknown_message(name))
        return getattr(getattr(self, variable.area), variable.field)

    def uses_redis(self) -> bool:
        backends = self.backends
        return (
            CacheBackend.REDIS
            in (
                backends.challenges,
                backends.throttle,
                backends.refresh_tokens,
                backends.rate_limit,
            )
            or backends.pix_lookup == "redis"
            or backends.denylist in (DenylistBackend.REDIS, DenylistBackend.REDIS_POSTGRES)
        )

    def cognito_issuer_url(self) -> str:
        if self.cognito.issuer:
            return self.cognito.issuer.rstrip("/")
        self.require_cognito()
        return f"https://cognito-idp.{self.aws.region}.amazonaws.com/{self.cognito.user_pool_id}"

    def cognito_jwks_endpoint(self) -> str:
        return self.cognito.jwks_url or f"{self.cognito_issuer_url()}/.well-known/jwks.json"

    def require_cognito(self) -> None:
        if not self.cognito.user_pool_id or not self.cognito.client_id:
            raise SettingsError(
                "FINBANK_COGNITO_USER_POOL_ID and FINBANK_COGNITO_CLIENT_ID are required "
                "for the cognito identity backend"
            )

    def __repr__(self) -> str:
        # Secrets and DSNs (which may carry passwords) never reach a log or a traceback:
        # each area's repr masks them.
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__struct_fields__)
        return f"Settings({shown})"

    def jwt_secret_bytes(self) -> bytes:
        if self.jwt.secret:
            return self.jwt.secret.encode()
        if self.profile is not Profile.MEMORY:
            raise SettingsError("FINBANK_JWT_SECRET is required outside the memory profile")
        return _PROCESS_SECRET

    def require_auth_secrets_key(self) -> None:
        """On the aws profile, TOTP secrets and MFA sessions are sealed by a KMS key
        (``FINBANK_AUTH_SECRETS_KMS_KEY_ID``) or by explicit keys
        (``FINBANK_AUTH_SECRETS_KEYS``), never by a key derived from the JWT secret.

        Checked by what seals them (the API, ``finbank secrets ...``), not at start of
        every process: the relay and the workers never touch them."""
        auth = self.auth
        if self.profile is Profile.AWS and not (auth.secrets_kms_key_id or auth.secrets_keys):
            raise SettingsError(
                "FINBANK_AUTH_SECRETS_KMS_KEY_ID (or FINBANK_AUTH_SECRETS_KEYS) is required"
                " on the aws profile: auth secrets at rest are not sealed with a key derived"
                " from the JWT secret there"
            )


_PROCESS_SECRET = secrets.token_bytes(32)
_E = TypeVar("_E", bound=enum.StrEnum)

_AREAS: dict[str, type[Any]] = {
    field.name: field.type
    for field in msgspec.structs.fields(Settings)
    if isinstance(field.type, type) and issubclass(field.type, (Area, Backends))
}


def _variable_name(area: str, field: str) -> str:
    if area == "backends":
        return f"FINBANK_{field.upper()}_BACKEND"
    return VARIABLE_NAMES.get((area, field), f"FINBANK_{area.upper()}_{field.upper()}")


def _all_variables() -> dict[str, Variable]:
    found: dict[str, Variable] = {}
    for area, struct in _AREAS.items():
        for field in msgspec.structs.fields(struct):
            name = _variable_name(area, field.name)
            assert name not in found, f"two settings read {name}"
            found[name] = Variable(name, area, field.name, field.type, field.default)
    return found


_VARIABLES = _all_variables()


def _is_external(name: str) -> bool:
    return name in EXTERNAL_VARIABLES or name.startswith(EXTERNAL_PREFIXES)


def _unknown_message(name: str) -> str:
    known = [PROFILE_VARIABLE, *_VARIABLES]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown setting {name}{hint}; the settings are listed in docs/configuration.md"


def _refuse_unknown(env: Mapping[str, str]) -> None:
    unknown = sorted(
        name
        for name in env
        if name.startswith("FINBANK_")
        and name != PROFILE_VARIABLE
        and name not in _VARIABLES
        and not _is_external(name)
    )
    if unknown:
        raise SettingsError("; ".join(_unknown_message(name) for name in unknown))


def _checked_together(settings: Settings) -> Settings:
    """``settings``, or ``SettingsError`` for values that are each valid but not together
    (a driver would refuse them later, with a traceback of its own)."""
    postgres = settings.postgres
    if postgres.pool_min > postgres.pool_max:
        raise SettingsError(
            f"FINBANK_POSTGRES_POOL_MIN ({postgres.pool_min}) is above"
            f" FINBANK_POSTGRES_POOL_MAX ({postgres.pool_max})"
        )
    return settings


def _parse_choice(name: str, raw: str, choices: type[_E]) -> _E:
    try:
        return choices(raw.strip())
    except ValueError:
        valid = ", ".join(choice.value for choice in choices)
        raise SettingsError(f"{name} must be one of {valid} (got {raw!r})") from None


def _parse(variable: Variable, raw: str) -> Any:
    kind = variable.type
    if isinstance(kind, type) and issubclass(kind, enum.StrEnum):
        return _parse_choice(variable.name, raw, kind)
    try:
        return msgspec.convert(raw, kind, strict=False)
    except msgspec.ValidationError as exc:
        # the message names the expected type or bound, never the value (it may be a secret)
        hint = " (true/false or 1/0)" if kind in (bool, bool | None) else ""
        raise SettingsError(f"invalid setting {variable.name}: {exc}{hint}") from None
