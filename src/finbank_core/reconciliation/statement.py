"""The settlement statement format: one entry per settled E2E id or rtrId.

Modelled on camt.053 ``Ntry`` elements, reduced to what reconciliation
needs. Two encodings, chosen by file extension:

CSV (``.csv``), UTF-8, comma separated, with this header::

    entry_ref,end_to_end_id,credit_debit,amount,booking_datetime

JSON Lines (``.jsonl``), one object per line with the same names.

- ``entry_ref``: the statement's own entry reference (camt ``NtryRef``),
  text without control characters
- ``end_to_end_id``: the E2E id (``E...``) or return id (``D...``), in the
  SPI's layout (``E`` or ``D``, an ISPB, a UTC ``yyyyMMddHHmm``, 11 letters or
  digits: :mod:`finbank_core.pix.codes.identifiers`). Checked whole, not only
  its length: it is the report's first column, and a comma, a newline or a
  leading ``=`` in it would forge rows or formulas in the report CSV
- ``credit_debit``: ``CRDT`` (the bank's PI account was credited: money in)
  or ``DBIT`` (money out), camt ``CdtDbtInd``
- ``amount``: ``\\d{1,10}\\.\\d{2}``, camt ``Amt``
- ``booking_datetime``: ISO 8601 with offset, camt ``BookgDt/DtTm``
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

import msgspec

from finbank_core.pix.codes.identifiers import EndToEndId, ReturnId
from finbank_core.pix.errors import InvalidIdentifier
from finbank_core.reconciliation.model import Direction, ReconItem
from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.money import Money

CSV_HEADER = "entry_ref,end_to_end_id,credit_debit,amount,booking_datetime"
_DIRECTIONS = {"CRDT": Direction.IN, "DBIT": Direction.OUT}
_INDICATORS = {Direction.IN: "CRDT", Direction.OUT: "DBIT"}
#: an entry's key: an EndToEndId (``E...``) or, for a return, its rtrId (``D...``)
_SPI_IDS = {EndToEndId.prefix: EndToEndId, ReturnId.prefix: ReturnId}


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
    _check_spi_id(entry.end_to_end_id, line_number)
    if any(unicodedata.category(char) == "Cc" for char in entry.entry_ref):
        raise InvalidStatement(f"line {line_number}: entry_ref must not contain control characters")
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


def _check_spi_id(text: str, line_number: int) -> None:
    """Refuse a key that is not an EndToEndId or a return id, naming the broken rule.

    The value itself is left out of the message: it is the statement's text,
    not ours, and may be made to look like anything.
    """
    kind = _SPI_IDS.get(text[:1])
    if kind is None:
        raise InvalidStatement(
            f"line {line_number}: end_to_end_id must be an EndToEndId (E...) or a return id (D...)"
        )
    try:
        kind.parse(text)
    except InvalidIdentifier as exc:
        raise InvalidStatement(f"line {line_number}: end_to_end_id: {exc}") from None


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
