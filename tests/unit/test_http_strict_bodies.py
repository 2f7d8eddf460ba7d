"""Which request bodies the input limits read strictly before Litestar reads them.

Litestar converts bodies leniently (``"10"`` as 10, ``1`` as an instant, ``"1"`` as an
``IntEnum`` member); a body that may hold such a value anywhere is read strictly first
(``finbank_http.limits``). Bodies of text, ids and amounts as strings are not: the hot
routes do not pay the second read.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta
from typing import Literal

import msgspec
import pytest

from finbank_http.limits import _holds_lenient
from finbank_http.pix_schemas import PaymentIn
from finbank_http.schemas import TransferIn


class Level(enum.IntEnum):
    LOW = 1


class Kind(enum.StrEnum):
    A = "a"


class Inner(msgspec.Struct):
    seconds: int | None = None


def body(annotation: object) -> type[msgspec.Struct]:
    return msgspec.defstruct("Body", [("x", annotation)])


@pytest.mark.parametrize(
    ("annotation", "strict"),
    [
        (int, True),
        (float, True),
        (bool, True),
        (datetime, True),
        (timedelta, True),
        (Level, True),
        (Literal[1, 2], True),
        (int | None, True),
        (list[Inner], True),  # nested, at any depth
        (dict[str, bool], True),
        (str, False),
        (uuid.UUID, False),
        (Kind, False),
        (Literal["a", "b"], False),
        (list[str], False),
    ],
)
def test_a_body_is_read_strictly_when_it_may_hold_a_value_read_leniently(
    annotation: object, strict: bool
) -> None:
    assert _holds_lenient(body(annotation)) is strict
    if strict:  # the reason: some text or number is read as such a value when lenient
        raw = {int: "1", float: "1.5", bool: "true", Level: "1", Literal[1, 2]: "1"}
        if annotation in raw:
            encoded = msgspec.json.encode({"x": raw[annotation]})
            msgspec.json.decode(encoded, type=body(annotation), strict=False)
            with pytest.raises(msgspec.ValidationError):
                msgspec.json.decode(encoded, type=body(annotation))


@pytest.mark.parametrize("route_body", [TransferIn, PaymentIn])
def test_the_hot_routes_bodies_are_not_read_twice(route_body: type) -> None:
    assert not _holds_lenient(route_body)
