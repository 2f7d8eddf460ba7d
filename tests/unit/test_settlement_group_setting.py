"""``kafka.settlement_group``: the settlement worker's consumer group, from the environment.

The default is the group deployments already use; ``FINBANK_KAFKA_SETTLEMENT_GROUP``
names another (tests give each run its own, so runs on one broker never join each
other's group); an empty name is refused. ``finbank worker pix-settlement`` builds its
worker with the setting's group.
"""

from __future__ import annotations

import asyncio

import pytest

from finbank_adapters.settings import Settings, SettingsError
from finbank_adapters.workers.pix_settlement import SETTLEMENT_GROUP
from finbank_cli.main import main


def test_the_default_is_the_deployed_group_and_the_variable_names_another() -> None:
    assert Settings.from_env({}).kafka.settlement_group == SETTLEMENT_GROUP
    env = {"FINBANK_KAFKA_SETTLEMENT_GROUP": "pix-settlement-run-7"}
    assert Settings.from_env(env).kafka.settlement_group == "pix-settlement-run-7"
    with pytest.raises(SettingsError, match="FINBANK_KAFKA_SETTLEMENT_GROUP"):
        Settings.from_env({"FINBANK_KAFKA_SETTLEMENT_GROUP": ""})


def test_the_worker_command_joins_the_group_the_setting_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import finbank.runtime

    built: list[str | None] = []

    class Worker:  # stands in for PixSettlementWorker: records its group, stops at once
        def __init__(self, settings: Settings, *, group_id: str | None = None) -> None:
            built.append(group_id)

        async def run(self, stop: asyncio.Event) -> None:
            return None

    monkeypatch.setattr(finbank.runtime, "PixSettlementWorker", Worker)
    monkeypatch.setenv("FINBANK_KAFKA_SETTLEMENT_GROUP", "pix-settlement-run-8")
    assert main(["worker", "pix-settlement"]) == 0
    monkeypatch.delenv("FINBANK_KAFKA_SETTLEMENT_GROUP")
    assert main(["worker", "pix-settlement"]) == 0
    assert built == ["pix-settlement-run-8", SETTLEMENT_GROUP]


def test_a_worker_built_without_a_group_joins_the_one_its_settings_name() -> None:
    from finbank.runtime import PixSettlementWorker

    named = Settings.from_env({"FINBANK_KAFKA_SETTLEMENT_GROUP": "pix-settlement-run-9"})
    assert PixSettlementWorker(named).group_id == "pix-settlement-run-9"
    assert PixSettlementWorker(Settings.from_env({})).group_id == SETTLEMENT_GROUP
    assert PixSettlementWorker(named, group_id="explicit").group_id == "explicit"
