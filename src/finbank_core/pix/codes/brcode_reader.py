"""Reading BR Codes other systems wrote: one parser, a strict and a tolerant mode.

:class:`~finbank_core.pix.codes.brcode.BRCode` is exact: it is what we issue, and
``BRCode.parse`` refuses anything it would not write itself. A payer has to
read what other banks' systems write and what people copy and paste, so
:func:`read_brcode` has two modes:

* ``"strict"``: ``BRCode.parse``; a :class:`BRCodeReading` with no deviations.
* ``"tolerant"`` (the default for paying): reads the classes of defects below,
  seen in real codes, and lists each one it tolerated as a :class:`Deviation`
  with a stable ``code`` and the EMV ``field``, so an app can log or show them.

Tolerated (``Deviation.code``, field), and nothing else:

* ``surrounding_whitespace`` (payload): blanks, a newline or zero-width
  characters around the code, in any mix (strict reading refuses them, naming
  the payload).
* ``crc_lowercase`` (63): the CRC in lowercase (or mixed case) hex.
* ``lengths_in_utf8_bytes`` (payload): lengths count UTF-8 bytes, not
  characters, at the top level or inside the PIX template or 62; tried for
  the code, or a template, only when it has non-ASCII text and does not walk
  with character lengths. Noted once per code.
* ``amount_trailing_point`` (54): ``10.``, a point with no decimals.
* ``txid_missing`` (62 or 62-05): no additional data field, no 05 in it, or
  either written empty; read as ``***`` (no txid), which is what the payer
  sends either way.
* ``txid_not_alphanumeric`` (62-05): the txid has other characters or is over
  25 long; kept *verbatim* (never rewritten). A dynamic code's txid comes from
  the payload at its URL, so there the value in the code is only informative.
* ``text_not_ascii`` (59, 60, 61, 26-02, and any other field we do not
  interpret: another arrangement's template, 80-99, 62-50...): accented or
  other non-ASCII text. A key is never read from non-ASCII text: refused.
* ``text_too_long`` (59, 60): a name over 25 or a city over 15 characters. The
  payer shows the name from the key directory anyway.
* ``location_url_scheme`` (26-25): the URL written with ``https://``; read
  without it, as the manual writes it (``http://`` is refused: the payer only
  fetches over TLS).
* ``account_extra_fields`` (26): a dynamic or recurrence-only code whose PIX
  template holds more than the GUI and the URL (a description, say); those
  sub-fields are not read, the payload at the URL has the data.
* ``empty_field`` (26-02 and the PIX template's other sub-fields but its GUI,
  key and URL; 62's sub-fields but 05; 61; 64-99 and other arrangements'
  templates): a field written with length ``00``, as generators do for an
  empty description (go-pix, python-brcode, qrcode-pix in Java); read as
  absent. An empty 62-05 is ``txid_missing`` and an empty 62 is read as no
  62; an empty GUI, key, URL, amount or mandatory field is refused.

Refused in both modes, naming the field (``InvalidBRCode``): a wrong, missing
or truncated CRC (a 3-digit one, its leading zero dropped, included); a bad id
or length, a length past its template, a repeated field; a payload format
indicator (00) that is not the first field; a missing mandatory field (00, the
PIX template with its GUI, 52, 53, 58, 59, 60); a zero, negative or malformed
amount; a key and a URL together, or neither without a recurrence template;
unprintable characters; anything over 512 characters. The key, URL, amount and
txid are never changed: a reading either carries them as written or refuses
the code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

import msgspec

from finbank_core.pix.codes.brcode import (
    _ACCOUNT_IDS,
    _MAX_AMOUNT_CENTS,
    _TWO_DIGITS,
    MAX_PAYLOAD_LENGTH,
    PIX_GUI,
    SURROUNDING_JUNK,
    BRCode,
    _walk,
    _walk_allowing_empty,
    check_payload_format_first,
    recurrence_url_of,
)
from finbank_core.pix.codes.crc import crc16_hex
from finbank_core.pix.codes.identifiers import is_valid_static_txid
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.errors import InvalidBRCode
from finbank_core.shared.money import Money
from finbank_core.shared.privacy import masked_repr

ReadMode = Literal["strict", "tolerant"]
_HEX: Final = frozenset("0123456789ABCDEFabcdef")


class DeviationCode(StrEnum):
    """The stable codes of what tolerant reading accepts (see the module docstring)."""

    SURROUNDING_WHITESPACE = "surrounding_whitespace"
    CRC_LOWERCASE = "crc_lowercase"
    LENGTHS_IN_UTF8_BYTES = "lengths_in_utf8_bytes"
    AMOUNT_TRAILING_POINT = "amount_trailing_point"
    TXID_MISSING = "txid_missing"
    TXID_NOT_ALPHANUMERIC = "txid_not_alphanumeric"
    TEXT_NOT_ASCII = "text_not_ascii"
    TEXT_TOO_LONG = "text_too_long"
    LOCATION_URL_SCHEME = "location_url_scheme"
    ACCOUNT_EXTRA_FIELDS = "account_extra_fields"
    EMPTY_FIELD = "empty_field"


_MESSAGES: Final = {
    DeviationCode.SURROUNDING_WHITESPACE: "blanks around the code were ignored",
    DeviationCode.CRC_LOWERCASE: "the CRC is in lowercase hex",
    DeviationCode.LENGTHS_IN_UTF8_BYTES: "lengths count UTF-8 bytes instead of characters",
    DeviationCode.AMOUNT_TRAILING_POINT: "the amount ends with a point and no decimals",
    DeviationCode.TXID_MISSING: "no txid; read as *** (none)",
    DeviationCode.TXID_NOT_ALPHANUMERIC: "the txid is not 1-25 letters or digits; kept as written",
    DeviationCode.TEXT_NOT_ASCII: "the text is not ASCII",
    DeviationCode.TEXT_TOO_LONG: "the text is longer than the manual allows",
    DeviationCode.LOCATION_URL_SCHEME: "the URL carries https://; read without it",
    DeviationCode.ACCOUNT_EXTRA_FIELDS: "a dynamic code's PIX template has more than 00 and 25",
    DeviationCode.EMPTY_FIELD: "an optional field is written with length 00; read as absent",
}
# Fields that may not be empty even in tolerant mode: mandatory ones, and the
# ones a payment is made with (a key, a URL, an amount are never guessed).
_NEVER_EMPTY: Final = frozenset({"00", "01", "52", "53", "54", "58", "59", "60", "63"})


class Deviation(msgspec.Struct, frozen=True):
    """One departure from the manual that tolerant reading accepted.

    ``code`` is stable (a :class:`DeviationCode` value), ``field`` is the EMV id
    (``"62-05"`` style for a sub-field, ``"payload"`` for the whole code).
    ``message`` is for people; it never contains the field's value.
    """

    code: str
    field: str
    message: str

    @classmethod
    def of(cls, code: DeviationCode, field: str) -> Deviation:
        return cls(code=code.value, field=field, message=_MESSAGES[code])


class BRCodeReading(msgspec.Struct, frozen=True, kw_only=True):
    """What a payer reads from a BR Code, strict or tolerant.

    Same names as :class:`BRCode` for what both have. ``kind`` is ``static``
    (``pix_key``), ``dynamic`` (``location_url``) or ``recurrence`` (a Pix
    Automático code with only ``recurrence_url``); a composite code has
    ``recurrence_url`` beside a key or URL. ``txid`` is ``"***"`` for none.
    ``deviations`` is empty for a code that passes strict reading.
    """

    merchant_name: str
    merchant_city: str
    pix_key: str | None = None
    description: str | None = None
    location_url: str | None = None
    recurrence_url: str | None = None
    amount: Money | None = None
    postal_code: str | None = None
    txid: str = "***"
    point_of_initiation: Literal["11", "12"] | None = None
    merchant_category_code: str = "0000"
    deviations: tuple[Deviation, ...] = ()

    # The key, the name (a merchant may be a person) and the free-text
    # description (26-02) are personal data; reprs reach logs.
    __repr__ = masked_repr("pix_key", "merchant_name", "description")

    @property
    def kind(self) -> Literal["static", "dynamic", "recurrence"]:
        if self.pix_key is not None:
            return "static"
        return "dynamic" if self.location_url is not None else "recurrence"

    @property
    def is_dynamic(self) -> bool:
        """True for a code whose payment data comes from its location URL."""
        return self.location_url is not None

    @property
    def deviation_codes(self) -> frozenset[str]:
        return frozenset(d.code for d in self.deviations)

    def parsed_pix_key(self) -> PixKey | None:
        """The key as a validated ``PixKey`` (``InvalidPixKey`` if it is not one)."""
        return None if self.pix_key is None else PixKey.parse(self.pix_key)

    def static_payment(self) -> tuple[PixKey, str | None]:
        """The key and txid (``None`` for ``***``) a payer sends for a static code.

        Refuses (``InvalidBRCode``) what cannot be paid as a static code: a
        recurrence-only code (an authorisation of Pix Automático, not a payment)
        and a txid that is not 1-25 letters or digits, which the payment message
        cannot carry and which is never rewritten. ``InvalidPixKey`` for a key
        that is not one.
        """
        key = self.parsed_pix_key()
        if key is None:
            if self.location_url is None:
                raise InvalidBRCode(
                    "a recurrence-only code authorises Pix Automático; it is not a payment",
                    field="26",
                )
            raise InvalidBRCode("a dynamic code is paid from its location URL", field="26")
        if DeviationCode.TXID_NOT_ALPHANUMERIC.value in self.deviation_codes:
            raise InvalidBRCode(
                "the txid must be 1-25 letters or digits to be sent with the payment",
                field="62-05",
            )
        return key, None if self.txid == "***" else self.txid

    @classmethod
    def of(cls, code: BRCode) -> BRCodeReading:
        """The reading of a (strictly valid) ``BRCode``: no deviations."""
        return cls(
            merchant_name=code.merchant_name,
            merchant_city=code.merchant_city,
            pix_key=code.pix_key,
            description=code.description,
            location_url=code.location_url,
            recurrence_url=code.recurrence_url,
            amount=code.amount,
            postal_code=code.postal_code,
            txid=code.txid,
            point_of_initiation=code.point_of_initiation,
            merchant_category_code=code.merchant_category_code,
        )


def read_brcode(text: str, mode: ReadMode = "tolerant") -> BRCodeReading:
    """Read a BR Code; ``InvalidBRCode`` (naming the field) if it cannot be read.

    ``mode="strict"`` accepts exactly what ``BRCode.parse`` accepts;
    ``"tolerant"`` also accepts the deviations of the module docstring and
    lists them in ``deviations``. No other exception escapes.
    """
    if mode == "strict":
        return BRCodeReading.of(BRCode.parse(text))
    if mode != "tolerant":
        raise InvalidBRCode("mode must be strict or tolerant", field="payload")
    return _Tolerant(text).read()


class _Tolerant:
    """One tolerant reading: collects deviations while it walks the code."""

    __slots__ = ("deviations", "text")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise InvalidBRCode("a BR Code is text", field="payload")
        self.deviations: list[Deviation] = []
        self.text = text

    def note(self, code: DeviationCode, field: str) -> None:
        self.deviations.append(Deviation.of(code, field))

    def note_byte_lengths(self) -> None:
        """Note ``lengths_in_utf8_bytes`` once per code, however many templates needed it."""
        deviation = Deviation.of(DeviationCode.LENGTHS_IN_UTF8_BYTES, "payload")
        if deviation not in self.deviations:
            self.deviations.append(deviation)

    def read(self) -> BRCodeReading:
        text = self.text
        # One pass over the union of blanks and invisible characters: any mix of
        # them ("\u200b \u200b") goes, in time linear in the text.
        stripped = text.strip(SURROUNDING_JUNK)
        if stripped != text and stripped:
            self.note(DeviationCode.SURROUNDING_WHITESPACE, "payload")
        text = stripped
        if len(text) > MAX_PAYLOAD_LENGTH:
            raise InvalidBRCode(f"over {MAX_PAYLOAD_LENGTH} characters", field="payload")
        fields = self._checked_fields(text)
        return self._from_fields(fields)

    # -- CRC and TLV ------------------------------------------------------------

    def _checked_fields(self, text: str) -> dict[str, str]:
        end = len(text) - 8
        crc = text[-4:]
        if end < 0 or text[end : end + 4] != "6304" or not _HEX.issuperset(crc):
            raise InvalidBRCode("must end with 6304 and 4 hex digits", field="63")
        ascii_only = text.isascii()
        body = text[:-4].encode("ascii" if ascii_only else "utf-8", "surrogatepass")
        expected = crc16_hex(body)
        if crc != expected:
            if crc.upper() != expected:
                raise InvalidBRCode("CRC does not match the payload", field="63", expected=expected)
            self.note(DeviationCode.CRC_LOWERCASE, "63")
        fields = _walk_chars(text, end, "") if ascii_only else self._walk_unicode(text, end, body)
        if not text.isprintable():
            bad = next((f for f, value in fields.items() if not value.isprintable()), "payload")
            raise InvalidBRCode("only printable characters are allowed", field=bad)
        check_payload_format_first(fields)
        return fields

    def _walk_unicode(self, text: str, end: int, body: bytes) -> dict[str, str]:
        """Walk with character lengths, else with UTF-8 byte lengths (noted)."""
        try:
            return _walk_chars(text, end, "")
        except InvalidBRCode as by_characters:
            raw = body[:-4]  # without "6304"
            try:
                fields = _walk_bytes(raw)
            except (InvalidBRCode, UnicodeDecodeError):
                raise by_characters from None
            self.note_byte_lengths()
            return fields

    # -- fields -------------------------------------------------------------------

    def _from_fields(self, fields: dict[str, str]) -> BRCodeReading:
        def required(field_id: str) -> str:
            value = fields.pop(field_id, None)
            if value is None:
                raise InvalidBRCode("mandatory field is missing", field=field_id)
            return value

        if "63" in fields:
            raise InvalidBRCode("the CRC must be the last field", field="63")
        if "" in fields.values():
            self._drop_empty_fields(fields)
        if required("00") != "01":
            raise InvalidBRCode("payload format indicator must be 01", field="00")
        if required("53") != "986":
            raise InvalidBRCode("currency must be 986 (BRL)", field="53")
        if required("58") != "BR":
            raise InvalidBRCode("country must be BR", field="58")
        point = fields.pop("01", None)
        if point is not None and point not in ("11", "12"):
            raise InvalidBRCode("must be 11 (reusable) or 12 (single use)", field="01")
        mcc = required("52")
        if not (len(mcc) == 4 and mcc.isascii() and mcc.isdigit()):
            raise InvalidBRCode("merchant category code must be 4 digits", field="52")
        raw_amount = fields.pop("54", None)
        amount = None if raw_amount is None else self._amount(raw_amount)
        name = self._text(required("59"), "59", 25)
        city = self._text(required("60"), "60", 15)
        postal = fields.pop("61", None)
        if postal is not None:
            postal = self._text(postal, "61", 99)
        txid = self._txid(fields.pop("62", None))
        account_id, account, by_bytes = _pix_account(fields)
        if by_bytes:
            self.note_byte_lengths()
        recurrence = recurrence_url_of(tuple(fields.items())) if fields else None
        key, url, description = self._account(account_id, account, recurrence)
        for field_id, value in fields.items():  # other arrangements, templates 80-99
            if field_id != account_id and not value.isascii():
                self.note(DeviationCode.TEXT_NOT_ASCII, field_id)
        return BRCodeReading(
            merchant_name=name,
            merchant_city=city,
            pix_key=key,
            description=description,
            location_url=url,
            recurrence_url=recurrence,
            amount=amount,
            postal_code=postal,
            txid=txid,
            point_of_initiation=point,  # type: ignore[arg-type]  # checked above
            merchant_category_code=mcc,
            deviations=tuple(self.deviations),
        )

    def _drop_empty_fields(self, fields: dict[str, str]) -> None:
        """Read optional fields written with length 00 as absent (noted)."""
        for field_id, value in list(fields.items()):
            if value:
                continue
            if field_id in _NEVER_EMPTY:
                raise InvalidBRCode("empty value", field=field_id)
            del fields[field_id]
            if field_id != "62":  # an empty 62 is noted as txid_missing by _txid
                self.note(DeviationCode.EMPTY_FIELD, field_id)

    def _amount(self, value: str) -> Money:
        whole, dot, cents = value.partition(".")
        if dot and not cents and whole:
            self.note(DeviationCode.AMOUNT_TRAILING_POINT, "54")
        elif dot and not (cents.isascii() and cents.isdigit() and len(cents) <= 2):
            whole = ""  # refused below
        if not (whole.isascii() and whole.isdigit()) or len(value) > 13:
            raise InvalidBRCode(
                "amount must look like 10.00 (digits, optional 1-2 decimals)", field="54"
            )
        amount = Money(int(whole) * 100 + (int(cents.ljust(2, "0")) if cents else 0))
        if amount.cents <= 0:
            raise InvalidBRCode("amount must be positive; omit it for an open amount", field="54")
        if amount.cents > _MAX_AMOUNT_CENTS:
            raise InvalidBRCode("amount is over 9999999999.99", field="54")
        return amount

    def _text(self, value: str, field: str, max_length: int) -> str:
        if not value.isascii():
            self.note(DeviationCode.TEXT_NOT_ASCII, field)
        if len(value) > max_length:
            self.note(DeviationCode.TEXT_TOO_LONG, field)
        return value

    def _txid(self, additional: str | None) -> str:
        if additional is None:
            self.note(DeviationCode.TXID_MISSING, "62")
            return "***"
        sub, by_bytes = _walk_sub(additional, "62")
        if by_bytes:
            self.note_byte_lengths()
        for field_id in [f for f, value in sub.items() if not value]:
            del sub[field_id]
            if field_id != "05":  # an empty txid is noted as missing below
                self.note(DeviationCode.EMPTY_FIELD, f"62-{field_id}")
        txid = sub.get("05")
        if txid is None:
            self.note(DeviationCode.TXID_MISSING, "62-05")
            return "***"
        if not is_valid_static_txid(txid):
            self.note(DeviationCode.TXID_NOT_ALPHANUMERIC, "62-05")
        self._note_non_ascii_extras("62", sub, ("05",))
        return txid

    def _note_non_ascii_extras(
        self, parent: str, sub: dict[str, str], known: tuple[str, ...]
    ) -> None:
        for field_id, value in sub.items():
            if field_id not in known and not value.isascii():
                self.note(DeviationCode.TEXT_NOT_ASCII, f"{parent}-{field_id}")

    def _account(
        self, where: str, account: dict[str, str], recurrence: str | None
    ) -> tuple[str | None, str | None, str | None]:
        for field_id in [f for f, value in account.items() if not value]:
            if field_id in ("01", "25"):
                raise InvalidBRCode("empty value", field=f"{where}-{field_id}")
            del account[field_id]
            self.note(DeviationCode.EMPTY_FIELD, f"{where}-{field_id}")
        key, url, description = account.get("01"), account.get("25"), account.get("02")
        if key is not None and url is not None:
            raise InvalidBRCode("a key and a location URL together; need one of them", field=where)
        if (key is None) and len(account) > (1 if url is None else 2):
            self.note(DeviationCode.ACCOUNT_EXTRA_FIELDS, where)
        if key is None and url is None:
            if recurrence is None:
                raise InvalidBRCode(
                    "needs a key (static code), a location URL (dynamic code) or a "
                    "recurrence template in 80-99 (Pix Automático)",
                    field=where,
                )
            return None, None, None
        if key is not None:
            if len(key) > 77 or not key.isascii():
                # Never rewritten: a key that is not ASCII cannot be a DICT key.
                raise InvalidBRCode("the key is at most 77 ASCII characters", field=f"{where}-01")
            if description is not None:
                self._text(description, f"{where}-02", 99)
            self._note_non_ascii_extras(where, account, ("00", "01", "02"))
            return key, None, description
        assert url is not None
        scheme = url[:8].lower()
        if scheme.startswith("http://"):
            raise InvalidBRCode("the location URL must be fetched over https", field=f"{where}-25")
        if scheme == "https://":
            url = url[8:]
            self.note(DeviationCode.LOCATION_URL_SCHEME, f"{where}-25")
        if not url or not url.isascii():
            raise InvalidBRCode("the location URL must be non-empty ASCII", field=f"{where}-25")
        return None, url, None


def _pix_account(fields: dict[str, str]) -> tuple[str, dict[str, str], bool]:
    """The one merchant account template (26-51) whose GUI is PIX's.

    With its sub-fields, and whether their lengths count UTF-8 bytes.
    """
    found: list[tuple[str, dict[str, str], bool]] = []
    for field_id, value in fields.items():
        if field_id not in _ACCOUNT_IDS:
            continue
        try:
            sub, by_bytes = _walk_sub(value, field_id)
        except InvalidBRCode:
            if field_id == "26":
                raise  # 26 is PIX's own slot: report its defect, not "missing"
            continue  # another arrangement's template, opaque to us
        if sub.get("00", "").lower() == PIX_GUI:
            found.append((field_id, sub, by_bytes))
    if not found:
        raise InvalidBRCode(f"no merchant account template with GUI {PIX_GUI}", field="26")
    if len(found) > 1:
        raise InvalidBRCode("more than one PIX merchant account template", field=found[1][0])
    return found[0]


def _walk_chars(text: str, end: int, parent: str) -> dict[str, str]:
    """``text[:end]`` as TLV fields; a field of length 00 is kept as ``""``.

    The strict walk first (the fast path, and its error for anything else
    that is wrong); the walk that allows empty values only when it fails.
    """
    try:
        return _walk(text, 0, end, parent)
    except InvalidBRCode as strict:
        try:
            return _walk_allowing_empty(text, end, parent)
        except InvalidBRCode:
            if not parent:
                _refuse_three_digit_length(text, end)
            raise strict from None


def _refuse_three_digit_length(text: str, end: int) -> None:
    """Name the template whose length is written with 3 digits, if that is the defect.

    Some generators (sandboxes of banks and of PSPs among them) write a PIX
    template longer than 99 characters with a 3-digit length (``26101...``).
    EMV lengths are 2 digits, so such a code is refused; this only makes the
    refusal name the template instead of the offset where the walk got lost.
    """
    pos, found = 0, ""
    while pos < end:
        field_id, digits = text[pos : pos + 2], text[pos + 2 : pos + 5]
        if field_id not in _TWO_DIGITS:
            return
        if (
            (field_id in _ACCOUNT_IDS or "80" <= field_id <= "99")
            and digits.isascii()
            and digits.isdigit()
            and int(digits) > 99
            and text[pos + 5 : pos + 7] == "00"
        ):
            found = found or field_id
            pos += 5 + int(digits)
            continue
        size = _TWO_DIGITS.get(text[pos + 2 : pos + 4], -1)
        if size < 0:
            return
        pos += 4 + size
    if found and pos == end:
        raise InvalidBRCode(
            "length written with 3 digits; EMV lengths are 2 digits (at most 99)", field=found
        )


def _walk_sub(value: str, parent: str) -> tuple[dict[str, str], bool]:
    """The sub-fields of template ``parent`` (empty ones kept as ``""``), and
    whether their lengths count UTF-8 bytes.

    As at the top level, byte lengths are tried only when the template has
    non-ASCII text and does not walk with character lengths: a generator that
    counts bytes (PHP's ``strlen``) counts them in 26 and 62 too, so an accent
    in 26-02 or 62-50 would otherwise leave a sub-field running past its
    template. The error of the character walk is the one reported.
    """
    try:
        return _walk_chars(value, len(value), parent), False
    except InvalidBRCode as by_characters:
        if value.isascii():
            raise
        try:
            return _walk_bytes(value.encode("utf-8", "surrogatepass")), True
        except (InvalidBRCode, UnicodeDecodeError):
            raise by_characters from None


def _walk_bytes(raw: bytes) -> dict[str, str]:
    """TLV walk (the code, or a template's value) where lengths count UTF-8 bytes;
    values decoded, empty ones kept as ``""``."""
    fields: dict[str, str] = {}
    pos, end = 0, len(raw)
    while pos < end:
        field_id = raw[pos : pos + 2].decode("ascii")
        size = _TWO_DIGITS.get(raw[pos + 2 : pos + 4].decode("ascii"), -1)
        stop = pos + 4 + size
        if field_id not in _TWO_DIGITS or size < 0 or stop > end or field_id in fields:
            raise InvalidBRCode("bad TLV with UTF-8 byte lengths", field=field_id or "payload")
        fields[field_id] = raw[pos + 4 : stop].decode("utf-8")
        pos = stop
    return fields
