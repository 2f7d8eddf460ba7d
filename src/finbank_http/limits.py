"""Strict request input, checked before any handler sees it (the app's ``before_request``).

The app's ``before_request`` authenticates protected routes first (401 before
anything about the input: :func:`finbank_http.security.authenticate_then`),
then runs :meth:`InputLimits.check`; Litestar then parses the body and
parameters (reading the body from where the check left it, not again).
The check refuses, as problem+json naming what is wrong:

- a query parameter the route does not declare, or one given twice (400);
- a header the service reads one value of (``Idempotency-Key``,
  ``Content-Type``, ``X-Device-Id``, ``X-Step-Up-Token``) given twice (400):
  Litestar joins the two with ", ", so ``Idempotency-Key: k1`` and
  ``Idempotency-Key: k2`` were a third key, ``k1, k2``, and a retry with
  either moved the money again (two ``Authorization`` headers are a 401, as
  any token that does not verify);
- a NUL character in the path, the query or any string of a JSON body (400,
  the same on every profile: no store ever sees one);
- a body on a route that takes JSON, sent with another ``Content-Type`` (415);
- a body over ``max_body_bytes`` (413) or nested deeper than
  ``max_json_depth`` (400: parsers recurse, and a deep document must not
  reach them);
- a JSON object that gives one key twice (400, naming the key): parsers
  disagree on which of the two counts (msgspec, as Python's ``json``, keeps
  the last; others keep the first or refuse), so a body such as
  ``{"amount": "1.00", "amount": "900.00"}`` could be read as one amount by a
  gateway or an audit log and as the other here;
- on a route whose body holds a date and time, a number or a boolean, a body
  that is not JSON of its schema read strictly (400): Litestar converts bodies
  leniently, which would read ``"0.5"`` or ``1`` as an instant in 1970, the
  text ``"10"`` or ``"1e2"`` as a whole number and ``"true"`` as a boolean; a
  date and time without its zone is refused too.

``OPTIONS`` is answered here too, with the methods the path really takes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, get_args
from urllib.parse import parse_qsl

import msgspec
from litestar import Request, Response
from litestar.enums import ParamType
from litestar.exceptions import (
    ClientException,
    HTTPException,
    InternalServerException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_204_NO_CONTENT
from litestar.types import Empty

from finbank_core.shared.errors import InvalidInput

#: media types a JSON body may be sent as
JSON_MEDIA_TYPES = ("application/json",)
_STRING_OR_BRACKET = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


#: the headers read as one value (lower-case, as servers pass them): each at most once
SINGLE_VALUE_HEADERS = {
    b"idempotency-key": "Idempotency-Key",
    b"content-type": "Content-Type",
    b"x-device-id": "X-Device-Id",
    b"x-step-up-token": "X-Step-Up-Token",
}


def repeated_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The first of :data:`SINGLE_VALUE_HEADERS` that ``headers`` (ASGI's) give twice."""
    seen: list[bytes] = []
    for name, _ in headers:
        key = name.lower()
        if key in SINGLE_VALUE_HEADERS:
            if key in seen:
                return SINGLE_VALUE_HEADERS[key]
            seen.append(key)
    return None


class UnsupportedMediaType(HTTPException):
    status_code = 415


def json_depth_exceeds(body: bytes, max_depth: int) -> bool:
    """Whether arrays and objects in ``body`` nest deeper than ``max_depth`` (strings skipped)."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def duplicate_key(body: bytes) -> str | None:
    """The first key that an object of the JSON ``body`` gives twice, at any depth; None
    when there is none, and for a body that is not JSON (Litestar's parser answers it)."""
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        document = dict(items)
        if len(document) != len(items) and not repeated:
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    repeated.append(key)
                    break
                seen.add(key)
        return document

    try:
        json.loads(body, object_pairs_hook=pairs)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError among them
        return None
    return repeated[0] if repeated else None


def key_names(annotation: Any) -> tuple[bytes, ...] | None:
    """The keys, as JSON strings, that a body of type ``annotation`` may hold: every
    field of every struct (typed dict, dataclass) in it. None when it may hold keys no
    schema names (a ``dict`` or ``Any`` anywhere), or none at all: then no key can be
    ruled out by name."""
    names: set[bytes] = set()
    for info in _types_in(annotation):
        if isinstance(info, (msgspec.inspect.DictType, msgspec.inspect.AnyType)):
            return None
        if isinstance(info, msgspec.inspect.StructType) and info.tag_field is not None:
            names.add(msgspec.json.encode(info.tag_field))
        if isinstance(info, _WITH_FIELDS):
            names.update(msgspec.json.encode(field.encode_name) for field in info.fields)
    return tuple(sorted(names)) if names else None


_WITH_FIELDS = (
    msgspec.inspect.StructType,
    msgspec.inspect.TypedDictType,
    msgspec.inspect.DataclassType,
)
_WITH_ITEMS = (
    msgspec.inspect.ListType,
    msgspec.inspect.SetType,
    msgspec.inspect.FrozenSetType,
    msgspec.inspect.VarTupleType,
)


def _types_in(annotation: Any) -> Iterator[msgspec.inspect.Type]:
    """Every type a value of type ``annotation`` may hold, itself first, each once."""
    seen: set[int] = set()
    pending = [msgspec.inspect.type_info(annotation)]
    while pending:
        info = pending.pop()
        if id(info) in seen:
            continue
        seen.add(id(info))
        yield info
        if isinstance(info, _WITH_FIELDS):
            pending.extend(field.type for field in info.fields)
        elif isinstance(info, msgspec.inspect.UnionType):
            pending.extend(info.types)
        elif isinstance(info, _WITH_ITEMS):
            pending.append(info.item_type)
        elif isinstance(info, msgspec.inspect.TupleType):
            pending.extend(info.item_types)
        elif isinstance(info, msgspec.inspect.DictType):
            pending.append(info.value_type)


def may_repeat_a_key(body: bytes, names: tuple[bytes, ...] | None) -> bool:
    """Whether ``body`` may give one of ``names`` (:func:`key_names`) twice, cheaply:
    False only when none of them appears twice in it, even as a value, and it holds no
    escape (which could spell one otherwise). Keys the schema does not name are refused
    (``forbid_unknown_fields``) or ignored by it; with ``names`` None (a schema that
    takes any key) it is always True, and the body is read whole by
    :func:`duplicate_key`."""
    if names is None or body.find(b"\\") != -1:
        return True
    return any(body.count(name) > 1 for name in names)


def nul_path(value: Any, path: str = "body") -> str | None:
    """Where in a decoded JSON value a string (or a key) holds a NUL character."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return path
            found = nul_path(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


def _field(path: str) -> str:
    return path.removeprefix("body.") if path != "body" else path


class InputLimits:
    """The app's input checks; ``check`` is its ``before_request`` hook."""

    def __init__(self, *, max_body_bytes: int, max_json_depth: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        self._query_names: dict[int, dict[str, type | None] | None] = {}
        self._strict_bodies: dict[int, Any] = {}
        #: per route handler: the keys its body's schema names (None: any key)
        self._key_names: dict[int, tuple[bytes, ...] | None] = {}
        self._methods: dict[str, str] = {}
        #: per route handler: whether it takes a body (``data``)
        self._takes_body: dict[int, bool] = {}
        #: per route handler: its ``request_max_body_size`` (``inf``: none)
        self._max_body: dict[int, float] = {}

    async def check(self, request: Request[Any, Any, Any]) -> Response[None] | None:
        scope = request.scope
        if scope["method"] == "OPTIONS":
            return self._options(request)
        raw_path = scope.get("raw_path") or b""
        # bytes.find, not ``in``: bytes.__contains__ first tries its operand as an integer,
        # an exception raised and cleared on every call
        path_part = raw_path.split(b"?", 1)[0]
        if path_part.find(b"%00") != -1 or "\x00" in scope.get("path", ""):
            raise InvalidInput("NUL characters are not allowed", field="path")
        repeated = repeated_header(scope["headers"])
        if repeated is not None:
            raise InvalidInput(f"the header {repeated} is given more than once", field=repeated)
        if scope.get("query_string"):
            self._check_query(request)
        handler = scope["route_handler"]
        takes_body = self._takes_body.get(id(handler))
        if takes_body is None:
            takes_body = "data" in handler.parsed_fn_signature.parameters
            self._takes_body[id(handler)] = takes_body
        if takes_body:
            await self._check_body(request)
        return None

    # -- query -----------------------------------------------------------------------
    def _check_query(self, request: Request[Any, Any, Any]) -> None:
        query = request.scope.get("query_string", b"").decode("latin-1")
        if not query:
            return
        allowed = self._allowed_query(request)
        seen: set[str] = set()
        for name, value in parse_qsl(query, keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                raise InvalidInput("NUL characters are not allowed", field=_printable(name))
            if allowed is not None and name not in allowed:
                raise InvalidInput(
                    f"unknown query parameter {_printable(name)!r}", field=_printable(name)
                )
            if name in seen:
                raise InvalidInput(f"query parameter {name!r} given more than once", field=name)
            seen.add(name)
            kind = allowed.get(name) if allowed is not None else None
            if kind is not None and not _STRICT_FORMS[kind].match(value):
                raise InvalidInput(f"{name} must be {_FORM_NAMES[kind]}", field=name)

    def _allowed_query(self, request: Request[Any, Any, Any]) -> dict[str, type | None] | None:
        handler = request.route_handler
        key = id(handler)
        if key not in self._query_names:
            self._query_names[key] = _declared_query(request)
        return self._query_names[key]

    # -- body ------------------------------------------------------------------------
    async def _check_body(self, request: Request[Any, Any, Any]) -> None:
        length: bytes | None = None
        content_type: bytes | None = None
        chunked = False
        for name, value in request.scope["headers"]:  # the first of each, as Headers.get
            name = name.lower()
            if name == b"content-length":
                length = value if length is None else length
            elif name == b"content-type":
                content_type = value if content_type is None else content_type
            elif name == b"transfer-encoding":
                chunked = True
        has_body = (length is not None and length != b"0") or chunked
        if not has_body:
            return
        media_type = (
            "application/json"  # as clients send it, read without parsing
            if content_type == b"application/json"
            else (content_type or b"").decode("latin-1").split(";")[0].strip().lower()
        )
        if media_type not in JSON_MEDIA_TYPES:
            raise UnsupportedMediaType(
                detail="the body must be JSON: send Content-Type: application/json"
            )
        # 413 over the route's request_max_body_size (the app's: max_body_bytes)
        body = await self._read_body(request, length)
        if json_depth_exceeds(body, self.max_json_depth):
            raise InvalidInput(
                f"the JSON body nests deeper than {self.max_json_depth} levels", field="body"
            )
        if self._may_repeat_a_key(request, body):
            key = duplicate_key(body)
            if key is not None:
                raise InvalidInput(
                    f"the JSON body gives the key {_printable(key)!r} more than once",
                    field=_printable(key),
                )
        self._check_strictly(request, body)
        if body.find(b"\\u0000") == -1:  # JSON can only carry a NUL as this escape
            return
        try:
            document = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return  # Litestar's parser answers 400 for malformed JSON
        where = nul_path(document)
        if where:
            raise InvalidInput("NUL characters are not allowed", field=_field(where))

    def _may_repeat_a_key(self, request: Request[Any, Any, Any], body: bytes) -> bool:
        """:func:`may_repeat_a_key` with the keys of the route's schema."""
        handler = request.route_handler
        key = id(handler)
        if key not in self._key_names:
            annotation = handler.parsed_fn_signature.parameters["data"].annotation
            self._key_names[key] = key_names(annotation)
        return may_repeat_a_key(body, self._key_names[key])

    async def _read_body(self, request: Request[Any, Any, Any], length: bytes | None) -> bytes:
        """``await request.body()``, with the ``Content-Length`` :meth:`_check_body` read from
        the raw headers (``Request.content_length`` would build the request's ``Headers`` for
        it) and without Litestar's async generator: the same 413 (announced or streamed over
        the route's ``request_max_body_size``), the same errors, and the body kept where
        ``Request.body`` keeps it, so Litestar's own parsing reads it from there."""
        state = request._connection_state
        if state.body is not Empty:
            body: bytes = state.body
            request._body = body
            return body
        if not request.is_connected:
            raise InternalServerException("stream consumed")
        handler = request.route_handler
        limit = self._max_body.get(id(handler))
        if limit is None:
            limit = self._max_body[id(handler)] = (
                handler.resolve_request_max_body_size() or math.inf
            )
        if length is not None:
            try:
                announced = int(length)
            except ValueError:
                text = length.decode("latin-1")
                raise ClientException(f"Invalid content-length: {text!r}") from None
            if announced > limit:
                raise RequestEntityTooLarge
        chunks: list[bytes] = []
        received = 0
        receive = request.receive
        while event := await receive():
            kind = event["type"]
            if kind == "http.request":
                chunk: bytes = event.get("body", b"")  # type: ignore[assignment]
                if chunk:
                    received += len(chunk)
                    if received > limit:
                        raise RequestEntityTooLarge
                    chunks.append(chunk)
                if not event.get("more_body", False):
                    break
            elif kind == "http.disconnect":
                raise InternalServerException("client disconnected prematurely")
        request.is_connected = False
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        request._body = state.body = body
        return body

    def _check_strictly(self, request: Request[Any, Any, Any], body: bytes) -> None:
        """A body that may hold a value Litestar would convert from another JSON type
        (a date and time, a number, a boolean) read as JSON of its schema, strictly
        (see above). Other bodies (text, ids, amounts as strings) are read as they are."""
        handler = request.route_handler
        key = id(handler)
        if key not in self._strict_bodies:
            annotation = handler.parsed_fn_signature.parameters["data"].annotation
            self._strict_bodies[key] = annotation if _holds_lenient(annotation) else None
        target = self._strict_bodies[key]
        if target is None:
            return
        try:
            value = msgspec.json.decode(body, type=target)
        except msgspec.ValidationError as error:
            try:
                msgspec.json.decode(body, type=target, strict=False)
            except msgspec.ValidationError:
                # invalid however read: Litestar answers it as it answers any other
                # body (its 400, with ``errors``); only what leniency would let
                # through is answered here
                return
            message, _, where = str(error).partition(" - at `$")
            field = where.rstrip("`").lstrip(".") or "body"
            # the document Litestar gives any other invalid body (``errors`` included)
            raise ValidationException(
                detail=f"Validation failed for {request.method} {request.url.path}",
                extra=[{"message": message, "key": field, "source": "body"}],
            ) from None
        except msgspec.DecodeError:
            return  # Litestar's parser answers 400 for malformed JSON
        naive = _naive_datetime(value)
        if naive is not None:
            raise InvalidInput(f"{naive} must be a date and time with its zone", field=naive)

    # -- OPTIONS -------------------------------------------------------------------------
    def _options(self, request: Request[Any, Any, Any]) -> Response[None]:
        template = str(request.scope.get("path_template") or request.url.path)
        if not self._methods:
            for route in request.app.routes:
                if isinstance(route, HTTPRoute):
                    self._methods[route.path_format] = ", ".join(sorted(route.methods))
        allow = self._methods.get(template, "OPTIONS")
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": allow})


def _declared_query(request: Request[Any, Any, Any]) -> dict[str, type | None] | None:
    """The query parameters the request's handler declares, each with the type whose
    text form is checked strictly (``datetime``, ``int``) or None; None: not known."""
    scope_route = request.scope.get("path_template")
    for route in request.app.routes:
        if isinstance(route, HTTPRoute) and route.path_format == scope_route:
            entry = route.route_handler_map.get(request.method)
            if entry is None:
                return None
            _, kwargs_model = entry
            fields = request.route_handler.parsed_fn_signature.parameters
            declared: dict[str, type | None] = {}
            for parameter in kwargs_model.expected_query_params:
                if parameter.param_type is not ParamType.QUERY:
                    return None
                field = fields.get(parameter.field_name)
                declared[parameter.field_alias] = _strict_kind(field.annotation) if field else None
            return declared
    return None


#: the types a lenient conversion fills from another JSON type (``"10"`` as 10, 1 as an
#: instant or a duration): a body that may hold one of them is read strictly first
_LENIENT = (
    msgspec.inspect.DateTimeType,
    msgspec.inspect.TimeDeltaType,
    msgspec.inspect.IntType,
    msgspec.inspect.FloatType,
    msgspec.inspect.BoolType,
)


def _is_lenient(info: msgspec.inspect.Type) -> bool:
    if isinstance(info, _LENIENT):
        return True
    if isinstance(info, msgspec.inspect.EnumType):  # an IntEnum reads "1" as 1
        return issubclass(info.cls, int)
    if isinstance(info, msgspec.inspect.LiteralType):  # so does Literal[1, 2]
        return any(isinstance(value, int) for value in info.values)
    return False


def _holds_lenient(annotation: Any) -> bool:
    """Whether a body of type ``annotation`` may hold anywhere a value a lenient
    conversion would fill from another JSON type (:data:`_LENIENT`, integer enums and
    literals)."""
    return any(_is_lenient(info) for info in _types_in(annotation))


def _naive_datetime(value: Any, path: str = "") -> str | None:
    """The field of a decoded body holding a ``datetime`` without its zone, if any."""
    if isinstance(value, datetime):
        return (path or "body") if value.tzinfo is None else None
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            found = _naive_datetime(getattr(value, name), f"{path}.{name}" if path else name)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _naive_datetime(item, f"{path}[{index}]")
            if found:
                return found
    return None


def _strict_kind(annotation: Any) -> type | None:
    """``datetime`` or ``int`` if ``annotation`` is one of them (maybe optional, annotated)."""
    candidates = [annotation]
    while candidates:
        current = candidates.pop()
        if current in (datetime, int):
            return current  # type: ignore[no-any-return]
        candidates.extend(a for a in get_args(current) if a is not type(None))
    return None


#: the only text forms accepted for typed query parameters (no "0.5" as a date, no "1e3")
_STRICT_FORMS: dict[type, re.Pattern[str]] = {
    datetime: re.compile(
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?"
        r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})$(?!\n)"
    ),
    int: re.compile(r"^-?[0-9]{1,19}$(?!\n)"),
}
_FORM_NAMES: dict[type, str] = {
    datetime: "an ISO 8601 date and time with its zone, e.g. 2025-01-31T12:00:00-03:00",
    int: "an integer",
}


def _printable(text: str) -> str:
    return text.replace("\x00", "\\0")[:64]
