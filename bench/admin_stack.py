"""The whole platform for the admin benchmarks: the BigCommerce sandbox, billing, inventory,
storefront and catalog_sync on PostgreSQL (a fresh database each), a private NATS JetStream,
and the gateway served by uvicorn — the same stack as tests/e2e (start_platform).

A store is created with `products` generated products, its rate-limit quota lifted, the app
installed (catalog pulled into the mirror) and moved to the Unlimited plan; `AdminClient` is a
merchant signed in through /bc/load.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backorder.billing.v1 import billing_pb2  # noqa: E402
from backorder.catalog.v1 import catalog_pb2  # noqa: E402

from tests.e2e.conftest import start_platform, wait_for  # noqa: E402
from tests.integration.gateway.admin_support import cookie_values  # noqa: E402
from tests.plugins.sandbox import SandboxFactory  # noqa: E402
from tests.plugins.services import NatsServer, PostgresServer  # noqa: E402

HEADER = "product_id,current_stock,backorder_threshold,incoming_stock,back_in_stock_date\n"


@dataclass
class AdminClient:
    http: httpx.AsyncClient
    cookies: dict[str, str]
    store_hash: str

    def headers(self) -> dict[str, str]:
        return {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
                "x-csrf-token": self.cookies["backorder_csrf"]}

    async def import_csv(self, text: str, *, mode: str, dry_run: bool = False) -> tuple[dict[str, Any], float]:
        """POST /api/v1/imports and poll until the job is done; (job, seconds end to end)."""
        started = time.perf_counter()
        response = await self.http.post("/api/v1/imports", headers=self.headers(),
                                        data={"mode": mode, "dry_run": str(dry_run).lower()},
                                        files={"file": ("bench.csv", text.encode(), "text/csv")})
        job = response.json()["data"]
        while not job["done"]:
            await asyncio.sleep(0.1)
            job = (await self.http.get(f"/api/v1/imports/{job['id']}", headers=self.headers())).json()["data"]
        return job, time.perf_counter() - started


@contextlib.asynccontextmanager
async def admin_stack(admin_url: str, products: int) -> AsyncIterator[tuple[Any, AdminClient, list[int]]]:
    nats = NatsServer()
    nats.start()
    postgres = PostgresServer(make_url(admin_url).set(drivername="postgresql+psycopg").render_as_string(
        hide_password=False), [])
    with tempfile.TemporaryDirectory(prefix="bench-admin-") as directory:
        factory = SandboxFactory(Path(directory))
        stack = await start_platform(factory, postgres.create_database, nats.url)
        try:
            store = await asyncio.to_thread(stack.sandbox.create_store, seed_demo=False)
            await asyncio.to_thread(store.set_rate_limit, None)
            started = time.perf_counter()
            generated = await asyncio.to_thread(store.generate_products, products)
            result = await asyncio.to_thread(store.install)
            assert result.get("installed"), result

            async def pulled() -> bool:
                reply = await stack.catalog.GetStore(catalog_pb2.GetStoreRequest(store_hash=store.store_hash))
                return reply.store.HasField("last_pull_at")

            await wait_for(pulled, timeout=600, interval=0.5, message="catalog pulled")
            print(f"setup: {products} products generated, installed and pulled in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            await stack.billing.ChangePlan(billing_pb2.ChangePlanRequest(store_hash=store.store_hash,
                                                                         plan="unlimited"))
            # Generated products have consecutive ids (paging 100,000 through the mirror is slow).
            ids = list(range(generated["first_id"], generated["last_id"] + 1))
            async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=300) as http:
                token = await asyncio.to_thread(store.signed_payload, "load")
                response = await http.get("/bc/load", params={"signed_payload_jwt": token})
                assert response.status_code == 303, response.text
                client = AdminClient(http, cookie_values(response.headers.get_list("set-cookie")), store.store_hash)
                client.settle = lambda timeout_s=900.0: quiesce(stack, nats.url, store, timeout_s)  # type: ignore[attr-defined]
                client.pause_background = lambda timeout_s=600.0: pause_background(  # type: ignore[attr-defined]
                    stack, nats.url, store, timeout_s)
                yield stack, client, ids
        finally:
            await stack.stop()
            factory.stop_all()
            postgres.drop_all()
            nats.stop()


async def quiesce(stack: Any, nats_url: str, store: Any, timeout_s: float = 900.0) -> float:
    """Wait until the platform is idle again (no pending JetStream messages, the store's
    BigCommerce API traffic stopped) — e.g. after catalog_sync's write-backs for thousands of
    newly assigned products — so latencies are measured in steady state. Returns seconds waited."""
    import nats

    from services.common.bus import STREAM_EVENTS, STREAM_WEBHOOKS

    started = time.perf_counter()
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        quiet, last_served, pending = 0, -1, 0
        while quiet < 3:
            if time.perf_counter() - started > timeout_s:
                print(f"platform still busy after {timeout_s:.0f} s ({pending} event(s) pending); measuring anyway",
                      flush=True)
                break
            pending = 0
            for stream in (STREAM_EVENTS, STREAM_WEBHOOKS):
                for info in await js.consumers_info(stream):
                    pending += info.num_pending + info.num_ack_pending
            served = (await asyncio.to_thread(store.stats))["requests_served"]
            quiet = quiet + 1 if pending == 0 and served == last_served else 0
            last_served = served
            await asyncio.sleep(1.0)
    finally:
        await nc.close()
    return time.perf_counter() - started


async def pause_background(stack: Any, nats_url: str, store: Any, timeout_s: float = 600.0) -> str:
    """Stop catalog_sync's and storefront's JetStream consumers (they finish the messages in
    hand), then wait until inventory's outbox is published and the sandbox's API traffic
    (webhook deliveries, write-backs) has stopped — so a following measurement does not
    share this process's one GIL with the platform's backlog. Returns what was left behind."""
    import nats
    from sqlalchemy import func, select

    from services.common.bus import STREAM_EVENTS, STREAM_WEBHOOKS
    from services.inventory.tables import outbox

    started = time.perf_counter()
    for name in ("catalog_sync", "storefront"):
        await asyncio.gather(*(consumer.drain() for consumer in stack.runners[name].ctx.consumers))
    inventory_db = stack.runners["inventory"].ctx.db
    quiet, last_served, unpublished = 0, -1, 0
    while quiet < 3 and time.perf_counter() - started < timeout_s:
        async with inventory_db.read() as conn:
            unpublished = (await conn.execute(select(func.count()).select_from(outbox).where(
                outbox.c.published_at.is_(None)))).scalar_one()
        served = (await asyncio.to_thread(store.stats))["requests_served"]
        quiet = quiet + 1 if unpublished == 0 and served == last_served else 0
        last_served = served
        await asyncio.sleep(1.0)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        pending = 0
        for stream in (STREAM_EVENTS, STREAM_WEBHOOKS):
            for info in await js.consumers_info(stream):
                pending += info.num_pending + info.num_ack_pending
    finally:
        await nc.close()
    return (f"catalog_sync and storefront consumers stopped with {pending} message(s) still pending; "
            f"inventory outbox {'published' if unpublished == 0 else f'{unpublished} unpublished'} and the sandbox "
            f"quiet after {time.perf_counter() - started:.0f} s")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summary(samples: list[float]) -> str:
    return (f"p50 {percentile(samples, 0.5) * 1000:.1f} ms, p95 {percentile(samples, 0.95) * 1000:.1f} ms, "
            f"mean {statistics.fmean(samples) * 1000:.1f} ms (n={len(samples)})")
