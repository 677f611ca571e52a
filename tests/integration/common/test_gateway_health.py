"""The gateway's /healthz reports each backend: 200 only when all are SERVING."""

from __future__ import annotations

import httpx
import pytest

from services.billing.server import setup as billing_setup
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.plugins.services import free_port

pytestmark = pytest.mark.services


async def test_healthz_names_the_backend_that_is_not_serving(sqlite_database_url, nats_server, start_service,
                                                            serve_asgi):
    billing = await start_service("billing", billing_setup, sqlite_database_url())
    closed = free_port()  # nothing listens here
    environ = {
        "BACKORDER_NATS_URL": nats_server.url,
        "BACKORDER_BILLING_GRPC_ADDR": f"127.0.0.1:{billing.port}",
        "BACKORDER_INVENTORY_GRPC_ADDR": f"127.0.0.1:{closed}",
        "BACKORDER_CATALOG_SYNC_GRPC_ADDR": f"127.0.0.1:{closed}",
        "BACKORDER_STOREFRONT_GRPC_ADDR": f"127.0.0.1:{closed}",
    }
    base = serve_asgi(create_app(GatewaySettings.from_env(environ=environ)))
    async with httpx.AsyncClient(base_url=base) as client:
        reply = await client.get("/healthz")
        metrics = await client.get("/metrics")
    assert reply.status_code == 503
    assert reply.json()["checks"] == {
        "inventory": "not_serving", "catalog_sync": "not_serving", "storefront": "not_serving",
        "billing": "serving", "nats": "connected",
    }
    assert metrics.status_code == 200
    assert "backorder_grpc_server_seconds" in metrics.text
