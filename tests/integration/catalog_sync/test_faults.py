"""Faults that must lose nothing: NATS restarted while webhooks arrive, catalog_sync killed
mid-batch. Each test runs its own platform on its own nats-server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from backorder.inventory.v1 import inventory_pb2, report_pb2

from services.catalog_sync.server import setup as catalog_setup
from services.common.runtime import ServiceRunner
from tests.e2e.conftest import Platform, install_store, start_platform, wait_for


@pytest.fixture
async def own_platform(sandbox_factory, postgres_server, own_nats_server) -> AsyncIterator[Platform]:
    stack = await start_platform(sandbox_factory, postgres_server.create_database, own_nats_server.url)
    try:
        store = await install_store(stack)
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30.0) as http:
            platform = Platform(stack, store, http)
            platform.nats = own_nats_server  # type: ignore[attr-defined]
            yield platform
    finally:
        await stack.stop()


async def backorder_product(platform: Platform) -> int:
    """An assigned product at stock 0 with unlimited threshold: every unit ordered is a report row."""
    response = await platform.call(platform.store.api, "GET", "/v3/catalog/products",
                                   params={"inventory_tracking": "product", "limit": 250})
    product = next(p for p in response.json()["data"] if p.get("base_variant_id"))
    await platform.assign(product["id"], stock=0)

    async def tracking_off():
        return (await platform.bc_product(product["id"]))["inventory_tracking"] == "none"

    await platform.wait_for(tracking_off, message="tracking off")
    return int(product["id"])


async def expect_orders_applied_once(platform: Platform, product_id: int, orders: list[int], timeout: float) -> None:
    async def all_rows():
        reply = await platform.reports.ListBackorders(report_pb2.ListBackordersRequest(
            store_hash=platform.store_hash, limit=250))
        return reply.total >= len(orders) and reply

    reply = await wait_for(all_rows, timeout=timeout, message="every order in the report")
    assert sorted(int(r.order_id) for r in reply.rows) == sorted(orders)
    product = await platform.inventory.GetProduct(inventory_pb2.GetProductRequest(
        store_hash=platform.store_hash, product_id=product_id))
    assert product.product.stock == -len(orders)


async def test_nats_restarted_while_webhooks_arrive_loses_and_doubles_nothing(own_platform):
    platform = own_platform
    product_id = await backorder_product(platform)
    before = [await platform.create_order([(product_id, 1)]) for _ in range(3)]
    await asyncio.to_thread(platform.nats.stop)
    during = [await platform.create_order([(product_id, 1)]) for _ in range(5)]

    async def refused():
        found = await platform.call(platform.store.deliveries, scope="store/order/created")
        return [d for d in found if d["payload"]["data"]["id"] in during
                and any(a["status_code"] == 503 for a in d["attempts"])]

    await wait_for(refused, timeout=30, message="the gateway answering 503 while NATS is down")
    await asyncio.to_thread(platform.nats.start)
    after = [await platform.create_order([(product_id, 1)]) for _ in range(2)]
    await expect_orders_applied_once(platform, product_id, before + during + after, timeout=60)


async def kill(runner: ServiceRunner) -> None:
    """Stop a service the hard way: no drain, no acks for what is in flight."""
    for consumer in runner.ctx.consumers:  # type: ignore[union-attr]
        for task in list(consumer._inflight):
            task.cancel()
    for task in runner._tasks:
        task.cancel()
    await asyncio.gather(*runner._tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await runner.bus.nc.close()  # type: ignore[union-attr]
    await runner.grpc.server.stop(0)
    await runner.db.dispose()  # type: ignore[union-attr]


async def test_catalog_sync_killed_mid_batch_and_restarted_applies_every_order_once(own_platform):
    platform = own_platform
    product_id = await backorder_product(platform)
    orders = [await platform.create_order([(product_id, 1)]) for _ in range(20)]

    async def some_applied():
        reply = await platform.reports.ListBackorders(report_pb2.ListBackordersRequest(
            store_hash=platform.store_hash, limit=250))
        return reply.total >= 3

    await wait_for(some_applied, timeout=30, message="processing under way")
    old = platform.stack.runners["catalog_sync"]
    await kill(old)
    more = [await platform.create_order([(product_id, 1)]) for _ in range(5)]
    fresh = ServiceRunner(dataclasses.replace(old.settings, grpc_port=old.port), catalog_setup)
    platform.stack.runners["catalog_sync"] = fresh
    await fresh.start()
    await expect_orders_applied_once(platform, product_id, orders + more, timeout=60)
