"""The Litestar application factory, and ``serve`` (what ``finbank serve`` runs)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from types import MappingProxyType
from typing import Any

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import ImproperlyConfiguredException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute

from finbank import Bank
from finbank.bank import opened
from finbank_adapters.containers import BankContainer, build_container
from finbank_adapters.settings import HttpOptions, Profile, Settings, SettingsError
from finbank_http import openapi
from finbank_http.deps import bank_provider, provide_principal
from finbank_http.direct_calls import DirectCalls
from finbank_http.limits import InputLimits
from finbank_http.observability import ObservabilityPlugin
from finbank_http.problems import EXCEPTION_HANDLERS
from finbank_http.routes.accounts import AccountController, TransferController
from finbank_http.routes.auth import auth_router, register_rate_limit_store
from finbank_http.routes.ops import health, ready, sandbox_deposit
from finbank_http.routes.pix import pix_router
from finbank_http.routes.pix_automatic import pix_automatic_router
from finbank_http.routes.pix_claims import pix_claims_router
from finbank_http.routes.pix_limits import pix_limits_router
from finbank_http.routes.pix_med import MED_ROUTES
from finbank_http.routes.pix_payments import PixPaymentListController
from finbank_http.security import (
    AUTHENTICATED_OPT,
    BEARER_SCHEME,
    SecurityHeaders,
    authenticate_then,
    protected_opt,
)

API_VERSION = "0.1.0"


def create_app(container: BankContainer | None = None) -> Litestar:
    """Build the HTTP app over ``container`` (a new one from ``FINBANK_*`` env if omitted).

    The app's lifespan opens the bank (``finbank.bank.opened``: the
    container's connections and the bank's own ledger accounts) when it
    starts and closes it when it stops; nothing connects before that. Routes
    depend on the typed :class:`~finbank.Bank` facade (``bank``).

    Every request passes, in this order: the security headers (on every
    answer, 404s included), the request context (ids and the access line;
    inside each route's span instead when tracing is on), routing,
    authentication on protected routes (first in the ``before_request`` hook,
    :func:`~finbank_http.security.authenticate_then`: 401 before anything is
    read), the input checks of
    :mod:`finbank_http.limits` (size, content type, depth, NUL, query), then
    body and parameter validation. ``settings.http`` sets the limits.
    """
    container = container or build_container()
    http: HttpOptions = container.infra.settings().http
    #: the app's state; the bank in it is opened by the lifespan (a State with something in
    #: it: Litestar would replace an empty one)
    state = State({"container": container, "bank": Bank(container)})
    limits = InputLimits(max_body_bytes=http.max_body_bytes, max_json_depth=http.max_json_depth)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with opened(container) as bank:
            app.state.bank = bank
            await register_rate_limit_store(app, container)
            yield

    protected = Router(
        path="/",
        route_handlers=[
            AccountController,
            TransferController,
            sandbox_deposit,
            *MED_ROUTES,
            pix_router(),
            PixPaymentListController,
            pix_automatic_router(),
            pix_claims_router(),
            pix_limits_router(),
        ],
        # principal depends on bank: resolved in turn, no task group per request (deps.py)
        dependencies={"principal": Provide(provide_principal, sync_to_thread=False)},
        opt=protected_opt(),  # authenticated first by before_request (security.py)
    )
    # handlers taking only the request, a JSON body and headers: called from the hook
    # with their arguments read directly (direct_calls.py), once the checks passed
    direct_calls = DirectCalls()
    before_request = authenticate_then(limits.check, direct_calls)
    observability = ObservabilityPlugin(metrics_route=http.metrics_on_api_port, wraps_app=True)
    app = Litestar(
        route_handlers=[
            health,
            ready,
            auth_router(container),
            protected,
            openapi.swagger_ui_assets(),
        ],
        dependencies={"bank": Provide(bank_provider(state), sync_to_thread=False)},
        # request ids, access log, tracing; /metrics only if asked on this port (operations.md)
        plugins=[observability],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        before_request=before_request,
        request_max_body_size=http.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="finbank",
            version=API_VERSION,
            description=(
                "Accounts on a double-entry ledger, PIX and login with MFA. "
                "Errors are RFC 9457 problem+json documents whose `type` is "
                "`urn:finbank:problem:<code>`; `code` is one of a fixed list of stable codes."
            ),
            path="/schema",
            render_plugins=[openapi.swagger_ui_plugin(), JsonRenderPlugin(), YamlRenderPlugin()],
            components=Components(
                security_schemes={
                    BEARER_SCHEME: SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        debug=False,
        state=state,
    )
    assert app.state is state  # what the bank's provider reads
    require_authentication(app, before_request)
    direct_calls.install(app)
    resolve_exception_handlers_once(app)
    openapi.install(app)
    headers = SecurityHeaders(
        hsts_max_age_seconds=http.hsts_max_age_seconds,
        hsts_include_subdomains=http.hsts_include_subdomains,
    )
    app.asgi_handler = headers.middleware(observability.wrap(app.asgi_handler))
    return app


def require_authentication(app: Litestar, before_request: Any) -> None:
    """Refuse to build an app where a protected route would not authenticate: a layer
    under the protected router that set its own ``before_request`` replaces the app's
    (Litestar keeps the closest), and with it the authentication."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.opt.get(AUTHENTICATED_OPT) and (
                handler.resolve_before_request() is not before_request
            ):
                raise ImproperlyConfiguredException(
                    f"{handler.handler_name} ({route.path}) is protected but its before_request "
                    "is not the app's: it would skip authentication and the input limits"
                )


def resolve_exception_handlers_once(app: Litestar) -> None:
    """Each route handler's exception handlers, resolved now, once.

    Litestar's router asks every request's handler for them
    (``resolve_exception_handlers``: its layers walked and their maps merged
    into a new dict, a couple of microseconds a request), though they are
    fixed once the app is built and are read only when a request fails. Each
    handler gets the same merged map for good, read-only, so a request can
    never change what the next one gets.
    """
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not hasattr(handler, "__dict__"):
                continue  # Litestar's own handlers (OPTIONS, the schema's) keep resolving
            resolved = MappingProxyType(handler.resolve_exception_handlers())
            handler.resolve_exception_handlers = partial(_same, resolved)


def _same(value: Any) -> Any:
    return value


def uvicorn_options(http: HttpOptions) -> dict[str, object]:
    """How ``finbank serve`` runs uvicorn: no ``Server`` header; only the proxies
    ``FINBANK_FORWARDED_ALLOW_IPS`` names may set the client address and scheme; and
    bytes that are not HTTP/1.1 are answered with a problem document, not uvicorn's
    plain text (:mod:`finbank_http.protocol`)."""
    from finbank_http.protocol import ProblemHttpProtocol

    trusted = [part.strip() for part in http.forwarded_allow_ips.split(",") if part.strip()]
    return {
        "server_header": False,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "http": ProblemHttpProtocol,
    }


def uvicorn_config(
    app: Any, host: str, port: int, http: HttpOptions, log_level: str = "info", **extra: Any
) -> Any:
    """The ``uvicorn.Config`` of ``finbank serve`` (``benchmarks/http.py`` runs its minimal
    app on it too): uvloop and httptools when installed (``uvicorn[standard]``, the http
    extra); one access line per request, ours (uvicorn's is off); :func:`uvicorn_options`;
    ``log_config=None``: uvicorn's loggers go through finbank's masked handler."""
    import uvicorn

    options: dict[str, Any] = {**uvicorn_options(http), **extra}
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,
        access_log=False,
        **options,
    )


#: young-generation threshold of the collector in ``finbank serve`` (CPython's default: 700)
GC_THRESHOLD_0 = 2_000
#: how often ``finbank serve`` collects the whole heap, frozen part included (seconds), at first
FULL_SWEEP_SECONDS = 600.0
#: a sweep that finds less garbage than this share of the objects it scanned doubles the
#: wait for the next one (up to :data:`MAX_FULL_SWEEP_SECONDS`); one that finds more
#: brings it back to :data:`FULL_SWEEP_SECONDS`
SWEEP_BACKOFF_SHARE = 0.01
MAX_FULL_SWEEP_SECONDS = 6 * 3600.0


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    """gc callback: what survived a middle-generation or full collection is frozen, so the
    next one scans only what was promoted since (its pause follows the heap's growth, not
    its size). The memory profile keeps most of what a request allocates: with only full
    collections' survivors frozen, the young survivors piled up in the middle generation,
    ~100k objects by each of its collections (25-35 ms pauses under load, the p99)."""
    if phase == "stop" and info.get("generation", 0) >= 1:
        gc.freeze()


class HeapSettler:
    """The collector's settings of ``finbank serve``, for a p99 close to the p50.

    CPython's full collections scan every tracked object; a heap that grows
    (the memory profile keeps every transfer; caches fill) makes each pause
    longer, up to tens of milliseconds on a request's path. So, after startup:
    collect, then freeze what survived (imports, the app, the opened bank);
    collect the young generation every :data:`GC_THRESHOLD_0` allocations
    instead of 700 (a request makes a few hundred objects, nearly all freed by
    reference counting; more, and each middle-generation collection scans more);
    freeze the survivors of every middle-generation and full collection; and
    every :data:`FULL_SWEEP_SECONDS` unfreeze and collect everything once, so a
    cycle that became garbage after it was frozen is still reclaimed.

    The sweep's pause follows the whole heap (about 0.3 s per million objects
    here), and the memory profile's heap grows with every transfer, while the
    sweeps find next to nothing (``benchmarks/gc_soak.py``: no unreachable
    object among 0.15-3.7 million frozen ones over minutes of load, half of it
    refused requests). So a sweep that finds less than
    :data:`SWEEP_BACKOFF_SHARE` of what it scanned doubles the wait for the
    next (at most :data:`MAX_FULL_SWEEP_SECONDS`), and one that finds more
    brings the wait back: the sweeps' total cost stays in proportion to the
    heap's growth instead of growing with the square of the run's length.
    """

    def __init__(
        self,
        sweep_seconds: float = FULL_SWEEP_SECONDS,
        max_sweep_seconds: float = MAX_FULL_SWEEP_SECONDS,
    ) -> None:
        self.sweep_seconds = sweep_seconds
        self.max_sweep_seconds = max(max_sweep_seconds, sweep_seconds)
        self._sweeper: asyncio.Task[None] | None = None
        self._threshold: tuple[int, int, int] | None = None

    async def startup(self) -> None:
        self._threshold = gc.get_threshold()
        gc.collect()
        gc.freeze()
        _, gen1, gen2 = self._threshold
        gc.set_threshold(GC_THRESHOLD_0, gen1, gen2)
        if _freeze_survivors not in gc.callbacks:
            gc.callbacks.append(_freeze_survivors)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if _freeze_survivors in gc.callbacks:
            gc.callbacks.remove(_freeze_survivors)
        if self._threshold is not None:
            gc.set_threshold(*self._threshold)
        gc.unfreeze()

    async def _sweep(self) -> None:
        wait = self.sweep_seconds
        while True:
            await asyncio.sleep(wait)
            wait = self.sweep_once(wait)

    def sweep_once(self, wait: float) -> float:
        """Unfreeze, collect everything, freeze again; the wait before the next sweep."""
        scanned = gc.get_freeze_count()  # nearly all of the heap: survivors are frozen
        gc.unfreeze()
        found = gc.collect()  # unreachable objects found, whether freed or not
        gc.freeze()
        if found < SWEEP_BACKOFF_SHARE * scanned:
            return min(wait * 2, self.max_sweep_seconds)
        return self.sweep_seconds

    def install(self, app: Litestar) -> Litestar:
        app.on_startup.append(self.startup)
        app.on_shutdown.append(self.shutdown)
        return app


def served_app() -> Litestar:
    """The app of one ``finbank serve --workers N`` process (a uvicorn factory): logging and
    metrics set up as ``finbank serve`` does in its own process, then :func:`create_app`."""
    from finbank_adapters import metrics
    from finbank_http.observability import configure_logging

    configure_logging()
    # uvicorn turned its access line off (``access_log=False``) by emptying
    # ``uvicorn.access`` when the worker made its config, before this app loaded;
    # configure_logging routes that logger to ours again, so it is turned off again
    # here: one access line per request, ours.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    container = build_container()
    metrics.configure(container.infra.settings())
    return HeapSettler().install(create_app(container))


def serve(host: str, port: int, log_level: str = "info", workers: int = 1) -> None:
    """Run the API on ``host:port`` and, unless ``FINBANK_HTTP_METRICS_PORT`` is 0,
    ``/metrics`` on its own listener (``FINBANK_HTTP_METRICS_HOST``:port).

    ``workers`` > 1: that many processes, each listening on the port with a
    socket of its own (``SO_REUSEPORT``; :mod:`finbank_http.workers`, which
    starts again one that dies), each with its own container, pools and
    state, so only for a profile whose state lives outside the process
    (``local``, ``aws``; on ``memory`` each worker would be a bank of its
    own, so it is refused with a ``SettingsError``).
    The metrics listener is then not started: each process counts its own
    requests and no one listener could answer for all of them; scrape one
    process per container instead (the ECS service runs one worker per task).
    """

    import uvicorn

    from finbank_http.observability import metrics_app

    if workers > 1:
        settings = Settings.from_env()
        if settings.profile is Profile.MEMORY:
            raise SettingsError(
                "serve --workers above 1 needs a profile whose state lives outside the process"
                " (FINBANK_PROFILE=local or aws): on memory each worker would be a bank of its own"
            )
        http = settings.http
        if http.metrics_port:
            logging.getLogger("finbank.http").warning(
                "serve.metrics_listener_off",
                extra={"workers": workers, "reason": "one listener cannot answer for N processes"},
            )
        from finbank_http.workers import WorkerSupervisor

        status = WorkerSupervisor(
            "finbank_http.app:served_app",
            workers=workers,
            host=host,
            port=port,
            log_level=log_level,
            options=uvicorn_options(http),
        ).run()
        if status:
            raise SystemExit(status)
        return

    container = build_container()
    http = container.infra.settings().http
    app = HeapSettler().install(create_app(container))
    servers = [uvicorn.Server(uvicorn_config(app, host, port, http, log_level))]
    if http.metrics_port:
        servers.append(
            uvicorn.Server(
                uvicorn.Config(
                    metrics_app(),
                    host=http.metrics_host,
                    port=http.metrics_port,
                    log_level=log_level,
                    log_config=None,
                    server_header=False,
                    lifespan="off",
                )
            )
        )

    async def run_all() -> None:
        side = [asyncio.create_task(server.serve()) for server in servers[1:]]
        await asyncio.sleep(0)  # the API server installs its signal handlers last
        try:
            await servers[0].serve()
        finally:
            for server in servers[1:]:
                server.should_exit = True
            await asyncio.gather(*side, return_exceptions=True)

    with asyncio.Runner(loop_factory=servers[0].config.get_loop_factory()) as runner:
        runner.run(run_all())  # on uvloop when installed, as uvicorn.run would
