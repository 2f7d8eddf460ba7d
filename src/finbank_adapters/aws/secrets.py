"""Settings of the ``aws`` profile from AWS Secrets Manager.

One JSON secret (``FINBANK_SECRETS_ID``, made by deploy/terraform/modules/secrets)
holds what must not live in env or code: ``postgres_dsn``, ``redis_url`` plus
``redis_auth``, ``kafka_bootstrap``/``kafka_sasl_username``/``kafka_sasl_password``,
``jwt_secret``, ``cognito_client_secret``. Its keys are the names of the
settings' variables without ``FINBANK_``, in lower case (``postgres_dsn`` stands
for ``FINBANK_POSTGRES_DSN``, i.e. ``settings.postgres.dsn``), plus
``redis_auth`` (spliced into ``redis_url`` as its password).

Precedence: an explicitly set ``FINBANK_<FIELD>`` environment variable wins
over the secret, so an operator can override one value (say, point
``FINBANK_POSTGRES_DSN`` at a restored cluster) without editing the shared
secret; the secret wins over every default. Keys that name no setting, or a
backend, (e.g. a key of a newer deploy) are ignored, and only
their names are ever logged.

:class:`SecretsManagerLoader` caches the secret for ``ttl_seconds`` on the
injected clock, so a rotated value is picked up by long-running processes that
ask again, without a call to AWS per request.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping, MutableMapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import msgspec

from finbank_adapters.quiet_logs import quiet_third_party_loggers
from finbank_adapters.settings import Settings, SettingsError
from finbank_core.shared.clock import Clock

logger = logging.getLogger("finbank.aws.secrets")

SECRET_ID_ENV = "FINBANK_SECRETS_ID"  # noqa: S105 - the variable's name, not a secret
REDIS_AUTH_KEY = "redis_auth"


class SecretsLoader(Protocol):
    """Gives the current key/value pairs of the configuration secret."""

    async def values(self) -> Mapping[str, str]:
        """Return the secret's keys and values (cached by the implementation).

        Raises :class:`SettingsError` when the secret is missing, unreadable or
        not a JSON object; the message names the secret, never its content.
        """
        ...


class SecretsManagerLoader:
    """Reads one JSON secret with an already-open aioboto3 ``secretsmanager`` client."""

    def __init__(self, client: Any, secret_id: str, clock: Clock, ttl_seconds: float = 300) -> None:
        if not secret_id:
            raise SettingsError(
                f"{SECRET_ID_ENV} is required to load settings from Secrets Manager"
            )
        self._client = client
        self._secret_id = secret_id
        self._clock = clock
        self._ttl_seconds = ttl_seconds
        self._cached: dict[str, str] | None = None
        self._fetched_at: datetime | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many times AWS was asked; for tests and metrics

    async def values(self) -> Mapping[str, str]:
        async with self._lock:  # one fetch at a time, the others reuse its result
            if self._fresh():
                assert self._cached is not None
                return dict(self._cached)
            self._cached = await self._fetch()
            self._fetched_at = self._clock.now()
            return dict(self._cached)

    def invalidate(self) -> None:
        """Forget the cached value (e.g. after a rotation notice)."""
        self._cached = None
        self._fetched_at = None

    def _fresh(self) -> bool:
        if self._cached is None or self._fetched_at is None:
            return False
        age = (self._clock.now() - self._fetched_at).total_seconds()
        return 0 <= age < self._ttl_seconds

    async def _fetch(self) -> dict[str, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        quiet_third_party_loggers()  # botocore logs the response body, the secret, at DEBUG
        try:
            response = await self._client.get_secret_value(SecretId=self._secret_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise SettingsError(f"cannot read secret {self._secret_id}: {code}") from None
        except BotoCoreError as exc:
            raise SettingsError(
                f"cannot read secret {self._secret_id}: {type(exc).__name__}"
            ) from None
        self.fetches += 1
        raw = response.get("SecretString")
        if raw is None:
            raise SettingsError(f"secret {self._secret_id} has no SecretString")
        try:
            decoded = json.loads(raw)
        except ValueError:
            raise SettingsError(f"secret {self._secret_id} is not JSON") from None
        if not isinstance(decoded, dict):
            raise SettingsError(f"secret {self._secret_id} is not a JSON object")
        return {str(key): str(value) for key, value in decoded.items() if value is not None}


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    if parts.password:  # the URL already carries its credentials
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = quote(parts.username or "", safe="")
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def merge_secret_values(
    settings: Settings, values: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> Settings:
    """``settings`` with the secret's values, except fields set explicitly in ``environ``."""
    env = os.environ if environ is None else environ
    known = Settings.variables()
    merged = settings
    ignored: list[str] = []
    for key, value in values.items():
        if key == REDIS_AUTH_KEY:
            continue
        variable = known.get(f"FINBANK_{key.upper()}")
        if variable is None or variable.area == "backends":
            ignored.append(key)
            continue
        if variable.name in env:
            continue
        try:
            merged = merged.replace_variables({variable.name: value})
        except SettingsError as exc:  # names the variable and the expected type, not the value
            raise SettingsError(f"secret value for {key}: {exc}") from None
    if ignored:
        logger.debug("secret keys with no matching setting ignored: %s", ", ".join(sorted(ignored)))
    redis_auth = values.get(REDIS_AUTH_KEY)
    if redis_auth and "FINBANK_REDIS_URL" not in env:
        redis = msgspec.structs.replace(
            merged.redis, url=_with_password(merged.redis.url, redis_auth)
        )
        merged = msgspec.structs.replace(merged, redis=redis)
    return merged


async def settings_with_secrets(
    settings: Settings, loader: SecretsLoader, environ: Mapping[str, str] | None = None
) -> Settings:
    """``settings`` completed from ``loader`` (explicit env values win; see the module doc)."""
    return merge_secret_values(settings, await loader.values(), environ)


@asynccontextmanager
async def secrets_manager_loader(
    settings: Settings, clock: Clock, secret_id: str | None = None, ttl_seconds: float = 300
) -> AsyncIterator[SecretsManagerLoader]:
    """Open a ``secretsmanager`` client for ``settings``' region and endpoint, yield a loader."""
    import aioboto3

    secret = secret_id if secret_id is not None else os.environ.get(SECRET_ID_ENV, "")
    session = aioboto3.Session()
    async with session.client(
        "secretsmanager",
        region_name=settings.aws.region,
        endpoint_url=settings.aws.endpoint_url or None,
    ) as client:
        yield SecretsManagerLoader(client, secret, clock, ttl_seconds)


async def load_aws_settings(
    settings: Settings, clock: Clock, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings for a process of the ``aws`` profile: env, then the secret named by
    ``FINBANK_SECRETS_ID`` (no secret id: ``settings`` unchanged)."""
    env = os.environ if environ is None else environ
    secret_id = env.get(SECRET_ID_ENV, "")
    if not secret_id:
        return settings
    async with secrets_manager_loader(settings, clock, secret_id) as loader:
        return await settings_with_secrets(settings, loader, env)


def _env_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def export_secret_settings(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """For a process entry point: when ``FINBANK_SECRETS_ID`` is set, load the secret
    once and write its values into ``environ`` as ``FINBANK_<FIELD>`` variables that
    are not already set, so every later ``Settings.from_env()`` in the process sees
    them. Returns the names written (never the values)."""
    env = os.environ if environ is None else environ
    if not env.get(SECRET_ID_ENV):
        return []
    from finbank_adapters.system import SystemClock

    base = Settings.from_env(env)
    merged = asyncio.run(load_aws_settings(base, SystemClock(), env))
    written = []
    for name in Settings.variables():
        value = merged.value_of(name)
        if value != base.value_of(name) and name not in env:
            env[name] = _env_text(value)
            written.append(name)
    if written:
        logger.info("settings from secret %s: %s", env[SECRET_ID_ENV], ", ".join(written))
    return written
