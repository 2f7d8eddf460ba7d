"""Which adapter serves each port: one ``StrEnum`` of choices, a preset per profile.

A port's backend is read from ``FINBANK_<PORT>_BACKEND`` (``FINBANK_LEDGER_BACKEND``,
``FINBANK_FILES_BACKEND``, ...); when unset, the profile's preset below decides.
Ports with the same choices share an enum:

==================  =====================  ==================================
port                enum                   choices
==================  =====================  ==================================
ledger              ``DatabaseBackend``    ``memory``, ``postgres``
accounts            ``DatabaseBackend``    ``memory``, ``postgres``
users               ``DatabaseBackend``    ``memory``, ``postgres``
events (outbox)     ``DatabaseBackend``    ``memory``, ``postgres``
identity            ``IdentityBackend``    ``local``, ``cognito``
challenges          ``CacheBackend``       ``memory``, ``redis``
throttle            ``CacheBackend``       ``memory``, ``redis``
refresh_tokens      ``CacheBackend``       ``memory``, ``redis``
rate_limit          ``CacheBackend``       ``memory``, ``redis``
denylist            ``DenylistBackend``    ``memory``, ``redis``, ``redis_postgres``
pix                 ``PixBackend``         ``memory``, ``postgres``, ``dynamodb``
pix_network         ``PixNetworkBackend``  ``sandbox``
pix_lookup          ``LookupBackend``      ``memory``, ``redis``, ``postgres``
files               ``FilesBackend``       ``local``, ``s3``, ``memory``
==================  =====================  ==================================
"""

from __future__ import annotations

import enum

import msgspec


class Profile(enum.StrEnum):
    """A preset of backends (and of a few defaults): ``FINBANK_PROFILE``."""

    MEMORY = "memory"
    LOCAL = "local"
    AWS = "aws"


class DatabaseBackend(enum.StrEnum):
    """Ledger, accounts, users and the events outbox: in process or PostgreSQL."""

    MEMORY = "memory"
    POSTGRES = "postgres"


class CacheBackend(enum.StrEnum):
    """MFA challenges, login throttle, refresh tokens, rate limits: in process or Redis."""

    MEMORY = "memory"
    REDIS = "redis"


class DenylistBackend(enum.StrEnum):
    """Revoked tokens: in process, Redis alone, or PostgreSQL behind a Redis cache."""

    MEMORY = "memory"
    REDIS = "redis"
    REDIS_POSTGRES = "redis_postgres"


class IdentityBackend(enum.StrEnum):
    """Who checks passwords and issues tokens: the self-hosted provider or Cognito."""

    LOCAL = "local"
    COGNITO = "cognito"


class PixBackend(enum.StrEnum):
    """Where PIX payments, keys, charges, limits, devices and request claims live.

    ``postgres``: the local profile's default (migration ``0012``);
    ``dynamodb``: the aws profile's, and on the local profile a way to test
    against moto or DynamoDB Local.
    """

    MEMORY = "memory"
    POSTGRES = "postgres"
    DYNAMODB = "dynamodb"


class LookupBackend(enum.StrEnum):
    """The PIX key look-up buckets (one per customer): in process, Redis or PostgreSQL."""

    MEMORY = "memory"
    REDIS = "redis"
    POSTGRES = "postgres"


class PixNetworkBackend(enum.StrEnum):
    """The payment network PIX orders go to; only the simulated SPI exists today."""

    SANDBOX = "sandbox"


class FilesBackend(enum.StrEnum):
    """Where settlement statements are read and reconciliation reports written."""

    LOCAL = "local"
    S3 = "s3"
    MEMORY = "memory"


class Backends(msgspec.Struct, frozen=True, kw_only=True):
    """The backend of every port (``settings.backends.ledger``, ...)."""

    ledger: DatabaseBackend = DatabaseBackend.MEMORY
    accounts: DatabaseBackend = DatabaseBackend.MEMORY
    users: DatabaseBackend = DatabaseBackend.MEMORY
    events: DatabaseBackend = DatabaseBackend.MEMORY
    identity: IdentityBackend = IdentityBackend.LOCAL
    challenges: CacheBackend = CacheBackend.MEMORY
    throttle: CacheBackend = CacheBackend.MEMORY
    denylist: DenylistBackend = DenylistBackend.MEMORY
    refresh_tokens: CacheBackend = CacheBackend.MEMORY
    #: the store behind the HTTP rate limiter on ``/v1/auth/*``
    rate_limit: CacheBackend = CacheBackend.MEMORY
    pix: PixBackend = PixBackend.MEMORY
    pix_network: PixNetworkBackend = PixNetworkBackend.SANDBOX
    #: the token buckets of PIX key look-ups (``FINBANK_PIX_LOOKUP_BACKEND``)
    pix_lookup: LookupBackend = LookupBackend.MEMORY
    files: FilesBackend = FilesBackend.LOCAL


_LOCAL = Backends(
    ledger=DatabaseBackend.POSTGRES,
    accounts=DatabaseBackend.POSTGRES,
    users=DatabaseBackend.POSTGRES,
    events=DatabaseBackend.POSTGRES,
    challenges=CacheBackend.REDIS,
    throttle=CacheBackend.REDIS,
    denylist=DenylistBackend.REDIS_POSTGRES,
    refresh_tokens=CacheBackend.REDIS,
    rate_limit=CacheBackend.REDIS,
    pix=PixBackend.POSTGRES,
    pix_lookup=LookupBackend.REDIS,
)

#: the backends of each profile; ``FINBANK_<PORT>_BACKEND`` overrides one port
PROFILE_BACKENDS: dict[Profile, Backends] = {
    Profile.MEMORY: Backends(),
    Profile.LOCAL: _LOCAL,
    Profile.AWS: msgspec.structs.replace(
        _LOCAL, identity=IdentityBackend.COGNITO, pix=PixBackend.DYNAMODB
    ),
}
