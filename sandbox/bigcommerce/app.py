"""The sandbox app: BigCommerce's REST API, OAuth, storefront and sandbox controls on one origin."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.bigcommerce import api, controls, storefront, unified_billing
from sandbox.bigcommerce.config import SandboxConfig
from sandbox.bigcommerce.core import Sandbox
from sandbox.bigcommerce.db import Database
from sandbox.bigcommerce.errors import ApiError, error_response
from sandbox.bigcommerce.oauth import token_exchange
from sandbox.bigcommerce.webhooks import DeliveryWorker

log = logging.getLogger("sandbox.bigcommerce")


def seed_if_empty(sb: Sandbox) -> None:
    """On an empty database, create the demo store with its catalog (the `make run` default)."""
    config = sb.config
    if not config.seed_demo or sb.store_exists(config.demo_store_hash):
        return
    if sb.db.scalar("SELECT COUNT(*) FROM stores"):
        return
    from sandbox.bigcommerce.seed import seed_demo_catalog

    sb.create_store(config.demo_store_hash, token=config.demo_token, timezone=config.demo_timezone,
                    name="Backorder Demo Store")
    seeded = seed_demo_catalog(sb, config.demo_store_hash)
    log.info("seeded store %s with %s products", config.demo_store_hash, seeded["products"])


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if request.url.path.startswith("/_sandbox"):
        return JSONResponse({"error": {"status": exc.status, "message": exc.title}}, status_code=exc.status)
    return error_response(request.url.path, exc)


def create_app(config: SandboxConfig | None = None) -> Starlette:
    config = config or SandboxConfig.from_env()
    db = Database(config.db_path)
    sandbox = Sandbox(config, db)
    seed_if_empty(sandbox)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The event is bound to the running loop, so it is created here rather than at import.
        sandbox.delivery_wakeup = asyncio.Event()
        worker = DeliveryWorker(sandbox)
        task = asyncio.create_task(worker.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await worker.close()
            db.close()

    routes = [Route("/oauth2/token", token_exchange, methods=["POST"]), *unified_billing.routes,
              *controls.ROUTES, *storefront.ROUTES, *api.ROUTES]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={ApiError: api_error},
                    middleware=[Middleware(api.ApiGate, sandbox=sandbox)])
    app.state.sandbox = sandbox
    return app
