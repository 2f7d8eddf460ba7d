"""Pix Automático: the composite BR Codes we write, and the model's calendar rules.

The codes are checked three ways: byte for byte against the BR Code
manual's composite examples, by our strict and tolerant readers, and by
another library (starkbank-brcode's reader) with the CRC recomputed by
``binascii.crc_hqx``, which shares no code with ours.
"""

from __future__ import annotations

import binascii
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from finbank_core.pix.automatic.model import (
    BRASILIA,
    Periodicity,
    RetryPolicy,
    business_date,
    debit_end_to_end_id,
    new_recurrence_id,
    start_of_day,
)
from finbank_core.pix.codes.brcode import BRCode, recurrence_template
from finbank_core.pix.codes.brcode_reader import read_brcode
from finbank_core.pix.codes.identifiers import EndToEndId
from finbank_core.pix.errors import InvalidBRCode
from finbank_core.shared.money import Money

SANDBOX = "qr-h.sandbox.pix.bcb.gov.br/rest/api"
# The manual's composite examples (the central bank's homologation sandbox).
JOURNEY_2 = (
    "00020126180014br.gov.bcb.pix5204000053039865802BR5913Fulano de Tal6008BRASILIA"
    "62070503***80950014br.gov.bcb.pix2573qr-h.sandbox.pix.bcb.gov.br/rest/api/rec/"
    "c7dc3d94706d4901a72480e98fcd52e16304BAEE"
)
JOURNEY_3 = (
    "00020101021226940014br.gov.bcb.pix2572qr-h.sandbox.pix.bcb.gov.br/rest/api/v2/"
    "b1480b32f97f488997e523a6be0a07b85204000053039865802BR5913Fulano de Tal6008BRASILIA"
    "62070503***80950014br.gov.bcb.pix2573qr-h.sandbox.pix.bcb.gov.br/rest/api/rec/"
    "375a594f208645db99dec722f7a1682863042AC3"
)
OURS = "pix.finbank.example/v2/rec/RR9999999920260105000000000a1"


def _crc_ok(code: str) -> bool:
    return f"{binascii.crc_hqx(code[:-4].encode('ascii'), 0xFFFF):04X}" == code[-4:]


def test_journey_two_is_the_manuals_example_byte_for_byte() -> None:
    code = BRCode.recurrence_only(
        recurrence_url=f"{SANDBOX}/rec/c7dc3d94706d4901a72480e98fcd52e1",
        merchant_name="Fulano de Tal",
        merchant_city="BRASILIA",
    )
    assert code.encode() == JOURNEY_2


def test_journey_three_is_the_manuals_example_byte_for_byte() -> None:
    code = BRCode.dynamic(
        location_url=f"{SANDBOX}/v2/b1480b32f97f488997e523a6be0a07b8",
        merchant_name="Fulano de Tal",
        merchant_city="BRASILIA",
    ).with_recurrence(f"https://{SANDBOX}/rec/375a594f208645db99dec722f7a16828")
    assert code.encode() == JOURNEY_3


@pytest.mark.parametrize("journey", ["2", "3", "4"])
def test_our_composite_codes_are_read_by_both_readers_and_another_library(journey: str) -> None:
    if journey == "2":
        code = BRCode.recurrence_only(
            recurrence_url=OURS, merchant_name="Academia Forte", merchant_city="SAO PAULO"
        )
    elif journey == "3":
        code = BRCode.dynamic(
            location_url="pix.finbank.example/v2/cob/0a1b2c3d",
            merchant_name="Academia Forte",
            merchant_city="SAO PAULO",
        ).with_recurrence(OURS)
    else:
        code = BRCode.static(
            key="d9b5c4a3-58a3-4f1e-9a7b-0c2d4e6f8a10",
            merchant_name="Academia Forte",
            merchant_city="SAO PAULO",
            amount=Money(30_00),
            txid="PLANO2026MARCO",
        ).with_recurrence(OURS)
    text = code.encode()

    strict, tolerant = read_brcode(text, "strict"), read_brcode(text)
    assert strict == tolerant
    assert strict.deviations == ()
    assert strict.recurrence_url == OURS
    assert strict.kind == {"2": "recurrence", "3": "dynamic", "4": "static"}[journey]
    assert BRCode.parse(text) == code  # round trip

    starkbank: Any = pytest.importorskip("brcode.utils.brcodeId", reason="starkbank-brcode")
    theirs = starkbank.jsonFromBrcode(text)
    assert theirs["80"] == {"00": "br.gov.bcb.pix", "25": OURS}
    assert theirs["26"]["00"] == "br.gov.bcb.pix"
    assert _crc_ok(text)
    if journey == "2":
        assert theirs["26"] == {"00": "br.gov.bcb.pix"}
        assert "54" not in theirs
    if journey == "4":
        assert theirs["54"] == "30.00"
        assert theirs["62"] == {"05": "PLANO2026MARCO"}


@pytest.mark.parametrize(
    ("url", "field_id", "field"),
    [
        ("pix.finbank.example/v2/cob/abc", "80", "80-25"),  # not a recurrence
        ("http://pix.finbank.example/rec/abc", "80", "80-25"),  # no TLS
        ("pix.finbank.example/rec/" + "a" * 60, "80", "80-25"),  # over 77
        ("pix.finbank.example/rec/abc", "79", "79"),  # not a template id
        ("pix.finbank.example/rec/ação", "80", "80-25"),  # not ASCII
    ],
)
def test_a_bad_recurrence_template_is_refused_naming_the_field(
    url: str, field_id: str, field: str
) -> None:
    with pytest.raises(InvalidBRCode) as refused:
        recurrence_template(url, field_id)
    assert refused.value.field == field


def test_a_code_takes_one_recurrence() -> None:
    code = BRCode.recurrence_only(recurrence_url=OURS, merchant_name="A", merchant_city="B")
    with pytest.raises(InvalidBRCode) as refused:
        code.with_recurrence(OURS)
    assert refused.value.field == "80"


# -- the calendar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("periodicity", "start", "day", "cycle"),
    [
        (Periodicity.SEMANAL, date(2026, 1, 5), date(2026, 1, 4), -1),
        (Periodicity.SEMANAL, date(2026, 1, 5), date(2026, 1, 11), 0),
        (Periodicity.SEMANAL, date(2026, 1, 5), date(2026, 1, 12), 1),
        (Periodicity.MENSAL, date(2026, 1, 31), date(2026, 2, 27), 0),
        (Periodicity.MENSAL, date(2026, 1, 31), date(2026, 2, 28), 1),  # the month's last day
        (Periodicity.MENSAL, date(2026, 1, 31), date(2026, 3, 30), 1),
        (Periodicity.MENSAL, date(2026, 1, 31), date(2026, 3, 31), 2),
        (Periodicity.TRIMESTRAL, date(2026, 1, 15), date(2026, 4, 14), 0),
        (Periodicity.TRIMESTRAL, date(2026, 1, 15), date(2026, 4, 15), 1),
        (Periodicity.SEMESTRAL, date(2026, 1, 15), date(2026, 7, 15), 1),
        (Periodicity.ANUAL, date(2024, 2, 29), date(2025, 2, 28), 1),
        (Periodicity.ANUAL, date(2024, 2, 29), date(2025, 2, 27), 0),
    ],
)
def test_the_period_of_a_day(periodicity: Periodicity, start: date, day: date, cycle: int) -> None:
    assert periodicity.cycle_of(start, day) == cycle


def test_retry_policies_set_the_last_day_an_attempt_may_run() -> None:
    due = date(2026, 3, 5)
    assert RetryPolicy.NAO_PERMITE.last_day(due) == due
    assert RetryPolicy.PERMITE_3R_7D.last_day(due) == date(2026, 3, 12)
    assert (RetryPolicy.NAO_PERMITE.max_retries, RetryPolicy.PERMITE_3R_7D.max_retries) == (0, 3)


def test_days_are_brasilia_days() -> None:
    assert business_date(datetime(2026, 1, 6, 2, 59, 59, tzinfo=UTC)) == date(2026, 1, 5)
    assert business_date(datetime(2026, 1, 6, 3, 0, tzinfo=UTC)) == date(2026, 1, 6)
    assert start_of_day(date(2026, 1, 6)) == datetime(2026, 1, 6, 3, 0, tzinfo=UTC)
    assert start_of_day(date(2026, 1, 6)).astimezone(BRASILIA).hour == 0


def test_an_attempts_end_to_end_id_is_valid_and_the_same_for_every_runner() -> None:
    first = debit_end_to_end_id("99999999", "a" * 32, 1, date(2026, 3, 5))
    assert first == debit_end_to_end_id("99999999", "a" * 32, 1, date(2026, 3, 5))
    assert first != debit_end_to_end_id("99999999", "a" * 32, 2, date(2026, 3, 5))
    parsed = EndToEndId.parse(first)
    assert parsed.ispb == "99999999"
    assert parsed.created_at == datetime(2026, 3, 5, 3, 0, tzinfo=UTC)


def test_recurrence_ids_say_whether_retries_are_allowed() -> None:
    seed = uuid.UUID(int=0xABC)
    with_retries = new_recurrence_id("99999999", RetryPolicy.PERMITE_3R_7D, date(2026, 3, 2), seed)
    without = new_recurrence_id("99999999", RetryPolicy.NAO_PERMITE, date(2026, 3, 2), seed)
    assert (with_retries[:2], without[:2]) == ("RR", "RN")
    assert len(with_retries) == len(without) == 29
    assert with_retries[2:18] == "9999999920260302"
