"""EndToEndId, ReturnId, TxId and ISPB."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finbank_core.pix import (
    EndToEndId,
    InvalidIdentifier,
    ReturnId,
    TxId,
    is_valid_ispb,
    is_valid_static_txid,
    parse_ispb,
)

BRASILIA = timezone(timedelta(hours=-3))


def test_end_to_end_id_is_written_in_utc() -> None:
    local_evening = datetime(2025, 1, 31, 23, 59, tzinfo=BRASILIA)
    e2e = EndToEndId.generate("12345678", local_evening, random.Random(7))
    assert e2e.value.startswith("E12345678202502010259")
    assert len(e2e.value) == 32
    assert e2e.ispb == "12345678"
    assert e2e.created_at == datetime(2025, 2, 1, 2, 59, tzinfo=UTC)


def test_return_id_starts_with_d() -> None:
    rtr = ReturnId.generate("0000000A", datetime(2025, 1, 1, tzinfo=UTC))
    assert rtr.value[0] == "D"
    assert ReturnId.parse(rtr.value) == rtr
    with pytest.raises(InvalidIdentifier, match="start with 'E'"):
        EndToEndId.parse(rtr.value)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        EndToEndId.generate("12345678", datetime(2025, 1, 1))  # noqa: DTZ001 - the point


def test_bad_ispb_is_refused_when_generating() -> None:
    with pytest.raises(InvalidIdentifier, match="ISPB"):
        EndToEndId.generate("1234567", datetime(2025, 1, 1, tzinfo=UTC))


def test_injected_rng_makes_generation_deterministic() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    first = EndToEndId.generate("12345678", now, random.Random(42))
    second = EndToEndId.generate("12345678", now, random.Random(42))
    assert first == second


def test_default_randomness_differs_between_calls() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    ids = {EndToEndId.generate("12345678", now).value for _ in range(50)}
    assert len(ids) == 50


VALID = "E12345678202501311459aB3dE5fG7hJ"


def test_valid_end_to_end_id_parses() -> None:
    e2e = EndToEndId.parse(VALID)
    assert e2e.created_at == datetime(2025, 1, 31, 14, 59, tzinfo=UTC)
    assert str(e2e) == VALID


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (VALID[:-1], "32 characters"),
        (VALID + "x", "32 characters"),
        ("X" + VALID[1:], "start with"),
        ("E1234567a" + VALID[9:], "ISPB"),
        ("E12345678202513311459aB3dE5fG7hJ", "date-time"),  # month 13
        ("E12345678202502301459aB3dE5fG7hJ", "date-time"),  # 30 February
        ("E12345678202501312459aB3dE5fG7hJ", "date-time"),  # hour 24
        ("E12345678+02501311459aB3dE5fG7hJ", "date-time"),
        ("E12345678202501311459aB3dE5fG7h-", "letters or digits"),
        ("E12345678202501311459aB3dE5fG7hé", "letters or digits"),
    ],
)
def test_malformed_end_to_end_id_is_refused(text: str, rule: str) -> None:
    with pytest.raises(InvalidIdentifier, match=rule):
        EndToEndId.parse(text)


@given(
    st.text(alphabet=string.digits + string.ascii_uppercase, min_size=8, max_size=8),
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - bounds of a tz-aware strategy
        max_value=datetime(2999, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC) | st.just(BRASILIA),
    ),
    st.integers(0, 2**32),
)
def test_generate_parse_round_trip(ispb: str, now: datetime, seed: int) -> None:
    e2e = EndToEndId.generate(ispb, now, random.Random(seed))
    parsed = EndToEndId.parse(e2e.value)
    assert parsed == e2e
    assert parsed.ispb == ispb
    assert parsed.created_at == now.astimezone(UTC).replace(second=0, microsecond=0)


# -- txid and ISPB --------------------------------------------------------------------


def test_generated_txid_has_32_alphanumerics() -> None:
    txid = TxId.generate()
    assert len(txid.value) == 32
    assert txid.value.isalnum()
    assert txid.value.isascii()
    assert TxId.generate(random.Random(1)) == TxId.generate(random.Random(1))


@pytest.mark.parametrize("length", [25, 36])
def test_txid_outside_26_to_35_is_refused(length: int) -> None:
    with pytest.raises(InvalidIdentifier):
        TxId.parse("a" * length)


@pytest.mark.parametrize("length", [26, 35])
def test_txid_at_the_bounds_is_accepted(length: int) -> None:
    assert TxId.parse("a" * length).value == "a" * length


def test_txid_with_punctuation_is_refused() -> None:
    with pytest.raises(InvalidIdentifier):
        TxId.parse("a" * 25 + "-")


@pytest.mark.parametrize(
    ("text", "valid"),
    [("***", True), ("A", True), ("a" * 25, True), ("a" * 26, False), ("", False), ("**", False)],
)
def test_static_txid_rules(text: str, valid: bool) -> None:
    assert is_valid_static_txid(text) is valid


def test_ispb_is_eight_digits_or_uppercase_letters() -> None:
    assert is_valid_ispb("00000000")
    assert is_valid_ispb("0000000A")
    assert not is_valid_ispb("0000000a")
    assert not is_valid_ispb("0000000")
    assert parse_ispb("60701190") == "60701190"
    with pytest.raises(InvalidIdentifier):
        parse_ispb("6070119")
