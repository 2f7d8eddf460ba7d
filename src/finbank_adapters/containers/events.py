"""Events: the publisher every context uses, the outbox relay, the consumers and schedulers.

:class:`EventsContainer` holds the ``EventPublisher`` (memory or the
PostgreSQL outbox), the outbox the relay drains, the inbox consumers
deduplicate with, the Kafka settings and the relay's producer (an
:class:`~finbank_adapters.containers.infrastructure.OnDemand` resource, opened
only by the relay process). :class:`WorkersContainer` builds the consumers
(the PIX settlement handler and its runner, the DynamoDB stream processor)
and the Pix Automático scheduler over the use cases they run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from dependency_injector import containers, providers

from finbank_adapters import postgres_wiring
from finbank_adapters.containers.infrastructure import OnDemand, settings_field
from finbank_adapters.memory import InMemoryEventPublisher
from finbank_adapters.settings import Settings, SettingsError


def kafka_settings(settings: Settings) -> Any:
    from finbank_adapters.kafka.config import KafkaSettings

    return KafkaSettings.from_settings(settings)


async def kafka_producer(kafka: Any) -> AsyncIterator[Any]:
    """A started aiokafka producer (the relay's), stopped on shutdown."""
    from finbank_adapters.kafka.clients import open_producer

    async with open_producer(kafka) as producer:
        yield producer


def postgres_outbox(pool: Any, clock: Any, settings: Settings) -> Any:
    from finbank_adapters.postgres import PostgresOutbox

    return PostgresOutbox(pool, clock, lease_seconds=settings.relay.lease_seconds)


def no_outbox() -> Any:
    """``FINBANK_EVENTS_BACKEND=memory``: events are published in process, nothing to relay."""
    raise SettingsError(
        "the outbox relay needs FINBANK_EVENTS_BACKEND=postgres: with memory, events are "
        "published in process and there is no outbox to relay"
    )


def postgres_inbox(pool: Any, clock: Any, consumer: str) -> Any:
    from finbank_adapters.postgres.inbox import PostgresInbox

    return PostgresInbox(pool, consumer, clock)


def outbox_relay(outbox: Any, producer: Any, settings: Settings, kafka: Any) -> Any:
    from finbank_adapters.kafka.relay import OutboxRelay, check_relay_settings

    check_relay_settings(settings, kafka)
    return OutboxRelay(
        outbox,
        producer,
        batch_size=settings.relay.batch_size,
        max_in_flight=settings.relay.max_in_flight,
        lease_seconds=settings.relay.lease_seconds,
        idle_seconds=settings.relay.idle_seconds,
        linger_seconds=settings.relay.linger_seconds,
        topic_prefix=kafka.topic_prefix,
    )


def _inbox_backend(settings: Settings) -> str:
    return "postgres" if postgres_wiring.uses_postgres(settings) else "none"


def _no_inbox(**_: Any) -> None:
    """The memory profile has no inbox: idempotent effects alone protect."""
    return


class EventsContainer(containers.DeclarativeContainer):
    """The publisher, the outbox and inbox, Kafka and the relay."""

    infra = providers.DependenciesContainer()

    publisher = providers.Selector(
        providers.Callable(settings_field("backends.events"), infra.settings),
        memory=providers.Singleton(InMemoryEventPublisher),
        postgres=providers.Singleton(
            postgres_wiring.postgres_event_publisher, pool=infra.postgres_pool
        ),
    )
    kafka = providers.Singleton(kafka_settings, infra.settings)
    #: the outbox ``finbank relay`` drains: the one the PostgreSQL publisher writes to
    outbox = providers.Selector(
        providers.Callable(settings_field("backends.events"), infra.settings),
        postgres=providers.Singleton(
            postgres_outbox, pool=infra.postgres_pool, clock=infra.clock, settings=infra.settings
        ),
        memory=providers.Callable(no_outbox),
    )
    inbox_pool = OnDemand(postgres_wiring.postgres_inbox_pool, settings=infra.settings)
    #: call with ``consumer=<group id>``; ``None`` on the memory profile
    inbox = providers.Selector(
        providers.Callable(_inbox_backend, infra.settings),
        # its own pool (opened by the processes that consume): see postgres_inbox_pool
        postgres=providers.Factory(postgres_inbox, pool=inbox_pool, clock=infra.clock),
        none=providers.Callable(_no_inbox),
    )
    kafka_producer = OnDemand(kafka_producer, kafka=kafka)
    relay = providers.Singleton(
        outbox_relay,
        outbox=outbox,
        producer=kafka_producer,
        settings=infra.settings,
        kafka=kafka,
    )


def pix_settlement_handler(
    settle_payment: Any, settle_refund: Any, receive: Any, inbox: Any
) -> Any:
    from finbank_adapters.workers.pix_settlement import PixSettlementHandler

    return PixSettlementHandler(
        settle_payment,
        settle_refund,
        receive,
        inbox,
        release_unrecorded=settle_payment.release_unrecorded,
    )


def pix_settlement_runner(kafka: Any, group_id: str, handler: Any, retry: Any = None) -> Any:
    """The Kafka consumer runner of the PIX settlement worker (``finbank.pix.v1``)."""
    from finbank_adapters.kafka import KafkaConsumerRunner
    from finbank_core.pix.errors import MalformedPixEvent
    from finbank_core.shared.events import PIX_TOPIC

    return KafkaConsumerRunner(
        kafka,
        group_id=group_id,
        topics=[PIX_TOPIC],
        handler=handler,
        retry=retry,
        permanent=(MalformedPixEvent,),
    )


def pix_automatic_worker(run_due: Any, holder: str | None = None) -> Any:
    """The Pix Automático scheduler loop over ``RunDueDebits`` (``holder``: this instance)."""
    from finbank_adapters.workers.pix_automatic import PixAutomaticWorker, default_holder

    return PixAutomaticWorker(run_due=run_due, holder=holder or default_holder())


def pix_stream_processor(publisher: Any, effects: Any, loop: Any) -> Any:
    """The PIX table's stream processor (the Lambda's), on the Lambda's event loop."""
    from finbank_adapters.aws.lambda_handlers import PixStreamProcessor

    return PixStreamProcessor(publisher, effects, loop)


class WorkersContainer(containers.DeclarativeContainer):
    """The event consumers and schedulers, over the use cases they run.

    The processes that run them (``finbank relay``, ``finbank worker ...``, the
    Lambdas) are in :mod:`finbank.runtime` and :mod:`finbank.lambdas`: they
    resolve these and build nothing.
    """

    events = providers.DependenciesContainer()
    pix = providers.DependenciesContainer()
    pix_automatic = providers.DependenciesContainer()

    #: call with ``inbox=<the inbox for the worker's group>``
    pix_settlement_handler = providers.Factory(
        pix_settlement_handler,
        settle_payment=pix.settle_pix_payment,
        settle_refund=pix.settle_pix_refund,
        receive=pix.receive_pix,
    )
    #: call with ``group_id=``, ``handler=`` (and ``kafka=``/``retry=`` to override)
    pix_settlement_runner = providers.Factory(pix_settlement_runner, kafka=events.kafka)
    #: call with ``holder=`` to name this instance on its leases (host:pid by default)
    pix_automatic_worker = providers.Factory(
        pix_automatic_worker, run_due=pix_automatic.run_due_debits
    )
    #: call with ``effects=<the effect log of the stream consumer>`` and ``loop=``
    pix_stream_processor = providers.Factory(pix_stream_processor, publisher=events.publisher)
