"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from finbank import Bank
from finbank.bank import opened
from finbank_adapters.containers import BankContainer, build_container
from finbank_http.deps import provide_bank
from finbank_http.observability import ObservabilityPlugin
from finbank_http.problems import EXCEPTION_HANDLERS
from finbank_http.routes.accounts import AccountController, TransferController
from finbank_http.routes.auth import auth_router, register_rate_limit_store
from finbank_http.routes.ops import health, ready, sandbox_deposit
from finbank_http.routes.pix import pix_router
from finbank_http.security import BEARER_SCHEME, provide_principal

API_VERSION = "0.1.0"


def create_app(container: BankContainer | None = None) -> Litestar:
    """Build the HTTP app over ``container`` (a new one from ``FINBANK_*`` env if omitted).

    The app's lifespan opens the bank (``finbank.bank.opened``: the
    container's connections and the bank's own ledger accounts) when it
    starts and closes it when it stops; nothing connects before that. Routes
    depend on the typed :class:`~finbank.Bank` facade (``bank``).
    """
    container = container or build_container()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with opened(container) as bank:
            app.state.bank = bank
            await register_rate_limit_store(app, container)
            yield

    protected = Router(
        path="/",
        route_handlers=[AccountController, TransferController, sandbox_deposit, pix_router()],
        dependencies={"principal": Provide(provide_principal)},
    )
    app = Litestar(
        route_handlers=[health, ready, auth_router(container), protected],
        dependencies={"bank": Provide(provide_bank)},
        plugins=[ObservabilityPlugin()],  # request ids, access log, /metrics, tracing
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(
            title="finbank",
            version=API_VERSION,
            description=(
                "Accounts on a double-entry ledger, PIX and login with MFA. "
                "Errors are RFC 9457 problem+json documents whose `type` is "
                "`urn:finbank:problem:<code>`."
            ),
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(), JsonRenderPlugin(), YamlRenderPlugin()],
            components=Components(
                security_schemes={
                    BEARER_SCHEME: SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        debug=False,
    )
    app.state.container = container
    app.state.bank = Bank(container)  # opened by the lifespan
    return app
