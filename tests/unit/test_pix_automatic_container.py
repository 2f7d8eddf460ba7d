"""The Pix Automático container picks its store by the PIX backend and builds the use cases."""

from __future__ import annotations

import pytest
from dependency_injector import providers

from finbank import open_bank
from finbank_adapters.containers import build_container
from finbank_adapters.containers.pix_automatic import postgres_recurrence_store
from finbank_adapters.memory.pix_automatic import InMemoryRecurrenceStore
from finbank_adapters.settings import Backends, Settings
from finbank_adapters.settings.backends import PixBackend
from finbank_core.pix.automatic import ExecuteDueDebit, RunDueDebits


@pytest.mark.parametrize("backend", [PixBackend.POSTGRES, PixBackend.DYNAMODB])
def test_postgres_and_dynamodb_profiles_keep_recurrences_in_postgres(backend: PixBackend) -> None:
    container = build_container(Settings(backends=Backends(pix=backend)))
    selector = container.pix_automatic().recurrence_store
    chosen = selector.providers[backend.value]
    assert isinstance(chosen, providers.Singleton)
    assert chosen.provides is postgres_recurrence_store


async def test_the_memory_profile_wires_an_in_memory_store_and_the_scheduler() -> None:
    async with open_bank(profile="memory") as bank:
        automatic = bank.container.pix_automatic()
        assert isinstance(automatic.recurrence_store(), InMemoryRecurrenceStore)
        assert automatic.recurrence_store() is automatic.recurrence_store()  # one store
        assert isinstance(automatic.execute_due_debit(), ExecuteDueDebit)
        assert isinstance(automatic.run_due_debits(), RunDueDebits)
