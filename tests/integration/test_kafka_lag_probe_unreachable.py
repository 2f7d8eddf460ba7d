"""A lag probe whose broker does not answer fails with ``ServiceUnavailable`` and leaves
no client open: the settlement worker measures lag beside its consumer, and on an
unreachable broker it used to log "Unclosed AIOKafkaConsumer" at exit."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from finbank_adapters.kafka import KafkaSettings
from finbank_adapters.kafka.lag import LagProbe
from finbank_core.shared.errors import ServiceUnavailable
from tests.integration.kafka_fixtures import free_port


async def test_an_unreachable_broker_fails_the_probe_and_closes_its_clients() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")  # nothing listens
        with pytest.raises(ServiceUnavailable, match="message bus is unavailable"):
            async with LagProbe(kafka, "g"):
                raise AssertionError("entered without a broker")
        gc.collect()  # the clients' finalizers report what was left open
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [c["message"] for c in reported if "Unclosed" in c.get("message", "")] == []
