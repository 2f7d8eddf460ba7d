"""The sandbox peer bank's recurrence ids are unique across processes, as an
institution's are in the SPI. They were a per-process counter, so every run of
``finbank demo`` offered the same id on the same (fake) day, and a second run on
a kept database found the first run's recurrence under it, already authorised by
another payer: the demo failed with RecurrenceNotActive on its second run."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from finbank_adapters.memory import FakeClock
from finbank_adapters.sandbox import PEER_ACCOUNT_NUMBER, SimulatedSpi, sandbox_peer
from finbank_adapters.sandbox.recurrences import SandboxRecurrenceNetwork
from finbank_core.pix.automatic import Periodicity
from finbank_core.shared.money import Money

PEER_ISPB = "99999999"
#: RR (retries allowed) + ISPB + yyyyMMdd + 11 letters or digits
RECURRENCE_ID = re.compile(r"RR\d{8}\d{8}[0-9a-zA-Z]{11}")


def offered_id(network: SandboxRecurrenceNetwork) -> str:
    served, _ = network.offer(
        ispb=PEER_ISPB,
        account_number=PEER_ACCOUNT_NUMBER,
        contract="LUZ",
        debtor_name="Bia Castro",
        periodicity=Periodicity.MENSAL,
        start=date(2026, 5, 5),
        fixed_amount=Money(40_00),
    )
    return served.recurrence_id


def a_process(clock: FakeClock) -> SandboxRecurrenceNetwork:
    """What each process builds: its own network, on the same fake day."""
    return SandboxRecurrenceNetwork(
        SimulatedSpi(clock, institutions=(sandbox_peer(PEER_ISPB),)), clock
    )


def test_each_process_offers_ids_no_other_run_used() -> None:
    clock = FakeClock(datetime(2026, 3, 10, 13, 0, tzinfo=UTC))
    ids = [offered_id(a_process(clock)) for _ in range(50)]  # 50 runs, first offer each
    ids += [offered_id(network) for network in [a_process(clock)] for _ in range(50)]
    assert len(set(ids)) == len(ids)
    for recurrence_id in ids:
        assert RECURRENCE_ID.fullmatch(recurrence_id), recurrence_id
        assert recurrence_id[2:10] == PEER_ISPB
        assert recurrence_id[10:18] == "20260310"  # the business date, as before
