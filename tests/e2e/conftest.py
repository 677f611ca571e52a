"""Whole-platform fixtures: the BigCommerce sandbox, every service and the gateway, for real.

Fixtures
--------
``platform_stack`` (session) -> ``PlatformStack``
    One sandbox server (tests.plugins.sandbox) whose app URL is the gateway; billing,
    inventory, storefront and catalog_sync started in this process (real gRPC sockets, a
    fresh PostgreSQL database each, the session NATS); the gateway (services.gateway.app)
    served by uvicorn on a loopback port in its own thread. Attributes: ``sandbox`` (the
    SandboxServer), ``gateway_url``, ``runners`` (name -> ServiceRunner), ``addresses``
    (name -> "127.0.0.1:port"), stubs with deadlines ``catalog``, ``inventory``, ``reports``,
    ``tokens``, ``storefront``, ``billing``; ``catalog_app`` (catalog_sync's CatalogSync, for
    white-box checks).
``platform`` (function) -> ``Platform``
    A fresh sandbox store (demo catalog, ~40 products) with the app installed through the
    real /bc/auth handshake (sandbox -> gateway -> catalog_sync: token exchange, hooks,
    script, free plan) and the catalog pulled into the mirror. Attributes/helpers:
    ``store`` (SandboxStore: ``api()``, ``deliveries()``, ``fail_next()``, …), ``store_hash``,
    ``stack``, the same stubs as the stack, ``http`` (httpx.AsyncClient on the gateway),
    ``await platform.call(fn, *args)`` (run a blocking sandbox helper in a thread — always
    use it: the services run on this test's event loop), ``await platform.set_plan(code)``,
    ``await platform.assign(product_id, stock=, threshold=)``,
    ``await platform.create_order([(product_id, qty), ...])`` (sandbox order API -> order id),
    ``await platform.wait_for(async_predicate, timeout=…)``.

Everything runs on PostgreSQL (BACKORDER_TEST_DATABASE_URL or a throwaway cluster); the
tests skip loudly without it, as the services plugin does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest
from backorder.billing.v1 import billing_pb2, billing_pb2_grpc
from backorder.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from backorder.inventory.v1 import inventory_pb2, inventory_pb2_grpc, report_pb2_grpc, token_pb2_grpc
from backorder.storefront.v1 import storefront_pb2_grpc
from cryptography.fernet import Fernet

from services.common.grpc_server import DeadlineStub, insecure_channel
from services.common.runtime import ServiceRunner
from tests.plugins import sandbox as sandbox_plugin
from tests.plugins.sandbox import LoopbackServer, SandboxFactory, SandboxServer, SandboxStore
from tests.plugins.services import PostgresServer, service_settings
from tests.plugins.services import wait_until as shared_wait_until

# The sandbox plugin's fixtures, for tests under tests/e2e (the root conftest only loads the services plugin).
sandbox_factory = sandbox_plugin.sandbox_factory
serve_asgi = sandbox_plugin.serve_asgi

STUB_DEADLINE_S = 30.0


async def wait_for(predicate: Callable[[], Awaitable[Any]], timeout: float = 20.0, interval: float = 0.05,
                   message: str = "condition") -> Any:
    """Await `predicate()` until it returns something truthy; fail at the deadline."""
    return await shared_wait_until(predicate, timeout, interval_s=interval, what=message)


@dataclass
class PlatformStack:
    sandbox: SandboxServer
    gateway_url: str
    runners: dict[str, ServiceRunner]
    addresses: dict[str, str]
    gateway: LoopbackServer
    channels: list[grpc.aio.Channel] = field(default_factory=list)
    catalog: Any = None
    inventory: Any = None
    reports: Any = None
    tokens: Any = None
    storefront: Any = None
    billing: Any = None

    @property
    def catalog_app(self) -> Any:
        return self.runners["catalog_sync"].ctx.state["app"]  # type: ignore[union-attr]

    def connect_stubs(self) -> None:
        def stub(address: str, factory: Any) -> Any:
            channel = insecure_channel(address)
            self.channels.append(channel)
            return DeadlineStub(factory(channel), STUB_DEADLINE_S)

        self.catalog = stub(self.addresses["catalog_sync"], catalog_pb2_grpc.CatalogServiceStub)
        self.inventory = stub(self.addresses["inventory"], inventory_pb2_grpc.InventoryServiceStub)
        self.reports = stub(self.addresses["inventory"], report_pb2_grpc.ReportServiceStub)
        self.tokens = stub(self.addresses["inventory"], token_pb2_grpc.TokenServiceStub)
        self.storefront = stub(self.addresses["storefront"], storefront_pb2_grpc.StorefrontServiceStub)
        self.billing = stub(self.addresses["billing"], billing_pb2_grpc.BillingServiceStub)

    async def stop(self) -> None:
        await asyncio.to_thread(self.gateway.stop)
        for channel in self.channels:
            await channel.close()
        for name in ("catalog_sync", "storefront", "inventory", "billing"):
            runner = self.runners.get(name)
            if runner is not None:
                await runner.stop()


async def start_platform(sandboxes: SandboxFactory, database_url: Callable[[], str], nats_url: str,
                         **catalog_extra: Any) -> PlatformStack:
    """Start sandbox + services + gateway (see the module docstring); `stop()` it at the end."""
    from services.billing.server import setup as billing_setup
    from services.catalog_sync.server import setup as catalog_setup
    from services.gateway.app import create_app
    from services.gateway.settings import GatewaySettings
    from services.inventory.server import setup as inventory_setup
    from services.storefront.server import setup as storefront_setup

    gateway = LoopbackServer(None)
    sandbox = await asyncio.to_thread(sandboxes, gateway.url)
    runners: dict[str, ServiceRunner] = {}
    addresses: dict[str, str] = {}

    async def start(name: str, setup: Any, **extra: Any) -> None:
        runner = ServiceRunner(service_settings(name, database_url(), nats_url, extra=extra), setup)
        runners[name] = runner
        await runner.start()
        addresses[name] = f"127.0.0.1:{runner.port}"

    try:
        await start("billing", billing_setup)
        await start("inventory", inventory_setup, billing_addr=addresses["billing"], erp_grpc_port=None)
        await start("storefront", storefront_setup)
        await start("catalog_sync", catalog_setup, **{
            "bc_api_url": sandbox.base_url, "bc_login_url": sandbox.base_url, "public_url": gateway.url,
            "bc_client_id": sandbox.client_id, "bc_client_secret": sandbox.client_secret,
            "token_encryption_keys": Fernet.generate_key().decode(), "inventory_addr": addresses["inventory"],
            "billing_addr": addresses["billing"], "storefront_addr": addresses["storefront"],
            "consumer_ack_wait_s": 15.0, **catalog_extra})
        settings = GatewaySettings.from_env(environ={
            "BACKORDER_GATEWAY_PORT": str(gateway.port), "BACKORDER_PUBLIC_URL": gateway.url,
            "BACKORDER_NATS_URL": nats_url, "BACKORDER_BC_CLIENT_ID": sandbox.client_id,
            "BACKORDER_BC_CLIENT_SECRET": sandbox.client_secret,
            "BACKORDER_WEBHOOK_PUBLISH_TIMEOUT_S": "2",
            **{f"BACKORDER_{name.upper()}_GRPC_ADDR": address for name, address in addresses.items()},
        })
        gateway.server.config.app = create_app(settings)
        await asyncio.to_thread(gateway.start)
    except BaseException:
        for runner in reversed(list(runners.values())):
            await runner.stop()
        raise
    stack = PlatformStack(sandbox, gateway.url, runners, addresses, gateway)
    stack.connect_stubs()
    return stack


@dataclass
class Platform:
    stack: PlatformStack
    store: SandboxStore
    http: httpx.AsyncClient

    def __getattr__(self, name: str) -> Any:
        if name in {"catalog", "inventory", "reports", "tokens", "storefront", "billing", "catalog_app",
                    "gateway_url"}:
            return getattr(self.stack, name)
        raise AttributeError(name)

    @property
    def store_hash(self) -> str:
        return self.store.store_hash

    async def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(function, *args, **kwargs)

    async def wait_for(self, predicate: Callable[[], Awaitable[Any]], timeout: float = 20.0,
                       message: str = "condition") -> Any:
        return await wait_for(predicate, timeout=timeout, message=message)

    async def set_plan(self, plan: str) -> None:
        await self.billing.ChangePlan(billing_pb2.ChangePlanRequest(store_hash=self.store_hash, plan=plan))

    async def assign(self, product_id: int, *, stock: int, threshold: int | None = None) -> Any:
        item = inventory_pb2.AssignItem(product_id=product_id, stock=stock, name=f"product {product_id}")
        if threshold is not None:
            item.threshold = threshold
        reply = await self.inventory.AssignProducts(inventory_pb2.AssignProductsRequest(
            store_hash=self.store_hash, items=[item], actor="e2e"))
        return reply.products[0]

    async def create_order(self, lines: list[tuple[int, int]], email: str = "buyer@example.com") -> int:
        body = {"status_id": 11, "billing_address": {"first_name": "Jo", "last_name": "Buyer", "email": email},
                "products": [{"product_id": pid, "quantity": qty} for pid, qty in lines]}
        response = await self.call(self.store.api, "POST", "/v2/orders", json=body)
        assert response.status_code in (200, 201), response.text
        return int(response.json()["id"])

    async def bc_product(self, product_id: int) -> dict[str, Any]:
        response = await self.call(self.store.api, "GET", f"/v3/catalog/products/{product_id}")
        assert response.status_code == 200, response.text
        return response.json()["data"]


async def install_store(stack: PlatformStack, *, seed_demo: bool = True) -> SandboxStore:
    """A fresh sandbox store with the app installed and its catalog pulled."""
    store = await asyncio.to_thread(stack.sandbox.create_store, seed_demo=seed_demo)
    result = await asyncio.to_thread(store.install)
    assert result.get("installed"), result

    async def pulled() -> bool:
        reply = await stack.catalog.GetStore(catalog_pb2.GetStoreRequest(store_hash=store.store_hash))
        return reply.store.HasField("last_pull_at")

    await wait_for(pulled, message="catalog pulled after install")
    return store


# One stack per test session even when several conftests expose `platform_stack`
# (tests/integration/catalog_sync re-exports it): four services' connection pools are
# a real load on a shared PostgreSQL.
_SHARED: dict[str, Any] = {"stack": None, "users": 0}


@pytest.fixture(scope="session")
async def platform_stack(sandbox_factory: SandboxFactory, postgres_server: PostgresServer,
                         session_nats_server: Any) -> AsyncIterator[PlatformStack]:
    if _SHARED["stack"] is None:
        _SHARED["stack"] = await start_platform(sandbox_factory, postgres_server.create_database,
                                                 session_nats_server.url)
    _SHARED["users"] += 1
    try:
        yield _SHARED["stack"]
    finally:
        _SHARED["users"] -= 1
        if _SHARED["users"] == 0:
            stack, _SHARED["stack"] = _SHARED["stack"], None
            await stack.stop()


@pytest.fixture
async def platform(platform_stack: PlatformStack) -> AsyncIterator[Platform]:
    store = await install_store(platform_stack)
    async with httpx.AsyncClient(base_url=platform_stack.gateway_url, timeout=30.0) as http:
        yield Platform(platform_stack, store, http)
