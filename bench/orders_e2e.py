"""Orders per second end-to-end: from an accepted store/order/created webhook to a committed
backorder report row on PostgreSQL.

The whole platform runs as separate processes on loopback (services.launcher.Platform with
free ports and a fresh PostgreSQL database per service): nats-server, the sandbox, billing,
inventory, storefront, catalog_sync and the gateway. A fresh sandbox store gets the app
installed through the real /bc/auth handshake, the growth plan, and `--products` products
assigned at stock 0 with an unlimited threshold (every ordered unit is backordered, so
every order writes a report row).

Outside the timed part: the orders are created through the sandbox's order API while its
webhook deliveries for the store are held back (injected delivery failures, retries
scheduled far away); the bench then reads the exact delivery bodies the sandbox queued.
Timed: the bench POSTs those deliveries to the gateway (`--concurrency` in flight, with the
store's X-Backorder-Hook-Token), the gateway publishes each to JetStream and answers after
the ack, catalog_sync fetches the order and its products from the sandbox, inventory
applies the lines; the clock stops when the report holds a row for every order.

    PYTHONPATH=. .venv/bin/python bench/orders_e2e.py \
        --admin-url postgresql://postgres@127.0.0.1:5432/postgres --orders 5000

Fresh databases `bench_e2e_<svc>_<random>` are created through the admin URL and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import httpx
from backorder.billing.v1 import billing_pb2, billing_pb2_grpc
from backorder.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from backorder.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.common import bigcommerce_webhooks as domain
from services.common.grpc_server import insecure_channel
from services.launcher import GRPC_SERVICES, Platform

WEBHOOK_KEY = "bench-webhook-secret-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BenchPlatform(Platform):
    """The launcher's platform with one PostgreSQL database per service."""

    database_urls: dict[str, str]

    def start_services(self) -> None:
        base = self.base_env()
        base["BACKORDER_WEBHOOK_SECRET_KEY"] = WEBHOOK_KEY
        base["BACKORDER_LOG_LEVEL"] = "WARNING"
        python = sys.executable
        self.spawn("sandbox", [python, "-m", "services.cli", "serve", "sandbox"], base)
        for service in GRPC_SERVICES:
            environ = dict(base)
            environ["BACKORDER_GRPC_PORT"] = str(self.grpc_ports[service])
            environ["BACKORDER_METRICS_PORT"] = str(self.metrics_ports[service])
            environ["BACKORDER_DATABASE_URL"] = self.database_urls[service]
            command = [python, "-m", "services.cli", "serve", service]
            profile_dir = os.environ.get("BENCH_PROFILE_DIR")
            if profile_dir:
                command[1:1] = ["-m", "cProfile", "-o", f"{profile_dir}/{service}.prof"]
            self.spawn(service, command, environ)
        self.spawn("gateway", [python, "-m", "services.cli", "serve", "gateway"], base)


def create_databases(admin_url: str) -> dict[str, str]:
    engine = create_engine(make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    urls = {}
    suffix = uuid.uuid4().hex[:6]
    with engine.connect() as conn:
        for service in GRPC_SERVICES:
            name = f"bench_e2e_{service}_{suffix}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            urls[service] = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine.dispose()
    return urls


def drop_databases(admin_url: str, urls: dict[str, str]) -> None:
    engine = create_engine(make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for url in urls.values():
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    engine.dispose()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report_rows(inventory_url: str, store_hash: str) -> int:
    engine = create_engine(make_url(inventory_url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM backorder_report WHERE store_hash = :s"),
                                    {"s": store_hash}).scalar_one())
    finally:
        engine.dispose()


async def prepare(platform: BenchPlatform, http: httpx.AsyncClient, products: int, orders: int,
                  lines_per_order: int) -> tuple[str, list[bytes]]:
    sandbox = platform.sandbox_url
    store_hash = f"b{uuid.uuid4().hex[:7]}"
    created = (await http.post(f"{sandbox}/_sandbox/stores", json={"store_hash": store_hash, "seed_demo": False})).json()
    owner = {"X-Auth-Token": created["access_token"]}
    # An Enterprise-like store: no API quota, so the figure is the platform's, not the plan's.
    await http.put(f"{sandbox}/_sandbox/stores/{store_hash}/rate-limit", json={"quota": None})
    await http.post(f"{sandbox}/_sandbox/stores/{store_hash}/products/generate", json={"count": products})
    installed = (await http.post(f"{sandbox}/_sandbox/stores/{store_hash}/install", json={})).json()
    assert installed.get("installed"), installed
    catalog = catalog_pb2_grpc.CatalogServiceStub(insecure_channel(f"127.0.0.1:{platform.grpc_ports['catalog_sync']}"))
    for _ in range(600):
        reply = await catalog.GetStore(catalog_pb2.GetStoreRequest(store_hash=store_hash), timeout=5)
        if reply.store.HasField("last_pull_at"):
            break
        await asyncio.sleep(0.1)
    listing = await catalog.ListProducts(catalog_pb2.ListProductsRequest(store_hash=store_hash, limit=products),
                                         timeout=10)
    product_ids = [p.product_id for p in listing.products][:products]
    billing = billing_pb2_grpc.BillingServiceStub(insecure_channel(f"127.0.0.1:{platform.grpc_ports['billing']}"))
    await billing.ChangePlan(billing_pb2.ChangePlanRequest(store_hash=store_hash, plan="growth"), timeout=10)
    inventory = inventory_pb2_grpc.InventoryServiceStub(
        insecure_channel(f"127.0.0.1:{platform.grpc_ports['inventory']}"))
    await inventory.AssignProducts(inventory_pb2.AssignProductsRequest(store_hash=store_hash, actor="bench", items=[
        inventory_pb2.AssignItem(product_id=pid, stock=0, name=f"p{pid}") for pid in product_ids]), timeout=30)
    # Wait until every tracking-off write-back landed (orders of untracked products never fail on stock).
    for _ in range(600):
        tracked = (await http.get(f"{sandbox}/stores/{store_hash}/v3/catalog/products", headers=owner,
                                  params={"inventory_tracking": "product", "limit": 1})).json()
        if tracked["meta"]["pagination"]["total"] == 0:
            break
        await asyncio.sleep(0.2)
    # Hold the store's deliveries back while the orders are created (outside the timed part).
    await http.put(f"{sandbox}/_sandbox/stores/{store_hash}/settings", json={"webhook_time_scale": 100000})
    await http.post(f"{sandbox}/_sandbox/stores/{store_hash}/failures",
                    json={"target": "deliveries", "count": orders * 2 + 100, "status": 503})
    rng = random.Random(7)
    semaphore = asyncio.Semaphore(16)

    async def order() -> None:
        lines = [{"product_id": pid, "quantity": rng.randint(1, 3)} for pid in rng.sample(product_ids, lines_per_order)]
        async with semaphore:
            response = await http.post(f"{sandbox}/stores/{store_hash}/v2/orders", headers=owner, json={
                "status_id": 11, "billing_address": {"first_name": "B", "last_name": "E", "email": "b@example.com"},
                "products": lines})
            assert response.status_code in (200, 201), response.text

    await asyncio.gather(*(order() for _ in range(orders)))
    bodies: list[bytes] = []
    for _ in range(600):
        found = (await http.get(f"{sandbox}/_sandbox/stores/{store_hash}/deliveries",
                                params={"scope": "store/order/created"})).json()["data"]
        if len(found) >= orders:
            bodies = [json.dumps(d["payload"]).encode() for d in found]
            break
        await asyncio.sleep(0.2)
    assert len(bodies) >= orders, f"only {len(bodies)} deliveries queued"
    return store_hash, bodies[:orders]


async def run(args: argparse.Namespace) -> None:
    urls = create_databases(args.admin_url)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    platform = BenchPlatform(data_dir)
    platform.database_urls = urls
    platform.nats_port, platform.gateway_port, platform.sandbox_port = free_port(), free_port(), free_port()
    platform.grpc_ports = {name: free_port() for name in platform.grpc_ports}
    platform.metrics_ports = {name: 0 for name in platform.metrics_ports}
    try:
        platform.start_nats()
        platform.start_services()
        await platform.wait_healthy()
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        # The load generator must not be the bottleneck: the webhooks go out through aiohttp,
        # not httpx, whose connection pool costs ~1 ms of CPU per request at 64 in flight.
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with httpx.AsyncClient(timeout=60.0, limits=limits) as http, \
                aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as sender_http:
            store_hash, bodies = await prepare(platform, http, args.products, args.orders, args.lines)
            headers = {"Content-Type": "application/json",
                       domain.HOOK_TOKEN_HEADER: domain.webhook_secret(WEBHOOK_KEY, store_hash)}
            queue: asyncio.Queue[bytes] = asyncio.Queue()
            for body in bodies:
                queue.put_nowait(body)
            refused: collections.Counter[int] = collections.Counter()

            async def sender() -> None:
                nonlocal refused
                while not queue.empty():
                    body = queue.get_nowait()
                    try:
                        async with sender_http.post(f"{platform.gateway_url}/webhooks/bigcommerce", data=body,
                                                    headers=headers) as response:
                            status = response.status
                            await response.read()
                    except aiohttp.ClientError:
                        refused[0] += 1
                        queue.put_nowait(body)
                        continue
                    if status != 200:
                        refused[status] += 1
                        queue.put_nowait(body)

            cpu_before = {name: cpu_seconds(p.pid) for name, p in platform.processes.items()}
            started = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(args.concurrency)))
            accepted_s = time.perf_counter() - started
            inventory_url = urls["inventory"]
            while True:
                rows = await asyncio.to_thread(report_rows, inventory_url, store_hash)
                if rows >= args.orders * args.lines:
                    break
                if time.perf_counter() - started > args.timeout:
                    raise SystemExit(f"only {rows} report rows after {args.timeout}s")
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            cpu = {name: cpu_seconds(p.pid) - cpu_before[name] for name, p in platform.processes.items()}
        print(f"orders: {args.orders} x {args.lines} line(s) over {args.products} products; "
              f"webhook concurrency {args.concurrency}")
        print(f"webhooks accepted: {args.orders / accepted_s:,.0f}/s (refused and resent: {dict(refused) or 'none'})")
        print(f"end-to-end: {elapsed:.2f}s -> {args.orders / elapsed:,.0f} orders/s "
              f"(every report row committed on PostgreSQL)")
        print("CPU seconds during the timed part: " + ", ".join(
            f"{name} {seconds:.1f}" for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1])))
    finally:
        platform.stop()
        drop_databases(args.admin_url, urls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default=os.environ.get("BACKORDER_BENCH_DATABASE_URL",
                                                              "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--lines", type=int, default=1, help="order lines per order (each a distinct product)")
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=600.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
