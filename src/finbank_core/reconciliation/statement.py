"""The settlement statement format: one entry per settled E2E id or rtrId.

Modelled on camt.053 ``Ntry`` elements, reduced to what reconciliation
needs. Two encodings, chosen by file extension:

CSV (``.csv``), UTF-8, comma separated, with this header::

    entry_ref,end_to_end_id,credit_debit,amount,booking_datetime

JSON Lines (``.jsonl``), one object per line with the same names.

- ``entry_ref``: the statement's own entry reference (camt ``NtryRef``)
- ``end_to_end_id``: the E2E id (``E...``) or return id (``D...``)
- ``credit_debit``: ``CRDT`` (the bank's PI account was credited: money in)
  or ``DBIT`` (money out), camt ``CdtDbtInd``
- ``amount``: ``\\d{1,10}\\.\\d{2}``, camt ``Amt``
- ``booking_datetime``: ISO 8601 with offset, camt ``BookgDt/DtTm``
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from finbank_core.reconciliation.model import Direction, ReconItem
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.money import Money

CSV_HEADER = "entry_ref,end_to_end_id,credit_debit,amount,booking_datetime"
_DIRECTIONS = {"CRDT": Direction.IN, "DBIT": Direction.OUT}
_INDICATORS = {Direction.IN: "CRDT", Direction.OUT: "DBIT"}


class InvalidStatement(InvalidInput):
    code = "invalid_settlement_statement"
    title = "The settlement statement is malformed"


class StatementEntry(msgspec.Struct, frozen=True):
    entry_ref: str
    end_to_end_id: str
    credit_debit: str
    amount: str
    booking_datetime: datetime


_json_decoder = msgspec.json.Decoder(StatementEntry)
_json_encoder = msgspec.json.Encoder()


def _item(entry: StatementEntry, line_number: int) -> ReconItem:
    direction = _DIRECTIONS.get(entry.credit_debit)
    if direction is None:
        raise InvalidStatement(f"line {line_number}: credit_debit must be CRDT or DBIT")
    if entry.booking_datetime.tzinfo is None:
        raise InvalidStatement(f"line {line_number}: booking_datetime needs an offset")
    if not entry.end_to_end_id or len(entry.end_to_end_id) != 32:
        raise InvalidStatement(f"line {line_number}: end_to_end_id must have 32 characters")
    try:
        amount = Money.from_bcb(entry.amount).cents
    except InvalidInput:
        raise InvalidStatement(f"line {line_number}: amount must look like 1234.56") from None
    return ReconItem(
        key=entry.end_to_end_id,
        amount_cents=amount,
        direction=direction,
        at=entry.booking_datetime,
        reference=entry.entry_ref,
    )


def parse_csv_line(line: str, line_number: int) -> ReconItem:
    fields = line.rstrip("\r\n").split(",")
    if len(fields) != 5:
        raise InvalidStatement(f"line {line_number}: expected 5 fields, found {len(fields)}")
    try:
        when = datetime.fromisoformat(fields[4])
    except ValueError:
        raise InvalidStatement(f"line {line_number}: booking_datetime is not ISO 8601") from None
    return _item(StatementEntry(fields[0], fields[1], fields[2], fields[3], when), line_number)


def parse_jsonl_line(line: str | bytes, line_number: int) -> ReconItem:
    try:
        entry = _json_decoder.decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidStatement(f"line {line_number}: {exc}") from None
    return _item(entry, line_number)


def format_csv_line(item: ReconItem) -> str:
    return ",".join(
        (
            item.reference,
            item.key,
            _INDICATORS[item.direction],
            Money(item.amount_cents).to_bcb(),
            item.at.isoformat(),
        )
    )


def format_jsonl_line(item: ReconItem) -> bytes:
    return _json_encoder.encode(
        StatementEntry(
            entry_ref=item.reference,
            end_to_end_id=item.key,
            credit_debit=_INDICATORS[item.direction],
            amount=Money(item.amount_cents).to_bcb(),
            booking_datetime=item.at,
        )
    )
