"""Fields every context's commands share, and the one place their rules live.

* :data:`IdempotencyKey`: a client's idempotency key, 1 to
  :data:`MAX_IDEMPOTENCY_KEY_LENGTH` characters; a retry with the same key is
  answered like the first request.
* :data:`Memo`: a free-text note shown on a statement (a transfer's or a PIX
  payment's ``description``), at most :data:`MAX_MEMO_LENGTH` characters.
* :data:`DeviceId`: the app installation a PIX payment was made from (a
  device new to PIX is capped), 1 to :data:`MAX_DEVICE_ID_LENGTH` characters.

Both are ``str`` annotated with their limits, so a command decoded by msgspec
is checked on the way in; a command built in Python is checked by the use
case with :func:`check_idempotency_key` and :func:`check_memo`, which raise
``InvalidInput`` (stable code ``invalid_input``) naming the field, never its
value.

Neither may hold a NUL or an unpaired surrogate (``"\\ud800"``, which a JSON
``\\u`` escape or ``surrogateescape`` decoding can put in a ``str``): no UTF-8
encoding has the second, and PostgreSQL's ``text`` refuses the first. Checked
here, both are refused alike on every backend before anything is stored (the
in-memory adapters would keep what PostgreSQL refuses).
"""

from __future__ import annotations

import collections.abc
import enum
import types
import typing
import uuid
from datetime import date, datetime
from typing import Annotated, Any

import msgspec

from finbank_core.shared.errors import InvalidInput
from finbank_core.shared.money import Money

MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_MEMO_LENGTH = 140
MAX_DEVICE_ID_LENGTH = 128

_Id = typing.TypeVar("_Id", str, str | None)

IdempotencyKey = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
        description="The client's idempotency key: a retry with it is answered like the first.",
    ),
]
Memo = Annotated[
    str,
    msgspec.Meta(
        max_length=MAX_MEMO_LENGTH,
        description="A free-text note shown on the statement.",
    ),
]
DeviceId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_DEVICE_ID_LENGTH,
        description="The app installation; a device new to PIX is capped.",
    ),
]


def check_idempotency_key(
    value: str, *, field: str = "idempotency_key", name: str = "idempotency key"
) -> str:
    """``value`` if it is a valid :data:`IdempotencyKey`, else ``InvalidInput``.

    ``field`` and ``name`` say which of the command's fields it is (a refund's
    ``client_refund_id`` is the receiver's idempotency key for that refund).
    """
    if not value or len(value) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidInput(
            f"{name} must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters", field=field
        )
    unstorable = unstorable_text(value)
    if unstorable is not None:
        raise InvalidInput(f"{name} must not contain {unstorable}", field=field)
    return value


def check_memo(value: str | None, *, field: str = "description") -> str | None:
    """``value`` if it is ``None`` or a valid :data:`Memo`, else ``InvalidInput``."""
    if value is None:
        return None
    if len(value) > MAX_MEMO_LENGTH:
        raise InvalidInput(f"{field} must be at most {MAX_MEMO_LENGTH} characters", field=field)
    unstorable = unstorable_text(value)
    if unstorable is not None:
        raise InvalidInput(f"{field} must not contain {unstorable}", field=field)
    return value


def check_text(value: str, *, field: str, name: str) -> str:
    """``value`` if every backend can store it as text, else ``InvalidInput`` naming
    ``field``: the rule of :func:`check_idempotency_key` and :func:`check_memo` for
    other free text a command carries (an owner's or an operator's id)."""
    unstorable = unstorable_text(value)
    if unstorable is not None:
        raise InvalidInput(f"{name} must not contain {unstorable}", field=field)
    return value


def check_lookup_id(value: _Id, field: str) -> _Id:
    """``value`` (``None`` passes), an id a use case asks the store by (a payment's end-to-end id, a
    charge's txid, a recurrence's id), if every backend can hold it as text; else
    ``InvalidInput`` naming ``field``.

    Such an id can never have been stored: PostgreSQL refused the lookup with an
    error naming no field where the in-memory store answered "not found". Checked
    here, both answer alike. Its format is not checked: an id of the right text
    that matches nothing is still "not found".
    """
    if value is not None:
        check_text(value, field=field, name=field.replace("_", " "))
    return value


def check_device_id(value: str | None, *, field: str = "device_id") -> str | None:
    """``value`` if it is ``None`` or a valid :data:`DeviceId`, else ``InvalidInput``."""
    if value is None:
        return None
    if not value or len(value) > MAX_DEVICE_ID_LENGTH:
        raise InvalidInput(f"device id must be 1 to {MAX_DEVICE_ID_LENGTH} characters", field=field)
    return check_text(value, field=field, name="device id")


def find_unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first text in ``value`` (a ``str``, a ``msgspec.Struct`` or a list or tuple
    of them, walked field by field) that no backend can store: ``(its path, what is
    wrong with it)``, the path as ``account_data.name`` or ``keys[2]``; else ``None``.

    For an error that arose from such text somewhere in a command (encoding it
    raised ``UnicodeEncodeError``): which field to name.
    """
    if isinstance(value, str):
        wrong = unstorable_text(value)
        return None if wrong is None else (path, wrong)
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            found = find_unstorable(getattr(value, name), f"{path}.{name}" if path else name)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_unstorable(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def unstorable_text(value: str) -> str | None:
    """What in ``value`` no backend can store as text, said for a message; else ``None``."""
    if "\x00" in value:
        return "NUL characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "unpaired surrogate characters"
    return None


#: per Struct class: (field, enum class, whether the field is a set of them)
_ENUM_FIELDS: dict[type, tuple[tuple[str, type[enum.Enum], bool], ...]] = {}
_SETS = (frozenset, set, collections.abc.Set)


def _enum_fields(cls: type) -> tuple[tuple[str, type[enum.Enum], bool], ...]:
    """The fields of the ``msgspec.Struct`` class ``cls`` typed as an enum or a set of
    them (optional or not), with their enum class; found once per class."""
    found = _ENUM_FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        fields = []
        for name in getattr(cls, "__struct_fields__", ()):
            hint = hints.get(name)
            candidates = typing.get_args(hint) if typing.get_origin(hint) in _UNIONS else (hint,)
            for candidate in candidates:
                if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
                    fields.append((name, candidate, False))
                    break
                args = typing.get_args(candidate)
                if (
                    typing.get_origin(candidate) in _SETS
                    and len(args) == 1
                    and isinstance(args[0], type)
                    and issubclass(args[0], enum.Enum)
                ):
                    fields.append((name, args[0], True))
                    break
        found = _ENUM_FIELDS[cls] = tuple(fields)
    return found


_UNIONS = (typing.Union, types.UnionType)
_S = typing.TypeVar("_S", bound=msgspec.Struct)


def _member(kind: type[enum.Enum], value: Any, field: str) -> enum.Enum:
    if type(value) is kind:
        return value
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in kind)
        raise InvalidInput(f"{field} must be one of {allowed}", field=field) from None


def checked_enums(command: _S) -> _S:
    """``command`` with each enum-typed field an enum member (and each set of them a
    ``frozenset`` of members): a plain value of the enum (``"DISAGREED"`` for
    ``Decision.DISAGREED``) becomes its member; any other value is ``InvalidInput``
    naming the field.

    A ``msgspec.Struct`` built in Python does not check its fields' types, and a use
    case that compares members by identity would read a plain string as "not this
    member" (a decision of ``"DISAGREED"`` taken as an agreement).
    """
    changes: dict[str, Any] = {}
    for name, kind, is_set in _enum_fields(type(command)):
        value = getattr(command, name)
        if value is None:
            continue
        if not is_set:
            if type(value) is not kind:
                changes[name] = _member(kind, value, name)
            continue
        if isinstance(value, str | bytes) or not isinstance(value, collections.abc.Iterable):
            raise InvalidInput(f"{name} must be a set of {kind.__name__} values", field=name)
        # a StrEnum member equals its text, so the items' types are what tells them apart
        if type(value) is not frozenset or any(type(item) is not kind for item in value):
            changes[name] = frozenset(_member(kind, item, name) for item in value)
    return msgspec.structs.replace(command, **changes) if changes else command


# -- the declared types of a command built in Python -------------------------------------

#: what :func:`checked_types` checks a field against
_UUID, _MONEY, _DATETIME, _DATE, _INT, _BOOL, _STR, _STRUCT = range(8)
_KIND_NAMES = {
    _UUID: "a UUID",
    _MONEY: "a Money (Money(cents) or Money.from_bcb('10.50'))",
    _DATETIME: "a datetime",
    _DATE: "a date",
    _INT: "an integer",
    _BOOL: "a bool",
    _STR: "text",
}
_Field = tuple[str, int, bool, type]  # name, kind, optional, the class (for _STRUCT)
_TYPED_FIELDS: dict[type, tuple[_Field, ...]] = {}


def _kind(hint: Any) -> tuple[int, type] | None:
    while True:
        if typing.get_origin(hint) is Annotated:
            hint = typing.get_args(hint)[0]
        elif hasattr(hint, "__supertype__"):  # a NewType
            hint = hint.__supertype__
        else:
            break
    if not isinstance(hint, type) or issubclass(hint, enum.Enum):
        return None  # enums: checked_enums; unions, lists, sets: not checked here
    for cls, kind in (
        (bool, _BOOL),  # before int: a bool is an int
        (uuid.UUID, _UUID),
        (Money, _MONEY),
        (datetime, _DATETIME),  # before date: a datetime is a date
        (date, _DATE),
        (int, _INT),
        (str, _STR),
    ):
        if hint is cls:
            return kind, hint
    if issubclass(hint, msgspec.Struct):
        return _STRUCT, hint
    return None


def _typed_fields(cls: type) -> tuple[_Field, ...]:
    """The fields of the ``msgspec.Struct`` class ``cls`` that :func:`checked_types`
    checks, with their kind; found once per class."""
    found = _TYPED_FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        fields: list[_Field] = []
        for name in getattr(cls, "__struct_fields__", ()):
            hint = hints.get(name)
            optional = False
            if typing.get_origin(hint) in _UNIONS:
                args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
                if len(args) != 1:
                    continue
                hint, optional = args[0], True
            kind = _kind(hint)
            if kind is not None:
                fields.append((name, kind[0], optional, kind[1]))
        found = _TYPED_FIELDS[cls] = tuple(fields)
    return found


def _wrong(path: str, kind: int, cls: type) -> InvalidInput:
    what = _KIND_NAMES.get(kind) or f"a {cls.__name__}"
    return InvalidInput(f"{path} must be {what}", field=path)


def checked_types(command: _S, path: str = "") -> _S:
    """``command`` with every field of a simple declared type holding that type: a
    ``uuid.UUID``, a ``Money``, a ``datetime``, a ``date``, an ``int``, a ``bool``, text,
    or a ``msgspec.Struct`` (its fields checked in turn; ``None`` where the field is
    optional). An id given as the text of a UUID becomes that UUID; anything else of
    the wrong type is ``InvalidInput`` naming the field (``limits.daily`` inside a
    nested Struct).

    A ``msgspec.Struct`` built in Python does not check its fields' types, as decoding
    does. A ``uuid.UUID`` subclass is a UUID (asyncpg's, in what PostgreSQL returns).
    Unchecked, an account id given as its text was "not found" on every backend
    although the account exists, and an amount given as an ``int`` or a ``datetime``
    given as text raised a raw ``AttributeError`` or ``TypeError`` from deep inside a
    use case. The facades (``bank.accounts``, ``bank.pix``...) pass every command and
    query through this before the use case; enum fields are :func:`checked_enums`'.
    """
    changes: dict[str, Any] = {}
    for name, kind, optional, cls in _typed_fields(type(command)):
        value = getattr(command, name)
        if value is None and optional:
            continue
        where = f"{path}.{name}" if path else name
        if kind == _UUID:
            # a subclass too: asyncpg reads every uuid column as its own ``UUID``, so
            # an id read back from PostgreSQL (a listed account's) is one
            if isinstance(value, uuid.UUID):
                continue
            if isinstance(value, str):
                try:
                    changes[name] = uuid.UUID(value)
                    continue
                except ValueError:
                    pass
            raise _wrong(where, kind, cls)
        if kind in (_STRUCT, _MONEY):
            if not isinstance(value, cls):
                raise _wrong(where, kind, cls)
            if kind == _STRUCT:
                checked = checked_types(typing.cast(msgspec.Struct, value), where)
                if checked is not value:
                    changes[name] = checked
            continue
        if kind == _STR:
            ok = isinstance(value, str)
        elif kind == _INT:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == _BOOL:
            ok = type(value) is bool
        elif kind == _DATETIME:
            ok = isinstance(value, datetime)
        else:  # _DATE
            ok = isinstance(value, date) and not isinstance(value, datetime)
        if not ok:
            raise _wrong(where, kind, cls)
    return msgspec.structs.replace(command, **changes) if changes else command
