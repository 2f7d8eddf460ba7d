"""The PIX ids derived by name stay bit-identical to ``uuid.uuid5`` (ledger transfers and
events already stored under them must keep their ids), and the random part of an
EndToEndId, rtrId and txid, now read from the OS in one call, keeps its alphabet, length
and uniform odds."""

from __future__ import annotations

import collections
import os
import random
import string
import uuid
from datetime import UTC, datetime

import pytest

from finbank_core.accounts.use_cases import FINBANK_NAMESPACE
from finbank_core.accounts.use_cases import _uuid5 as accounts_uuid5
from finbank_core.pix.automatic import events as automatic_events
from finbank_core.pix.codes import identifiers
from finbank_core.pix.codes.identifiers import EndToEndId, ReturnId, TxId
from finbank_core.pix.events import outcome_event_id
from finbank_core.pix.med.model import med_hold_id, med_step_id, precautionary_hold_id
from finbank_core.pix.payments import pix_transfer_id
from finbank_core.shared.ids import uuid5_of

ALNUM = string.ascii_letters + string.digits
NOW = datetime(2026, 5, 1, 14, 59, tzinfo=UTC)
TEXT = "abcXYZ019-_.:/ \x1f\t\u00e7\u00e3\u4e2d\U0001f600"


def _same_uuid(derived: uuid.UUID, expected: uuid.UUID) -> None:
    assert derived.int == expected.int
    assert str(derived) == str(expected)
    assert derived == expected
    assert hash(derived) == hash(expected)
    assert derived.version == 5
    assert derived.variant == uuid.RFC_4122
    assert type(derived) is uuid.UUID
    assert derived.is_safe is expected.is_safe


def _texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)  # fixed: the same inputs every run
    made = ["", "\x1f", "a" * 5000]
    made += ["".join(rng.choice(TEXT) for _ in range(rng.randint(0, 80))) for _ in range(count)]
    return made


def test_uuid5_of_any_namespace_is_uuid5() -> None:
    rng = random.Random(3)
    namespaces = [uuid.NAMESPACE_DNS, FINBANK_NAMESPACE, uuid.UUID(int=0)]
    namespaces += [uuid.UUID(int=rng.getrandbits(128)) for _ in range(5)]
    for namespace in namespaces:
        derive = uuid5_of(namespace)
        for name in _texts(500, seed=namespace.int % 1000):
            _same_uuid(derive(name), uuid.uuid5(namespace, name))


def test_the_accounts_derivation_still_imports_and_agrees() -> None:
    for name in _texts(200, seed=5):
        _same_uuid(accounts_uuid5(name), uuid.uuid5(FINBANK_NAMESPACE, name))


def test_pix_ledger_and_med_ids_are_uuid5() -> None:
    account = uuid.UUID("0b7d7c1e-8f7a-4c61-9a55-1c2d3e4f5a6b")
    for text in _texts(300, seed=11):
        spi_id = f"E12345678202605011459{text}"
        for step in ("pending", "post", "void", "credit", text):
            _same_uuid(
                pix_transfer_id(spi_id, step),
                uuid.uuid5(FINBANK_NAMESPACE, f"pix\x1f{spi_id}\x1f{step}"),
            )
        _same_uuid(
            med_hold_id(text, account),
            uuid.uuid5(FINBANK_NAMESPACE, f"med-hold\x1f{text}\x1f{account}"),
        )
        _same_uuid(
            med_hold_id(text, account, spi_id),
            uuid.uuid5(FINBANK_NAMESPACE, f"med-hold\x1f{spi_id}\x1f{text}\x1f{account}"),
        )
        _same_uuid(
            precautionary_hold_id(spi_id),
            uuid.uuid5(FINBANK_NAMESPACE, f"med-precautionary\x1f{spi_id}"),
        )
        _same_uuid(
            med_step_id(account, text),
            uuid.uuid5(FINBANK_NAMESPACE, f"med-step\x1f{account}\x1f{text}"),
        )


def test_pix_event_ids_are_uuid5() -> None:
    outcome_ns = uuid.UUID("0d4f6a52-8b1e-5c3a-9e57-6f1c2b7d9a40")
    automatic_ns = uuid.UUID("5b0c61a4-2f0e-5d8e-a1f4-7e2d9c3b8a61")
    for text in _texts(300, seed=13):
        for type_ in ("pix.payment_settled", "pix.refund_failed", text):
            _same_uuid(outcome_event_id(type_, text), uuid.uuid5(outcome_ns, f"{type_}:{text}"))
            _same_uuid(
                automatic_events.event_id(type_, text),
                uuid.uuid5(automatic_ns, f"{type_}:{text}"),
            )


def test_ids_already_stored_are_pinned() -> None:
    """Values the code gave before the derivation changed (it called ``uuid.uuid5``)."""
    e2e = "E12345678202605011459aB3dE5fG7hJ"
    assert str(pix_transfer_id(e2e, "post")) == "5b722341-8e4b-5944-ac46-2670dfdc0a2c"
    assert str(outcome_event_id("pix.payment_settled", e2e)) == (
        "8e9b747d-7ee6-5eb0-b79b-e7ecb4557ff0"
    )


def test_the_byte_to_character_table_is_even() -> None:
    """Each of the 62 characters comes from exactly 4 byte values, the 8 others are
    dropped: a uniform byte gives a uniform character."""
    kept = (
        bytes(range(256))
        .translate(identifiers._ALNUM_OF_BYTE, identifiers._UNEVEN_BYTES)
        .decode("ascii")
    )
    assert len(kept) == 248
    assert collections.Counter(kept) == dict.fromkeys(ALNUM, 4)


def test_generated_ids_keep_their_layout() -> None:
    for _ in range(2000):
        e2e = EndToEndId.generate("12345678", NOW)
        assert len(e2e.value) == 32
        assert e2e.value[:21] == "E12345678202605011459"
        assert set(e2e.value[21:]) <= set(ALNUM)
        rtr = ReturnId.generate("12345678", NOW)
        assert rtr.value[:21] == "D12345678202605011459"
        assert set(rtr.value[21:]) <= set(ALNUM)
        txid = TxId.generate()
        assert len(txid.value) == 32
        assert set(txid.value) <= set(ALNUM)
    assert len({EndToEndId.generate("12345678", NOW) for _ in range(5000)}) == 5000


def test_every_character_is_about_equally_likely() -> None:
    """A loose bound (8 standard deviations): catches a stuck or missing character."""
    counts = collections.Counter(
        "".join(EndToEndId.generate("12345678", NOW).value[21:] for _ in range(6000))
    )
    total = 6000 * 11
    expected = total / 62
    spread = 8 * (expected * (61 / 62)) ** 0.5
    assert set(counts) == set(ALNUM)
    assert all(abs(n - expected) < spread for n in counts.values()), counts


def test_the_random_part_is_read_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.urandom

    def counted(size: int) -> bytes:
        calls.append(size)
        return real(size)

    monkeypatch.setattr(os, "urandom", counted)
    EndToEndId.generate("12345678", NOW)
    assert len(calls) == 1


def test_dropped_bytes_are_made_up_by_another_read(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = [bytes([255] * 19), bytes([0, 61, 62, 247, 248, 1, 2, 3, 4, 5, 6]), bytes([9] * 11)]

    def scripted(size: int) -> bytes:
        data = reads.pop(0)
        assert len(data) == size
        return data

    monkeypatch.setattr(os, "urandom", scripted)
    suffix = EndToEndId.generate("12345678", NOW).value[21:]
    # 0 -> a, 61 -> 9, 62 -> a (62 % 62), 247 -> 9 (247 % 62 = 61), 248 dropped, 1.. -> b..
    assert suffix == "a9a9bcdefgj"
    assert not reads
