"""CSV import through gRPC (InventoryService.ImportProducts) on PostgreSQL: 100,000 rows
validated and applied in one call, in assign mode and then in update mode.

The gateway parses the CSV and sends the rows; this measures the service's part (the
gRPC call, validation against the store and plan, and the set-based apply with its
ledger rows and outbox events). The service runs in a child process as in
bench/inventory_orders.py. Before each step the bench waits until the service's outbox relay
has published the previous step's 100,000 events (they share the service's CPU), and it
prints the service's CPU seconds per step (from /proc).

    PYTHONPATH=. .venv/bin/python bench/inventory_import.py \
        --admin-url postgresql://postgres@127.0.0.1:5432/postgres --rows 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

from backorder.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.common.grpc_server import insecure_channel
from tests.plugins.services import NatsServer

sys.path.insert(0, os.path.dirname(__file__))
from inventory_orders import STORE, create_database, drop_database, serve  # noqa: E402


def service_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def outbox_drained(url: str, timeout_s: float = 300.0) -> float:
    """Wait until no outbox row is unpublished (polled, bounded); returns seconds waited."""
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout_s:
            with engine.connect() as conn:
                if not conn.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NULL")).scalar_one():
                    break
            await asyncio.sleep(0.2)
    finally:
        engine.dispose()
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--nats-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve(args.database_url, args.nats_url)
        return
    nats_server = NatsServer()
    nats_server.start()
    url = create_database(args.admin_url)
    child = subprocess.Popen(  # noqa: ASYNC220 - started before any load; nothing else runs on the loop yet
        [sys.executable, __file__, "--serve", "--database-url", url, "--nats-url", nats_server.url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "BACKORDER_LOG_LEVEL": "WARNING"},
    )
    try:
        port = int(child.stdout.readline())
        async with insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = inventory_pb2_grpc.InventoryServiceStub(channel)
            assign_rows = [inventory_pb2.ImportRow(
                row=n + 1, product_id=str(n), current_stock=str(n % 50), backorder_threshold="" if n % 3 else "10",
                incoming_stock="5" if n % 7 == 0 else "", back_in_stock_date="2030-01-15" if n % 7 == 0 else "",
                name=f"Product {n}", sku=f"SKU-{n}") for n in range(1, args.rows + 1)]
            cpu = service_cpu_s(child.pid)
            started = time.perf_counter()
            reply = await stub.ImportProducts(inventory_pb2.ImportProductsRequest(
                store_hash=STORE, mode=inventory_pb2.IMPORT_MODE_ASSIGN, rows=assign_rows, import_id="bench-a"),
                timeout=300)
            assign_s = time.perf_counter() - started
            assign_cpu = service_cpu_s(child.pid) - cpu
            assert not reply.errors and reply.applied == args.rows, (reply.applied, reply.errors[:3])
            update_rows = [inventory_pb2.ImportRow(row=n + 1, product_id=str(n), current_stock=str(n % 40),
                                                   backorder_threshold="7") for n in range(1, args.rows + 1)]
            drained = [await outbox_drained(url)]
            cpu = service_cpu_s(child.pid)
            started = time.perf_counter()
            reply = await stub.ImportProducts(inventory_pb2.ImportProductsRequest(
                store_hash=STORE, mode=inventory_pb2.IMPORT_MODE_UPDATE, rows=update_rows, import_id="bench-u",
                overwrite=["stock", "threshold"]), timeout=300)
            update_s = time.perf_counter() - started
            update_cpu = service_cpu_s(child.pid) - cpu
            assert not reply.errors and reply.applied == args.rows, (reply.applied, reply.errors[:3])
            bad_rows = list(update_rows)
            bad_rows[args.rows // 2] = inventory_pb2.ImportRow(row=args.rows // 2 + 1, product_id="x")
            drained.append(await outbox_drained(url))
            cpu = service_cpu_s(child.pid)
            started = time.perf_counter()
            reply = await stub.ImportProducts(inventory_pb2.ImportProductsRequest(
                store_hash=STORE, mode=inventory_pb2.IMPORT_MODE_UPDATE, rows=bad_rows), timeout=300)
            reject_s = time.perf_counter() - started
            reject_cpu = service_cpu_s(child.pid) - cpu
            assert reply.errors and reply.applied == 0
        child.stdin.close()
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        nats_server.stop()
        drop_database(args.admin_url, url)
    print(f"import assign {args.rows:,} rows: {assign_s:.2f} s (service CPU {assign_cpu:.2f} s)")
    print(f"import update {args.rows:,} rows: {update_s:.2f} s (service CPU {update_cpu:.2f} s; "
          f"after {drained[0]:.1f} s waiting for the relay to publish the assign's events)")
    print(f"import update {args.rows:,} rows with one bad row (rejected, nothing applied): {reject_s:.2f} s "
          f"(service CPU {reject_cpu:.2f} s; after {drained[1]:.1f} s waiting for the relay)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
