"""A JSON object that gives one key twice is found, at any depth and however spelt;
so is a header the service reads one value of, given twice.

Parsers disagree on such a body: msgspec and Python's ``json`` keep the last
value, others keep the first or refuse it, so a gateway, an audit log and this
service could each read another amount from ``{"amount": "1.00", "amount":
"900.00"}``. The service refuses the body (``finbank_http.limits``); these
tests hold the two parts of that check: the exact reading
(:func:`duplicate_key`) and the cheap pre-check that lets most bodies skip it
(:func:`may_repeat_a_key`), which must never pass a body the exact reading
would refuse.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finbank_http.limits import (
    SINGLE_VALUE_HEADERS,
    duplicate_key,
    key_names,
    may_repeat_a_key,
    repeated_header,
)
from finbank_http.pix_schemas import PaymentIn
from finbank_http.routes.auth import STEP_UP_HEADER
from finbank_http.routes.pix_limits import LimitsIn
from finbank_http.schemas import TransferIn


class Inner(msgspec.Struct, kw_only=True):
    day: str
    night: str | None = None


class Outer(msgspec.Struct, kw_only=True):
    account_id: uuid.UUID
    items: list[Inner] = []
    note: Annotated[str, msgspec.Meta(max_length=10)] | None = None


class WithMap(msgspec.Struct, kw_only=True):
    labels: dict[str, str]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"a": 1, "a": 2}', "a"),
        (b'{"a": 1, "b": {"c": 1, "c": 1}}', "c"),
        (b'[{"a": 1}, {"a": 2, "b": 1, "a": 3}]', "a"),
        (b'{"amount": "1.00", "\\u0061mount": "9.00"}', "amount"),  # escaped
        (b'{"x": [[{"k": 1, "k\\u0000": 2, "k": 3}]]}', "k"),
        ('{"ç": 1, "\\u00e7": 2}'.encode(), "ç"),  # UTF-8 against its escape
    ],
)
def test_a_key_given_twice_is_found(body: bytes, key: str) -> None:
    assert duplicate_key(body) == key


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "b": 2}',
        b'[{"a": 1}, {"a": 2}]',  # the same key in two objects
        b'{"a": {"a": {"a": 1}}}',  # and at three depths
        b'{"a": "a", "b": ["a", "a"]}',  # as values
        b'{"A": 1, "a": 2}',  # keys are case-sensitive
        b"not json",  # Litestar's parser answers it
        b'{"a": 1, "a": }',
        b"\xff\xfe",
    ],
)
def test_no_key_given_twice_is_none(body: bytes) -> None:
    assert duplicate_key(body) is None


def test_key_names_reach_nested_structs_and_give_up_on_maps() -> None:
    assert key_names(Outer) == (b'"account_id"', b'"day"', b'"items"', b'"night"', b'"note"')
    assert key_names(WithMap) is None
    assert key_names(dict[str, Any]) is None
    assert key_names(str) is None
    names = key_names(LimitsIn)
    assert names is not None
    assert b'"day_per_transaction"' in names  # inside "limits"
    payment = key_names(PaymentIn)
    assert payment is not None
    assert b'"ispb"' in payment  # inside "account_data"


def test_the_pre_check_lets_plain_bodies_skip_the_reading() -> None:
    names = key_names(TransferIn)
    body = json.dumps(
        {"from_account_id": str(uuid.uuid4()), "to_account_id": str(uuid.uuid4()), "amount": "1"}
    ).encode()
    assert not may_repeat_a_key(body, names)
    assert may_repeat_a_key(body.replace(b"}", b', "amount": "2"}'), names)
    assert may_repeat_a_key(body.replace(b'"amount"', b'"\\u0061mount"'), names)
    assert may_repeat_a_key(body, None)


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
KEYS = st.sampled_from(["account_id", "items", "day", "night", "note", "x", "é", "a\\b"])
SPACES = st.sampled_from(["", " ", "\n", "\t "])


def escaped(key: str, how: int) -> str:
    """``key`` as a JSON string: plain, every character escaped, or only the first."""
    if how == 0:
        return json.dumps(key, ensure_ascii=False)
    if how == 1:
        return '"' + "".join(f"\\u{ord(c):04x}" for c in key) + '"'
    return '"' + f"\\u{ord(key[0]):04x}" + json.dumps(key[1:], ensure_ascii=False)[1:]


@st.composite
def objects_with_a_key_twice(draw: st.DrawFn) -> tuple[bytes, str]:
    """A JSON object, maybe deep inside a document, that gives one key twice."""
    key = draw(KEYS)
    others = draw(st.dictionaries(KEYS.filter(lambda k: k != key), JSON_SCALARS, max_size=3))
    members = [
        (escaped(name, draw(st.integers(0, 2))), json.dumps(value))
        for name, value in [(key, draw(JSON_SCALARS)), *others.items(), (key, draw(JSON_SCALARS))]
    ]
    order = draw(st.permutations(range(1, len(members) - 1)))
    members = [members[0], *(members[i] for i in order), members[-1]]
    space = draw(SPACES)
    document = (
        "{" + ",".join(f"{space}{name}{space}:{space}{value}" for name, value in members) + "}"
    )
    for _ in range(draw(st.integers(0, 3))):
        document = draw(
            st.sampled_from(
                [f'{{"items": [{document}]}}', f"[1, {document}]", f'{{"n": {document}}}']
            )
        )
    return document.encode(), key


@settings(max_examples=300, deadline=None)
@given(objects_with_a_key_twice())
def test_every_key_given_twice_is_found_and_never_skipped(case: tuple[bytes, str]) -> None:
    body, key = case
    assert duplicate_key(body) == key
    # the pre-check passes it on to the reading for any schema that names the key
    assert may_repeat_a_key(body, key_names(Outer)) or key not in {
        "account_id",
        "items",
        "day",
        "night",
        "note",
    }
    assert may_repeat_a_key(body, (json.dumps(key, ensure_ascii=False).encode(),))


def test_a_header_read_as_one_value_given_twice_is_named() -> None:
    headers = [(b"idempotency-key", b"a"), (b"x-request-id", b"1"), (b"Idempotency-Key", b"a")]
    assert repeated_header(headers) == "Idempotency-Key"  # even with the same value
    # headers read as lists, or not read, may repeat
    listed = [
        (b"accept", b"a"),
        (b"accept", b"b"),
        (b"x-request-id", b"1"),
        (b"x-request-id", b"2"),
    ]
    assert repeated_header(listed) is None
    assert repeated_header([(b"content-type", b"a"), (b"idempotency-key", b"k")]) is None
    step_up = STEP_UP_HEADER.lower().encode()
    assert repeated_header([(step_up, b"t"), (step_up, b"u")]) == STEP_UP_HEADER
    assert set(SINGLE_VALUE_HEADERS) == {n.lower().encode() for n in SINGLE_VALUE_HEADERS.values()}
