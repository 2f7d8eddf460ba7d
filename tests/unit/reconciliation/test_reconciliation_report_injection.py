"""A statement's text cannot forge rows or formulas in the report CSV.

The statement comes from outside the bank; its ids are checked against the
SPI's layout where it is parsed, and the report is written by ``csv`` with
formula-looking cells defused, since it is opened in spreadsheets.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from finbank_adapters.reconciliation.report import CSV_COLUMNS, csv_row
from finbank_core.reconciliation.model import Direction, DiscrepancyClass, ReconItem, ReconLine
from finbank_core.reconciliation.statement import (
    InvalidStatement,
    parse_csv_line,
    parse_jsonl_line,
)

AT = "2026-03-10T12:00:00-03:00"
GOOD = "E99999999202603101200abcdefghijk"


def _jsonl(end_to_end_id: str, entry_ref: str = "S1") -> str:
    return json.dumps(
        {
            "entry_ref": entry_ref,
            "end_to_end_id": end_to_end_id,
            "credit_debit": "DBIT",
            "amount": "1.00",
            "booking_datetime": AT,
        }
    )


@pytest.mark.parametrize(
    "end_to_end_id",
    [
        "E1,matched,1.00,,,OUT\nE2,x,,,,zz",  # 32 characters that forge a report row
        '=HYPERLINK("http://x")AAAAAAAAAA',  # 32 characters, a formula
        "E99999999202603101200abcdefghij\u00e9",  # 32 characters, a non-ASCII last one
        "E99999999202613101200abcdefghijk",  # month 13
        "X99999999202603101200abcdefghijk",  # neither E nor D
        "Eabcdefgh202603101200abcdefghijk",  # an ISPB of lowercase letters
    ],
)
def test_a_key_that_is_not_an_spi_id_is_refused_naming_its_line(end_to_end_id: str) -> None:
    assert len(end_to_end_id) == 32
    with pytest.raises(InvalidStatement, match="line 7: end_to_end_id"):
        parse_jsonl_line(_jsonl(end_to_end_id), 7)


def test_an_entry_ref_with_a_line_break_is_refused() -> None:
    with pytest.raises(InvalidStatement, match="line 2: entry_ref"):
        parse_jsonl_line(_jsonl(GOOD, entry_ref="S1\nE2,matched"), 2)
    with pytest.raises(InvalidStatement, match="line 3: entry_ref"):
        parse_csv_line(f"S1\rX,{GOOD},DBIT,1.00,{AT}", 3)


def _read_back(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _statement(reference: str, key: str = GOOD) -> ReconItem:
    return ReconItem(
        key=key,
        amount_cents=1_00,
        direction=Direction.OUT,
        at=datetime(2026, 3, 10, 15, tzinfo=UTC),
        reference=reference,
    )


@pytest.mark.parametrize(
    ("reference", "written"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(1,2)", "'@SUM(1,2)"),
        ("a,b\nc", "a,b\nc"),
    ],
)
def test_a_report_cell_cannot_forge_a_row_or_run_as_a_formula(reference: str, written: str) -> None:
    line = ReconLine(
        key=GOOD, klass=DiscrepancyClass.IN_STATEMENT_NOT_BOOKED, statement=_statement(reference)
    )

    [row] = _read_back(csv_row(line))

    assert len(row) == len(CSV_COLUMNS)
    assert row[CSV_COLUMNS.index("statement_ref")] == written
    assert row[CSV_COLUMNS.index("statement_amount")] == "1.00"


def test_a_key_from_another_source_is_quoted_and_defused_too() -> None:
    line = ReconLine(
        key="=1+1,x",
        klass=DiscrepancyClass.IN_STATEMENT_NOT_BOOKED,
        statement=_statement("-1.00", key="=1+1,x"),
    )

    [row] = _read_back(csv_row(line))

    assert row[0] == "'=1+1,x"
    # a plain number is a number, not a formula: left as it is
    assert row[CSV_COLUMNS.index("statement_ref")] == "-1.00"
