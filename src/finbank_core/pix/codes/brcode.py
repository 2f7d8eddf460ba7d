"""BR Code ("Pix Copia e Cola"): the EMV merchant-presented payload of PIX.

:class:`BRCode` is a value that is valid by construction (``__post_init__``
checks every rule, so ``encode`` cannot produce a bad code) and
``BRCode.parse(text).encode() == text`` for every code written the canonical
way: fields in ascending id order, CRC in uppercase, amount with two decimals.
The manual's example round-trips byte for byte.

Decisions where the manual leaves room (each one documented in the tests):

* Fields are re-emitted in ascending id order; a code with fields out of
  order parses, and encodes to the same fields in order. The payload format
  indicator (00) must come first and the CRC (63) last, as EMV has it.
* Unknown top-level ids (other arrangements in 26-51, templates 80-99, RFU
  ids) are kept in ``extra_templates`` as raw ``(id, value)`` pairs in
  ascending id order and re-emitted verbatim; unknown sub-fields of the PIX
  template (26) and of the additional data (62) likewise, in
  ``merchant_account_extra`` and ``additional_data_extra``. An extra
  template in 26-51 with PIX's GUI (a second PIX template), or one in 26 that
  is not TLV when the PIX template sits elsewhere, is refused: the parser
  would refuse the code it encodes to.
* Field 54 is parsed leniently (``\\d+(\\.\\d{1,2})?``, at most 13 chars, as
  generators in the wild write ``10`` or ``10.5``) and always encoded as
  ``\\d+\\.\\d{2}``; a zero amount is refused (omit 54 for an open amount).
* Field 62 with sub-field 05 (txid or ``***``) is mandatory, as the manual
  has it; dropping it is a known bug of some generators and is refused.
* The CRC must be 4 *uppercase* hex digits: accepting lowercase would let a
  one-character change of the CRC pass unnoticed.
* Text must be printable ASCII. Nothing is folded or truncated silently: use
  :func:`ascii_fold` to turn "José" into "Jose" before building a code.
* Pix Automático composite codes: a template in 80-99 whose GUI is PIX's and
  whose URL (25) has a ``/rec/`` path is the recurrence template;
  :attr:`BRCode.recurrence_url` exposes its URL. With one present, the PIX
  template (26) may hold the GUI alone (a "recurrence only" code, the
  manual's first composite example); without one, 26 needs a key or a URL.

This class is the *strict* reading. :func:`finbank_core.pix.codes.brcode_reader.read_brcode`
is the tolerant one a payer uses for codes other systems wrote.
"""

from __future__ import annotations

import unicodedata
from typing import Final, Literal

import msgspec

from finbank_core.pix.codes.crc import crc16_hex
from finbank_core.pix.codes.identifiers import is_valid_static_txid
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.errors import InvalidBRCode
from finbank_core.shared.money import Money
from finbank_core.shared.privacy import masked_repr

PIX_GUI: Final = "br.gov.bcb.pix"
MAX_PAYLOAD_LENGTH: Final = 512
_MAX_AMOUNT_CENTS: Final = 9_999_999_999_99  # 13 characters, EMV's limit for field 54
_ACCOUNT_SUBFIELDS: Final = frozenset({"00", "01", "02", "25"})
_ADDITIONAL_SUBFIELDS: Final = frozenset({"05"})
_FIXED_IDS: Final = frozenset({"00", "01", "52", "53", "54", "58", "59", "60", "61", "62", "63"})
_ACCOUNT_IDS: Final = frozenset(f"{i:02d}" for i in range(26, 52))
_CRC_DIGITS: Final = frozenset("0123456789ABCDEF")
_TWO_DIGITS: Final = {f"{i:02d}": i for i in range(100)}
_RECURRENCE_IDS: Final = frozenset(f"{i:02d}" for i in range(80, 100))
RECURRENCE_PATH: Final = "/rec/"
# What copying from web pages and chat apps leaves around a code: the Unicode
# blanks (``str.isspace``; the last of them is U+3000), the zero-width
# characters and the BOM. Tolerant reading strips any mix of them; strict
# reading refuses a code that starts or ends with one, naming the payload.
SURROUNDING_JUNK: Final = "".join(char for char in map(chr, range(0x3001)) if char.isspace()) + (
    "\u200b\u200c\u200d\u2060\ufeff"
)
_SURROUNDING_JUNK: Final = frozenset(SURROUNDING_JUNK)

Fields = tuple[tuple[str, str], ...]


def ascii_fold(text: str) -> str:
    """``text`` without accents (``"José São Paulo"`` -> ``"Jose Sao Paulo"``).

    NFKD-decomposes and keeps the ASCII part; characters with no ASCII base
    (``"ß"``, ``"Ø"``) are dropped. For callers preparing a merchant name or
    city: ``BRCode`` never folds on its own, it refuses non-ASCII text.
    """
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _tlv(field_id: str, value: str) -> str:
    return f"{field_id}{len(value):02d}{value}"


def _check_text(value: object, max_length: int, field: str) -> int:
    """Validate a text value; return the length it adds to its template (id+len+value)."""
    if (
        isinstance(value, str)
        and 0 < len(value) <= max_length
        and value.isascii()
        and value.isprintable()
    ):
        return 4 + len(value)
    if not isinstance(value, str) or not value:
        raise InvalidBRCode("must be a non-empty string", field=field)
    if len(value) > max_length:
        raise InvalidBRCode(f"at most {max_length} characters", field=field)
    raise InvalidBRCode("only printable ASCII characters are allowed", field=field)


def _check_extras(parent: str, extras: Fields, reserved: frozenset[str]) -> int:
    size, previous = 0, ""
    for item in extras:
        field_id, value = item
        field = f"{parent}-{field_id}" if parent else field_id
        if field_id not in _TWO_DIGITS:
            raise InvalidBRCode("ids are two digits", field=field or "payload")
        if field_id in reserved:
            raise InvalidBRCode("id has a dedicated attribute; not an extra field", field=field)
        if field_id <= previous:
            raise InvalidBRCode("extra fields must be in ascending id order, once", field=field)
        size += _check_text(value, 99, field)
        previous = field_id
    return size


def _check_other_accounts(templates: Fields) -> None:
    """Refuse extra templates that would make our own parsers refuse the code.

    Both parsers take the one template in 26-51 whose GUI (00) is PIX's, in
    any case, as the PIX template and refuse a code with two; tolerant reading
    finds it even when a sub-field is written empty. And 26 is PIX's own slot:
    when the PIX template sits elsewhere, a template in 26 that is not TLV is
    reported as a broken PIX template. ``BRCode`` promises that what it
    encodes parses back, so it refuses those here.
    """
    for field_id, value in templates:
        if field_id not in _ACCOUNT_IDS:
            continue
        if field_id == "26":
            try:
                _walk(value, 0, len(value), "26")
            except InvalidBRCode:
                raise InvalidBRCode(
                    "26 is the PIX template's slot: another arrangement's template "
                    "there must be TLV with no empty sub-field",
                    field="26",
                ) from None
        try:
            sub = _walk_allowing_empty(value, len(value), field_id)
        except InvalidBRCode:
            continue  # not TLV: another arrangement's template, opaque to the parsers
        if sub.get("00", "").lower() == PIX_GUI:
            raise InvalidBRCode(
                f"a second template with GUI {PIX_GUI}; a code has one PIX template",
                field=field_id,
            )


def _walk(text: str, start: int, end: int, parent: str) -> dict[str, str]:
    """Split ``text[start:end]`` into TLV fields; refuses bad, empty or repeated ones."""
    fields: dict[str, str] = {}
    pos = start
    while pos < end:
        field_id = text[pos : pos + 2]
        # Dict lookups instead of isdigit() + int(): faster, and int() would
        # take " 5" or "+5" as a length.
        size = _TWO_DIGITS.get(text[pos + 2 : pos + 4], 0)
        stop = pos + 4 + size
        if field_id not in _TWO_DIGITS or size == 0 or stop > end or field_id in fields:
            field = f"{parent}-{field_id}" if parent else field_id
            if field_id not in _TWO_DIGITS:
                raise InvalidBRCode(
                    f"expected a 2-digit id at offset {pos}", field=parent or "payload"
                )
            if text[pos + 2 : pos + 4] not in _TWO_DIGITS:
                raise InvalidBRCode("length must be 2 digits", field=field)
            if size == 0:
                raise InvalidBRCode("empty value", field=field)
            if stop > end:
                raise InvalidBRCode("length runs past the end of its template", field=field)
            raise InvalidBRCode("appears more than once", field=field)
        fields[field_id] = text[pos + 4 : stop]
        pos = stop
    return fields


def _walk_allowing_empty(text: str, end: int, parent: str) -> dict[str, str]:
    """Like :func:`_walk` on ``text[:end]``, but a length of 00 gives an empty value."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < end:
        field_id = text[pos : pos + 2]
        size = _TWO_DIGITS.get(text[pos + 2 : pos + 4], -1)
        stop = pos + 4 + size
        if field_id not in _TWO_DIGITS or size < 0 or stop > end or field_id in fields:
            raise InvalidBRCode("bad TLV", field=parent or "payload")
        fields[field_id] = text[pos + 4 : stop]
        pos = stop
    return fields


def _parse_amount(value: str) -> Money:
    whole, dot, cents = value.partition(".")
    if (
        len(value) > 13
        or not (whole.isdigit() and whole.isascii())
        or (dot and not (cents.isdigit() and cents.isascii() and 1 <= len(cents) <= 2))
    ):
        raise InvalidBRCode(
            "amount must look like 10.00 (digits, optional 1-2 decimals)", field="54"
        )
    return Money(int(whole) * 100 + (int(cents.ljust(2, "0")) if cents else 0))


def check_payload_format_first(fields: dict[str, str]) -> None:
    """EMV: the payload format indicator (00) is the first field of a code."""
    if "00" in fields and next(iter(fields)) != "00":
        raise InvalidBRCode("the payload format indicator must be the first field", field="00")


def recurrence_url_of(templates: Fields) -> str | None:
    """The URL of the Pix Automático recurrence template among ``templates``, if any.

    That is the first template in 80-99 whose GUI (00) is PIX's and whose URL
    (25) has a ``/rec/`` path; templates that are not well-formed TLV belong
    to someone else and are skipped.
    """
    for field_id, value in templates:
        if field_id not in _RECURRENCE_IDS or PIX_GUI not in value.lower():
            continue
        try:
            sub = _walk(value, 0, len(value), field_id)
        except InvalidBRCode:
            continue
        url = sub.get("25")
        if sub.get("00", "").lower() == PIX_GUI and url is not None and RECURRENCE_PATH in url:
            return url
    return None


def recurrence_template(recurrence_url: str, field_id: str = "80") -> tuple[str, str]:
    """The Pix Automático template ``(id, value)``: PIX's GUI (00) and the URL (25).

    ``recurrence_url`` is written without its scheme (``https://`` is dropped
    if given) and must have a ``/rec/`` path and at most 77 characters, so
    the template fits in 99; ``field_id`` is one of 80-99 (80 by default, as
    in the manual's examples). ``InvalidBRCode`` names the field otherwise.
    """
    if field_id not in _RECURRENCE_IDS:
        raise InvalidBRCode("the recurrence template sits in ids 80 to 99", field=str(field_id))
    url = recurrence_url[8:] if recurrence_url[:8].lower() == "https://" else recurrence_url
    _check_text(url, 77, f"{field_id}-25")
    if url[:7].lower() == "http://":
        raise InvalidBRCode("the recurrence URL is fetched over TLS only", field=f"{field_id}-25")
    if RECURRENCE_PATH not in url:
        raise InvalidBRCode(
            f"a recurrence URL has a {RECURRENCE_PATH} path", field=f"{field_id}-25"
        )
    return field_id, _tlv("00", PIX_GUI) + _tlv("25", url)


def _locate_non_ascii(text: str) -> str:
    """The id of the first field holding a non-ASCII character (best effort)."""
    pos = 0
    while pos + 4 <= len(text):
        field_id, size = text[pos : pos + 2], _TWO_DIGITS.get(text[pos + 2 : pos + 4])
        if field_id not in _TWO_DIGITS or size is None:
            break  # str.isdigit() would let "²" through to int() and crash
        stop = pos + 4 + size
        if not text[pos:stop].isascii():
            return field_id
        pos = stop
    return "payload"


class BRCode(msgspec.Struct, frozen=True, kw_only=True):
    """A PIX BR Code; invalid values cannot be constructed (``InvalidBRCode``).

    A static code has ``pix_key`` (26-01, optional ``description`` 26-02); a
    dynamic one has ``location_url`` (26-25, without ``https://``) and nothing
    else in 26; a Pix Automático "recurrence only" code has neither (26 holds
    the GUI alone, :attr:`recurrence_url` is set). Field ids:
    ``point_of_initiation`` 01 (``"12"`` = single use), ``merchant_category_code``
    52, ``amount`` 54, ``merchant_name`` 59 (<= 25),
    ``merchant_city`` 60 (<= 15), ``postal_code`` 61, ``txid`` 62-05 (<= 25
    letters/digits or ``***``). ``gui`` (26-00) keeps the case it was given,
    ``merchant_account_id`` is where the PIX template sits (26 unless another
    arrangement took 26). The ``*_extra`` tuples carry unknown fields verbatim
    (see the module docstring).
    """

    merchant_name: str
    merchant_city: str
    pix_key: str | None = None
    description: str | None = None
    location_url: str | None = None
    amount: Money | None = None
    postal_code: str | None = None
    txid: str = "***"
    point_of_initiation: Literal["11", "12"] | None = None
    merchant_category_code: str = "0000"
    gui: str = PIX_GUI
    merchant_account_id: str = "26"
    merchant_account_extra: Fields = ()
    additional_data_extra: Fields = ()
    extra_templates: Fields = ()

    def __repr__(self) -> str:
        """Without personal data: reprs reach logs and tracebacks.

        The key, the name (a merchant may be a sole trader, named after a
        person) and the free text of 26 and 62 (a description, a customer
        label, a phone number) are masked; an empty extras tuple stays ``()``
        so a reader still sees whether there is one.
        """
        return _REPRS[bool(self.merchant_account_extra), bool(self.additional_data_extra)](self)

    def __post_init__(self) -> None:
        account = self._check_account()
        size = 6 + 4 + account + 8 + 7 + 6 + 8  # 00, 26 header, 52, 53, 58, 63
        if self.point_of_initiation is not None:
            if self.point_of_initiation not in ("11", "12"):
                raise InvalidBRCode("must be 11 (reusable) or 12 (single use)", field="01")
            size += 6
        mcc = self.merchant_category_code
        if not (isinstance(mcc, str) and len(mcc) == 4 and mcc.isascii() and mcc.isdigit()):
            raise InvalidBRCode("merchant category code must be 4 digits", field="52")
        if self.amount is not None:
            if not isinstance(self.amount, Money) or self.amount.cents <= 0:
                raise InvalidBRCode(
                    "amount must be positive; omit it for an open amount", field="54"
                )
            if self.amount.cents > _MAX_AMOUNT_CENTS:
                raise InvalidBRCode("amount is over 9999999999.99", field="54")
            size += 7 + len(str(self.amount.cents // 100))  # "54" "LL" whole "." cents
        size += _check_text(self.merchant_name, 25, "59")
        size += _check_text(self.merchant_city, 15, "60")
        if self.postal_code is not None:
            size += _check_text(self.postal_code, 99, "61")
        if not (isinstance(self.txid, str) and is_valid_static_txid(self.txid)):
            raise InvalidBRCode("txid must be 1-25 letters or digits, or ***", field="62-05")
        additional = 4 + len(self.txid)
        additional += _check_extras("62", self.additional_data_extra, _ADDITIONAL_SUBFIELDS)
        if additional > 99:
            raise InvalidBRCode("additional data template is over 99 characters", field="62")
        size += 4 + additional
        if self.extra_templates:
            reserved = _FIXED_IDS | {self.merchant_account_id}
            size += _check_extras("", self.extra_templates, reserved)
            _check_other_accounts(self.extra_templates)
        if size > MAX_PAYLOAD_LENGTH:
            raise InvalidBRCode(
                f"the whole code would be {size} characters, over {MAX_PAYLOAD_LENGTH}",
                field="payload",
            )

    def _check_account(self) -> int:
        """Validate the PIX merchant account template; return its value's length."""
        where = self.merchant_account_id
        if where not in _ACCOUNT_IDS:
            raise InvalidBRCode(
                "the PIX template must sit in ids 26 to 51", field=str(where) or "26"
            )
        size = _check_text(self.gui, 99, f"{where}-00")
        if self.gui.lower() != PIX_GUI:
            raise InvalidBRCode(f"GUI must be {PIX_GUI}", field=f"{where}-00")
        if self.pix_key is None and self.location_url is None:
            if self.description is not None or self.merchant_account_extra:
                raise InvalidBRCode("a code without key or URL carries only 00 here", field=where)
            if recurrence_url_of(self.extra_templates) is None:
                raise InvalidBRCode(
                    "needs a key (static code), a location URL (dynamic code) or a "
                    "recurrence template in 80-99 (Pix Automático)",
                    field=where,
                )
            return size
        if self.pix_key is not None and self.location_url is not None:
            raise InvalidBRCode(
                "needs either a key (static code) or a location URL (dynamic code), not both",
                field=where,
            )
        if self.pix_key is not None:
            size += _check_text(self.pix_key, 77, f"{where}-01")
            if self.description is not None:
                size += _check_text(self.description, 99, f"{where}-02")
        else:
            url = self.location_url
            size += _check_text(url, 77, f"{where}-25")
            if url is not None and url[:8].lower().startswith(("https://", "http://")):
                raise InvalidBRCode("location URL goes without its scheme", field=f"{where}-25")
            if self.description is not None or self.merchant_account_extra:
                raise InvalidBRCode("a dynamic code carries only 00 and 25 here", field=where)
        size += _check_extras(where, self.merchant_account_extra, _ACCOUNT_SUBFIELDS)
        if size > 99:
            raise InvalidBRCode("merchant account template is over 99 characters", field=where)
        return size

    # -- convenience constructors -------------------------------------------

    @classmethod
    def static(
        cls,
        *,
        key: PixKey | str,
        merchant_name: str,
        merchant_city: str,
        amount: Money | None = None,
        txid: str = "***",
        description: str | None = None,
        postal_code: str | None = None,
        single_use: bool = False,
    ) -> BRCode:
        """A static code paying ``key`` (a ``PixKey`` is written in canonical form)."""
        return cls(
            pix_key=key.value if isinstance(key, PixKey) else key,
            merchant_name=merchant_name,
            merchant_city=merchant_city,
            amount=amount,
            txid=txid,
            description=description,
            postal_code=postal_code,
            point_of_initiation="12" if single_use else None,
        )

    @classmethod
    def dynamic(
        cls,
        *,
        location_url: str,
        merchant_name: str,
        merchant_city: str,
        amount: Money | None = None,
        postal_code: str | None = None,
        single_use: bool = True,
    ) -> BRCode:
        """A dynamic code pointing at a charge payload; ``https://`` is dropped if given."""
        if location_url.startswith("https://"):
            location_url = location_url[8:]
        return cls(
            location_url=location_url,
            merchant_name=merchant_name,
            merchant_city=merchant_city,
            amount=amount,
            postal_code=postal_code,
            point_of_initiation="12" if single_use else "11",
        )

    @classmethod
    def recurrence_only(
        cls, *, recurrence_url: str, merchant_name: str, merchant_city: str
    ) -> BRCode:
        """Pix Automático journey 2: 26 holds the GUI alone, the recurrence sits in 80.

        The manual's first composite example: no key, URL, amount or point
        of initiation; the payer reads the recurrence at its URL and
        authorises (or rejects) it.
        """
        return cls(
            merchant_name=merchant_name,
            merchant_city=merchant_city,
            extra_templates=(recurrence_template(recurrence_url),),
        )

    def with_recurrence(self, recurrence_url: str) -> BRCode:
        """This payment code plus the Pix Automático recurrence template (80).

        Journey 3 on a dynamic code of an immediate charge (pay it and
        authorise), journey 4 on a static or dynamic code (paying is
        enough, authorising is optional). Refused if the code already has a
        recurrence or another template in 80.
        """
        if self.recurrence_url is not None or any(f == "80" for f, _ in self.extra_templates):
            raise InvalidBRCode("the code already has a template in 80", field="80")
        templates = tuple(sorted((*self.extra_templates, recurrence_template(recurrence_url))))
        return msgspec.structs.replace(self, extra_templates=templates)

    @property
    def is_dynamic(self) -> bool:
        """True for a code whose data comes from its location URL."""
        return self.location_url is not None

    @property
    def recurrence_url(self) -> str | None:
        """The Pix Automático recurrence URL (template 80-99, ``/rec/``), if the code has one."""
        return recurrence_url_of(self.extra_templates) if self.extra_templates else None

    def parsed_pix_key(self) -> PixKey | None:
        """The key as a validated ``PixKey`` (``InvalidPixKey`` if it is not one)."""
        return None if self.pix_key is None else PixKey.parse(self.pix_key)

    # -- encoding -------------------------------------------------------------

    def encode(self) -> str:
        """The payload ("Pix Copia e Cola" text), fields in ascending id order, CRC last."""
        account = _tlv("00", self.gui)
        if self.pix_key is not None:
            account += _tlv("01", self.pix_key)
            if self.description is not None:
                account += _tlv("02", self.description)
        elif self.location_url is not None:
            account += _tlv("25", self.location_url)
        if self.merchant_account_extra:
            account = _merge(account, self.merchant_account_extra)
        additional = _tlv("05", self.txid)
        if self.additional_data_extra:
            additional = _merge(additional, self.additional_data_extra)
        name, city, amount, postal = (
            self.merchant_name,
            self.merchant_city,
            self.amount,
            self.postal_code,
        )
        # One f-string instead of a _tlv() call per field: encode is a hot path.
        body = (
            f"000201{'' if self.point_of_initiation is None else '0102' + self.point_of_initiation}"
            f"{self.merchant_account_id}{len(account):02d}{account}"
            f"5204{self.merchant_category_code}5303986"
            f"{'' if amount is None else _tlv('54', amount.to_bcb())}"
            f"5802BR59{len(name):02d}{name}60{len(city):02d}{city}"
            f"{'' if postal is None else _tlv('61', postal)}"
            f"62{len(additional):02d}{additional}"
        )
        if self.extra_templates:
            body = _merge(body, self.extra_templates)
        body += "6304"
        return body + crc16_hex(body.encode("ascii"))

    # -- parsing ----------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> BRCode:
        """Parse and validate a payload; ``InvalidBRCode`` names the first bad field.

        Refuses: a wrong, lowercase or unpadded CRC (63); bad ids or lengths;
        missing mandatory fields (00, the PIX template, 52, 53, 58, 59, 60,
        62-05, 63); 00 other than 01, 53 other than 986, 58 other than BR;
        non-ASCII or unprintable text; anything over its maximum length;
        blanks or invisible characters around the code (payload).
        """
        if not isinstance(text, str):
            raise InvalidBRCode("a BR Code is text", field="payload")
        if text and (text[0] in _SURROUNDING_JUNK or text[-1] in _SURROUNDING_JUNK):
            # Said as such: the CRC or ASCII check would blame field 63 or the text.
            raise InvalidBRCode(
                "blanks or invisible characters around the code (tolerant reading drops them)",
                field="payload",
            )
        if len(text) > MAX_PAYLOAD_LENGTH:
            raise InvalidBRCode(f"over {MAX_PAYLOAD_LENGTH} characters", field="payload")
        if not text.isascii():
            raise InvalidBRCode("only ASCII characters are allowed", field=_locate_non_ascii(text))
        end = len(text) - 8
        if end < 0 or text[end : end + 4] != "6304" or not _CRC_DIGITS.issuperset(text[-4:]):
            raise InvalidBRCode("must end with 6304 and 4 uppercase hex digits", field="63")
        expected = crc16_hex(text[:-4].encode("ascii"))
        if expected != text[-4:]:
            raise InvalidBRCode("CRC does not match the payload", field="63", expected=expected)
        fields = _walk(text, 0, end, "")
        if not text.isprintable():
            bad = next(field_id for field_id, value in fields.items() if not value.isprintable())
            raise InvalidBRCode("only printable ASCII characters are allowed", field=bad)
        check_payload_format_first(fields)
        return cls._from_fields(fields)

    @classmethod
    def _from_fields(cls, fields: dict[str, str]) -> BRCode:
        def required(field_id: str) -> str:
            value = fields.pop(field_id, None)
            if value is None:
                raise InvalidBRCode("mandatory field is missing", field=field_id)
            return value

        if "63" in fields:
            raise InvalidBRCode("the CRC must be the last field", field="63")
        if required("00") != "01":
            raise InvalidBRCode("payload format indicator must be 01", field="00")
        if required("53") != "986":
            raise InvalidBRCode("currency must be 986 (BRL)", field="53")
        if required("58") != "BR":
            raise InvalidBRCode("country must be BR", field="58")
        account_id, account = _find_pix_account(fields)
        raw_additional = required("62")
        sub62 = _walk(raw_additional, 0, len(raw_additional), "62")
        if "05" not in sub62:
            raise InvalidBRCode("mandatory txid (or ***) is missing", field="62-05")
        amount = fields.pop("54", None)
        point = fields.pop("01", None)
        return cls(
            merchant_name=required("59"),
            merchant_city=required("60"),
            merchant_category_code=required("52"),
            point_of_initiation=point,  # type: ignore[arg-type]  # checked in __post_init__
            amount=None if amount is None else _parse_amount(amount),
            postal_code=fields.pop("61", None),
            gui=account.pop("00"),
            pix_key=account.pop("01", None),
            description=account.pop("02", None),
            location_url=account.pop("25", None),
            merchant_account_id=account_id,
            merchant_account_extra=tuple(sorted(account.items())),
            txid=sub62.pop("05"),
            additional_data_extra=tuple(sorted(sub62.items())),
            extra_templates=tuple(sorted(fields.items())),
        )


def _find_pix_account(fields: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Pop the one merchant account template (26-51) whose GUI is PIX's."""
    found: list[tuple[str, dict[str, str]]] = []
    for field_id in [f for f in fields if f in _ACCOUNT_IDS]:
        value = fields[field_id]
        try:
            sub = _walk(value, 0, len(value), field_id)
        except InvalidBRCode:
            if field_id == "26":
                raise  # 26 is PIX's own slot: report its defect, not "missing"
            continue  # another arrangement's template, opaque to us
        if sub.get("00", "").lower() == PIX_GUI:
            found.append((field_id, sub))
    if not found:
        raise InvalidBRCode(f"no merchant account template with GUI {PIX_GUI}", field="26")
    if len(found) > 1:
        raise InvalidBRCode("more than one PIX merchant account template", field=found[1][0])
    account_id, sub = found[0]
    del fields[account_id]
    return account_id, sub


_PERSONAL: Final = ("pix_key", "merchant_name", "description")
_REPRS: Final = {
    (account, additional): masked_repr(
        *_PERSONAL,
        *(("merchant_account_extra",) if account else ()),
        *(("additional_data_extra",) if additional else ()),
    )
    for account in (False, True)
    for additional in (False, True)
}


def _merge(encoded: str, extras: Fields) -> str:
    """Re-split ``encoded`` TLVs, add ``extras`` and join them again in id order."""
    fields = _walk(encoded, 0, len(encoded), "")
    fields.update(extras)
    return "".join(_tlv(field_id, fields[field_id]) for field_id in sorted(fields))
