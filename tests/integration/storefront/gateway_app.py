"""The real gateway app (create_app) wired to an in-process storefront service and real NATS."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from backorder.storefront.v1 import storefront_pb2_grpc

from services.common.bus import EventBus
from services.common.grpc_server import DeadlineStub, insecure_channel
from services.gateway.app import create_app
from services.gateway.backends import Backends
from services.gateway.settings import GatewaySettings
from services.gateway.storefront_cache import StorefrontConfig, StorefrontState


class CountingStub:
    """Counts calls per RPC on the way to the real stub."""

    def __init__(self, stub: Any) -> None:
        self._stub = stub
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)

        def call(request: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(request, **kwargs)

        return call


def storefront_backends(address: str) -> tuple[Backends, CountingStub]:
    channel = insecure_channel(address)
    backends = Backends({"storefront": address})
    backends.channels["storefront"] = channel
    counting = CountingStub(DeadlineStub(storefront_pb2_grpc.StorefrontServiceStub(channel), 5))
    backends.stubs["storefront"] = counting
    return backends, counting


@contextlib.asynccontextmanager
async def gateway_client(address: str, bus: EventBus, config: StorefrontConfig | None = None
                         ) -> AsyncIterator[tuple[httpx.AsyncClient, Any, CountingStub]]:
    backends, counting = storefront_backends(address)
    settings = GatewaySettings.from_env(environ={"BACKORDER_NATS_URL": bus.url})
    app = create_app(settings, backends=backends, bus=bus)
    app.state.storefront = StorefrontState(config or StorefrontConfig(
        cache_ttl_s=30, max_entries=10_000, rate_per_s=0, burst=0, browser_max_age_s=0, cors_origins=("*",)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client, app, counting
    await backends.close()
