"""Calling a route handler with its arguments read straight from the request.

For every request Litestar extracts a handler's arguments through its
``KwargsModel``: an extractor coroutine per kind of argument, a
case-insensitive ``Headers`` multidict built from the raw headers for one
header parameter, and an ``AsyncExitStack`` for dependencies a handler may
not have. For the busiest routes (``POST /v1/transfers``, ``POST
/v1/pix/payments``) that is about a tenth of the CPU of a request.

:class:`DirectCalls` does the same for the handlers whose arguments are
only the request, a JSON body and header strings, without dependencies: it
reads them as Litestar's extractors would (the body through
``Request.json``, each header's first value, a missing optional header's
default), converts them into the handler's own signature model as
``parse_values_from_connection_kwargs`` does (the same ``msgspec.convert``;
a decoding hook that passes the request through without the ``TypeError``
Litestar's raises and catches for its generic annotation; any failure, or a
value only Litestar's hook can decode, goes to
``parse_values_from_connection_kwargs`` itself: the same 400 listing header
and body errors together) and calls the handler. It runs
last in the app's ``before_request`` hook, whose answer Litestar sends
instead of calling the handler (documented: a value ``before_request``
returns bypasses the route handler). Whenever the request is not plainly
well-formed (no body, malformed JSON, a required header missing) it answers
nothing and Litestar extracts and answers as it always does, errors
included. Handlers of any other shape are left to Litestar.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, Request, Response
from litestar.connection import ASGIConnection
from litestar.enums import ParamType
from litestar.exceptions import SerializationException
from litestar.routes import HTTPRoute

#: the reserved arguments a direct call provides (``request``, and a JSON ``data``)
_RESERVED = frozenset({"request", "data"})


class _Plan:
    """How to call one route handler directly (built once, at startup)."""

    __slots__ = (
        "call",
        "handler",
        "header_names",
        "headers",
        "reserved",
        "signature_model",
        "sync",
    )

    def __init__(
        self,
        handler: Any,
        reserved: tuple[str, ...],
        headers: tuple[tuple[bytes, str, bool, Any], ...],
    ) -> None:
        self.handler = handler
        self.reserved = reserved
        #: (lower-case name, argument, required, default) in Litestar's extraction order
        self.headers = headers
        self.header_names = frozenset(name for name, *_ in headers)
        self.signature_model = handler.signature_model
        self.call = handler.fn
        self.sync = bool(handler.has_sync_callable)


def _always_truthy(annotation: Any) -> bool:
    """Whether what a handler returns is never falsy: Litestar calls the handler itself
    when ``before_request`` answers something falsy, so only these are called here."""
    origin = getattr(annotation, "__origin__", None) or annotation
    return isinstance(origin, type) and issubclass(origin, (Response, msgspec.Struct))


def plan_for(handler: Any, kwargs_model: Any) -> _Plan | None:
    """The plan of a handler whose ``KwargsModel`` asks only for ``request``, a JSON
    ``data`` and single header strings (no dependencies, path, query or cookie
    parameters, forms, MessagePack, DTOs or response cache); None for any other."""
    if (
        not kwargs_model.has_kwargs
        or kwargs_model.dependency_batches
        or kwargs_model.expected_path_params
        or kwargs_model.expected_query_params
        or kwargs_model.expected_cookie_params
        or kwargs_model.expected_form_data
        or kwargs_model.expected_msgpack_data
        or kwargs_model.expected_data_dto is not None
        or not set(kwargs_model.expected_reserved_kwargs) <= _RESERVED
        or handler.cache
        or not _always_truthy(handler.parsed_fn_signature.return_type.annotation)
    ):
        return None
    headers: list[tuple[bytes, str, bool, Any]] = []
    for param in kwargs_model.expected_header_params:
        if param.param_type is not ParamType.HEADER or param.is_sequence:
            return None
        # Litestar's extractor: a default unless the parameter is required or has none
        required = param.is_required or param.default is Ellipsis
        headers.append(
            (param.field_alias.lower().encode("latin-1"), param.field_name, required, param.default)
        )
    if len({name for name, *_ in headers}) != len(headers):
        return None  # two parameters of one header: Litestar's mapping, not ours
    # Litestar's order: the reserved arguments as its extractors list them, then headers
    reserved = tuple(name for name in kwargs_model.expected_reserved_kwargs)
    return _Plan(handler, reserved, tuple(headers))


class _Unplanned(Exception):
    """A value only Litestar's own decoding hook knows how to convert."""


def _connection(target_type: Any, value: Any) -> Any:
    """The decoding hook of a direct call: the request (or another connection) for an
    argument annotated with its class, bare or generic, as Litestar's hook answers;
    anything else is left to Litestar (:class:`_Unplanned`)."""
    origin = getattr(target_type, "__origin__", target_type)
    if isinstance(value, ASGIConnection) and isinstance(origin, type) and isinstance(value, origin):
        return value
    raise _Unplanned


class DirectCalls:
    """The handlers of an app that are called directly (see the module's docstring)."""

    def __init__(self) -> None:
        self._plans: dict[int, _Plan] = {}

    def install(self, app: Litestar) -> None:
        """Plan every eligible handler of ``app`` (once its routes are registered)."""
        for route in app.routes:
            if not isinstance(route, HTTPRoute):
                continue
            for handler, kwargs_model in route.route_handler_map.values():
                plan = plan_for(handler, kwargs_model)
                if plan is not None:
                    self._plans[id(handler)] = plan

    @property
    def handler_names(self) -> list[str]:
        """The handlers called directly (for tests and diagnostics)."""
        return sorted(plan.handler.handler_name for plan in self._plans.values())

    async def __call__(self, request: Request[Any, Any, Any]) -> Any:
        """The handler's answer, or None to let Litestar extract and call as usual."""
        scope = request.scope
        handler = scope["route_handler"]
        plan = self._plans.get(id(handler))
        if plan is None or plan.handler is not handler:
            return None
        kwargs: dict[str, Any] = {}
        for name in plan.reserved:
            if name == "request":
                kwargs["request"] = request
                continue
            if not await request.body():
                return None  # Litestar: no data at all
            try:
                kwargs["data"] = await request.json()
            except SerializationException:
                return None  # Litestar answers its own 400
        if plan.headers:
            names = plan.header_names
            found: dict[bytes, bytes] = {}
            for raw_name, value in scope["headers"]:  # the first of each, as Headers.get
                if raw_name not in names:
                    raw_name = raw_name.lower()
                    if raw_name not in names:
                        continue
                if raw_name not in found:
                    found[raw_name] = value
            for header, argument, required, default in plan.headers:
                raw = found.get(header)
                if raw is not None:
                    kwargs[argument] = raw.decode("latin-1")
                elif required:
                    return None  # Litestar answers its "missing required header" 400
                else:
                    kwargs[argument] = default
        try:
            # what parse_values_from_connection_kwargs converts, with a decoding hook that
            # passes the request through as Litestar's does (an isinstance against the
            # annotation's class, after a TypeError raised for the generic alias)
            parsed = msgspec.convert(
                kwargs, plan.signature_model, strict=False, dec_hook=_connection, str_keys=True
            ).to_dict()
        except Exception:  # Litestar converts again, and answers or raises its way
            parsed = plan.signature_model.parse_values_from_connection_kwargs(
                connection=request, kwargs=kwargs
            )
        if plan.sync:
            return plan.call(**parsed)
        return await plan.call(**parsed)
