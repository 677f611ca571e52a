"""The gateway: BigCommerce callbacks and webhooks, the admin UI and API, the storefront API.

Route modules under routes/ each expose `routes` and optionally `async startup(app)` /
`async shutdown(app)`. State on `app.state`: settings (GatewaySettings, read once), backends
(gRPC stubs), bus (connected EventBus), removed_users and token_cache (auth.py), templates.

Where things are:
- routes/: health, bigcommerce (install/uninstall), webhooks, storefront (public API),
  one module per admin API resource (products, backorder_products, imports, sync,
  store_settings, reports, billing, tokens), admin_ui (pages);
- admin/: what the admin API and UI share (http plumbing, inputs, mapping, queries,
  import_jobs);
- storefront_cache.py, storefront_json.py, rate_limit.py: the storefront API's cache, bytes
  and per-store limit;
- auth.py (sessions, CSRF, API tokens, signed payloads), errors.py (the code -> HTTP
  table), request_log.py (one JSON line per request), csv_format.py (the import/export CSV).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from services.common.bus import EventBus
from services.gateway.auth import RemovedUsers, TokenCache, grpc_token_verifier
from services.gateway.backends import Backends
from services.gateway.errors import EXCEPTION_HANDLERS
from services.gateway.request_log import RequestLogMiddleware
from services.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
# The admin API is one module per resource (/api/v1/…); admin_ui renders the pages.
ROUTE_MODULES = ("health", "bigcommerce", "webhooks", "storefront", "products", "backorder_products", "imports",
                 "sync", "store_settings", "reports", "billing", "tokens", "admin_ui")


def _route_modules() -> list[Any]:
    modules = []
    for name in ROUTE_MODULES:
        try:
            modules.append(importlib.import_module(f"services.gateway.routes.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"services.gateway.routes.{name}":
                raise
    return modules


def create_app(settings: GatewaySettings | None = None, *, backends: Backends | None = None,
               bus: EventBus | None = None) -> Starlette:
    settings = settings or GatewaySettings.from_env()
    modules = _route_modules()
    routes: list[BaseRoute] = []
    for module in modules:
        routes.extend(module.routes)
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.backends = backends or Backends.connect(settings)
        app.state.bus = bus or EventBus(settings.nats_url, "backorder-gateway", replicas=settings.nats_replicas)
        if not app.state.bus.connected:
            await app.state.bus.connect()
            await app.state.bus.ensure_streams()
        for module in modules:
            if hasattr(module, "startup"):
                await module.startup(app)
        try:
            yield
        finally:
            for module in reversed(modules):
                if hasattr(module, "shutdown"):
                    with contextlib.suppress(Exception):
                        await module.shutdown(app)
            if bus is None:
                await app.state.bus.close()
            if backends is None:
                await app.state.backends.close()

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS,
                    middleware=[Middleware(RequestLogMiddleware)])
    app.state.settings = settings
    # Who may call the admin: sessions of removed users, and API tokens (verified by inventory, cached).
    app.state.removed_users = RemovedUsers()
    app.state.token_cache = TokenCache(grpc_token_verifier(lambda: app.state.backends.tokens))
    return app
