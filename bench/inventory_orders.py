"""Order lines per second applied through gRPC (InventoryService.ApplyOrder) on PostgreSQL,
beside what pgbench reaches with the equivalent conditional UPDATE on the same machine.

Scenarios (one line per order, quantity 1, a fresh order id per call):
- spread: each line on a random product out of `--products` (default 1,000);
- hot:    every line on the same product.
The inventory service runs in a child process on a real socket with its own nats-server
from the wheel (the outbox relay publishes every event during the run); the client keeps
`--concurrency` calls in flight. pgbench then runs the conditional UPDATE alone
(`-c pgbench-clients -j 2`) on a copy of the same schema and rows.

    PYTHONPATH=. .venv/bin/python bench/inventory_orders.py \
        --admin-url postgresql://postgres@127.0.0.1:5432/postgres --seconds 20

Fresh databases `bench_inv_<random>` are created through the admin URL and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from backorder.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.common import migrations
from services.common.grpc_server import insecure_channel
from services.common.runtime import ServiceRunner, tune_gc_for_serving
from services.inventory import server
from services.inventory.assignment import Entitlement
from tests.plugins.services import NatsServer, service_settings

STORE = "bench01"
STOCK = 1_000_000_000
THRESHOLD = 1_000


class Unlimited:
    async def get(self, store_hash: str) -> Entitlement:
        return Entitlement("bench", None)


def create_database(admin_url: str) -> str:
    name = f"bench_inv_{uuid.uuid4().hex[:8]}"
    engine = create_engine(make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    engine = create_engine(make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    engine.dispose()


async def serve(database_url: str, nats_url: str) -> None:
    """Child mode: run the service, print its port, stop when the parent closes stdin."""
    settings = service_settings("inventory", database_url, nats_url,
                                extra={"entitlements": Unlimited(), "erp_grpc_port": None,
                                       "receipt_interval_s": 3600.0})
    runner = ServiceRunner(settings, server.setup)
    await runner.start()
    tune_gc_for_serving()  # as `backorder serve` does
    print(runner.port, flush=True)
    await asyncio.to_thread(sys.stdin.read)
    await runner.stop()


async def seed(stub: inventory_pb2_grpc.InventoryServiceStub, products: int) -> None:
    reply = await stub.ImportProducts(inventory_pb2.ImportProductsRequest(
        store_hash=STORE, mode=inventory_pb2.IMPORT_MODE_ASSIGN, rows=[
            inventory_pb2.ImportRow(row=n + 1, product_id=str(n), current_stock=str(STOCK),
                                    backorder_threshold=str(THRESHOLD), name=f"Product {n}", sku=f"SKU-{n}")
            for n in range(1, products + 1)]), timeout=120)
    assert not reply.errors, reply.errors[:3]


async def drive(stub: inventory_pb2_grpc.InventoryServiceStub, *, seconds: float, concurrency: int,
                pick: callable) -> tuple[float, list[float]]:
    """Lines/s over the measured window (after a 2 s warm-up) and per-call latencies."""
    run = uuid.uuid4().hex[:6]
    counter = iter(range(10**9))
    warmup_end = time.monotonic() + 2.0
    end = warmup_end + seconds
    done = 0
    latencies: list[float] = []

    async def caller() -> None:
        nonlocal done
        while True:
            started = time.monotonic()
            if started >= end:
                return
            n = next(counter)
            await stub.ApplyOrder(inventory_pb2.ApplyOrderRequest(
                store_hash=STORE, order_id=f"{run}-{n}", order_email="bench@example.com",
                lines=[inventory_pb2.OrderLine(line_id="1", product_id=pick(), quantity=1)]), timeout=30)
            finished = time.monotonic()
            if started >= warmup_end and finished <= end:
                done += 1
                latencies.append(finished - started)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return done / seconds, latencies


def pgbench(url: str, *, products: int, hot: bool, seconds: int, concurrency: int) -> float:
    """tps of the conditional UPDATE an order line amounts to, on the same rows."""
    script = Path(tempfile.mkdtemp(prefix="bench-inv-")) / "line.sql"
    script.write_text(
        ("\\set pid 1\n" if hot else f"\\set pid random(1, {products})\n")
        + "UPDATE assigned_products SET stock = stock - 1, version = version + 1, updated_at = now() "
          f"WHERE store_hash = '{STORE}' AND product_id = :pid AND variant_id IS NULL AND location_id IS NULL "
          "AND (threshold IS NULL OR stock + threshold >= 1) RETURNING stock;\n"
    )
    parsed = make_url(url)
    output = subprocess.run(
        ["pgbench", "-n", "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432), "-U",
         parsed.username or "postgres", "-c", str(concurrency), "-j", "2", "-T", str(seconds), "-f", str(script),
         parsed.database],
        check=True, capture_output=True, text=True,
    ).stdout
    shutil.rmtree(script.parent, ignore_errors=True)
    match = re.search(r"tps = ([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def pgbench_database(admin_url: str, products: int) -> str:
    url = create_database(admin_url)
    migrations.upgrade("inventory", url)
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO assigned_products (store_hash, product_id, name, sku, stock, threshold, assigned_at, updated_at) "
            f"SELECT '{STORE}', n, 'Product ' || n, 'SKU-' || n, {STOCK}, {THRESHOLD}, now(), now() "
            f"FROM generate_series(1, {products}) AS n"))
    engine.dispose()
    return url


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(name: str, rate: float, latencies: list[float]) -> str:
    if not latencies:
        return f"{name}: no calls completed"
    p50 = statistics.median(latencies) * 1000
    p99 = sorted(latencies)[int(0.99 * (len(latencies) - 1))] * 1000
    return f"{name}: {rate:,.0f} lines/s (p50 {p50:.1f} ms, p99 {p99:.1f} ms, {len(latencies)} calls)"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64, help="gRPC calls in flight")
    parser.add_argument("--pgbench-clients", type=int, default=16)
    parser.add_argument("--hot-only", action="store_true",
                        help="only the hot-product gRPC run, no pgbench (e.g. to profile the service's pid, printed)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--nats-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve(args.database_url, args.nats_url)
        return

    nats_server = NatsServer()
    nats_server.start()
    service_url = create_database(args.admin_url)
    bench_url = ""
    child = subprocess.Popen(  # noqa: ASYNC220 - started before any load; nothing else runs on the loop yet
        [sys.executable, __file__, "--serve", "--database-url", service_url, "--nats-url", nats_server.url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "BACKORDER_LOG_LEVEL": "WARNING"},
    )
    try:
        port = int(child.stdout.readline())
        async with insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = inventory_pb2_grpc.InventoryServiceStub(channel)
            await seed(stub, args.products)
            if args.hot_only:
                print(f"service pid {child.pid}", flush=True)
            else:
                cpu_before = cpu_seconds(child.pid)
                spread, spread_latencies = await drive(
                    stub, seconds=args.seconds, concurrency=args.concurrency,
                    pick=lambda: random.randint(1, args.products))
                cpu_spread = (cpu_seconds(child.pid) - cpu_before) / max(len(spread_latencies), 1)
            cpu_before = cpu_seconds(child.pid)
            hot, hot_latencies = await drive(stub, seconds=args.seconds, concurrency=args.concurrency,
                                             pick=lambda: 1)
            cpu_hot = (cpu_seconds(child.pid) - cpu_before) / max(len(hot_latencies), 1)
        child.stdin.close()
        child.wait(timeout=60)
        if args.hot_only:
            print(summary("gRPC ApplyOrder, one hot product", hot, hot_latencies))
            print(f"service CPU per line (incl. warm-up, relay): hot {cpu_hot * 1000:.2f} ms")
            return
        bench_url = pgbench_database(args.admin_url, args.products)
        pg_spread = pgbench(bench_url, products=args.products, hot=False, seconds=args.seconds,
                            concurrency=args.pgbench_clients)
        pg_hot = pgbench(bench_url, products=args.products, hot=True, seconds=args.seconds,
                         concurrency=args.pgbench_clients)
    finally:
        if child.poll() is None:
            child.kill()
        nats_server.stop()
        drop_database(args.admin_url, service_url)
        if bench_url:
            drop_database(args.admin_url, bench_url)
    print(summary(f"gRPC ApplyOrder, spread over {args.products} products", spread, spread_latencies))
    print(f"pgbench conditional UPDATE, spread: {pg_spread:,.0f} tps")
    print(summary("gRPC ApplyOrder, one hot product", hot, hot_latencies))
    print(f"pgbench conditional UPDATE, hot: {pg_hot:,.0f} tps")
    print(f"service CPU per line (incl. warm-up, relay): spread {cpu_spread * 1000:.2f} ms, hot {cpu_hot * 1000:.2f} ms")
    print(f"ratio hot gRPC / pgbench: {hot / pg_hot:.2f}; spread gRPC / pgbench: {spread / pg_spread:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
