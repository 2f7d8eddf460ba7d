"""Settings, the clock, ids, and the shared connections (pools and clients).

Every connection is an :class:`Eager` resource: :func:`~finbank_adapters.containers.open_container`
opens them all, and each yields ``None`` when no port of the configured
profile needs it, so the memory profile connects to nothing and needs none of
the optional extras. The builders live in the ``*_wiring`` modules; they
construct, this container chooses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from dependency_injector import containers, providers

from finbank_adapters import auth_wiring, aws_wiring, postgres_wiring
from finbank_adapters._extras import require_extra
from finbank_adapters.settings import Settings
from finbank_adapters.system import SystemClock, UUIDv7Generator


class Eager(providers.Resource):  # type: ignore[type-arg]
    """A connection opened by ``open_container`` (pools, clients shared by the ports)."""


class OnDemand(providers.Resource):  # type: ignore[type-arg]
    """A connection opened only when a process resolves it (the relay's Kafka producer)."""


def settings_field(path: str) -> Any:
    """A function reading ``settings.<area>.<field>`` (``path`` is "area.field")."""
    area, field = path.split(".")

    def pick(settings: Settings) -> Any:
        return getattr(getattr(settings, area), field)

    pick.__name__ = f"settings_{area}_{field}"
    return pick


async def s3_client(settings: Settings) -> AsyncIterator[Any]:
    """An aioboto3 ``s3`` client for the reconciliation files, when they are on S3."""
    if settings.backends.files != "s3":
        yield None
        return
    require_extra("FINBANK_FILES_BACKEND=s3", "aws", ["aioboto3", "botocore"])
    import aioboto3

    async with aioboto3.Session().client(
        "s3",
        region_name=settings.aws.region,
        endpoint_url=settings.aws.endpoint_url or None,
    ) as client:
        yield client


class InfrastructureContainer(containers.DeclarativeContainer):
    """What every context shares: settings, clock, ids, pools and clients.

    Override ``clock`` or ``ids`` with ``providers.Object(fake)`` to run the
    whole bank on a fake clock or predictable ids (``open_bank(clock=...)``
    does it for you).
    """

    settings = providers.Singleton(Settings.from_env)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(UUIDv7Generator, clock=clock)

    postgres_pool = Eager(postgres_wiring.postgres_pool, settings=settings)
    redis_client = Eager(auth_wiring.redis_client, settings=settings)
    cognito_client = Eager(auth_wiring.cognito_client, settings=settings)
    dynamodb_client = Eager(aws_wiring.dynamodb_client, settings=settings)
    s3_client = Eager(s3_client, settings=settings)
