"""GetEntitlement latency through gRPC (the call inventory makes on every assign).

Starts the billing service in a child process on a real socket (its own nats-server from the
wheel), so the client's CPU does not count against the server; starts `--stores` subscriptions, upgrades a third of them, then measures:
- sequential calls: p50 / p95 / p99 latency of one call at a time;
- concurrent calls: throughput with `--concurrency` callers in flight.

    PYTHONPATH=. .venv/bin/python bench/billing_entitlement.py --database-url sqlite:////tmp/bench-billing.db
    PYTHONPATH=. .venv/bin/python bench/billing_entitlement.py \
        --database-url postgresql://postgres@127.0.0.1:5432/bench_billing
(the PostgreSQL database must exist and be empty; the SQLite file is created.)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import time
import uuid

from backorder.billing.v1 import billing_pb2, billing_pb2_grpc

from services.billing import server
from services.common.grpc_server import insecure_channel
from services.common.runtime import ServiceRunner
from tests.plugins.services import NatsServer, service_settings


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def serve(database_url: str, nats_url: str) -> None:
    """Child mode: run the service, print its port, stop when the parent closes stdin."""
    runner = ServiceRunner(service_settings("billing", database_url, nats_url), server.setup)
    await runner.start()
    print(runner.port, flush=True)
    await asyncio.to_thread(sys.stdin.read)
    await runner.stop()


async def measure(port: int, stores_count: int, calls: int, concurrency: int) -> tuple[list[float], float]:
    """Seed the stores, then time sequential and concurrent GetEntitlement calls."""
    async with insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = billing_pb2_grpc.BillingServiceStub(channel)
        stores = [f"b{uuid.uuid4().hex[:10]}" for _ in range(stores_count)]
        for n, store in enumerate(stores):
            await stub.StartSubscription(billing_pb2.StartSubscriptionRequest(store_hash=store), timeout=10)
            if n % 3 == 0:
                await stub.ChangePlan(billing_pb2.ChangePlanRequest(store_hash=store, plan="growth"), timeout=10)

        async def call() -> float:
            started = time.perf_counter()
            await stub.GetEntitlement(billing_pb2.GetEntitlementRequest(store_hash=random.choice(stores)), timeout=5)
            return time.perf_counter() - started

        for _ in range(200):  # warm-up
            await call()
        sequential = [await call() for _ in range(calls)]

        async def worker(count: int) -> None:
            for _ in range(count):
                await call()

        per_worker = calls // concurrency
        started = time.perf_counter()
        await asyncio.gather(*(worker(per_worker) for _ in range(concurrency)))
        return sequential, per_worker * concurrency / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--stores", type=int, default=500)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--nats-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        asyncio.run(serve(args.database_url, args.nats_url))
        return
    nats_server = NatsServer()
    nats_server.start()
    child = subprocess.Popen([sys.executable, __file__, "--serve", "--database-url", args.database_url,
                              "--nats-url", nats_server.url], stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    assert child.stdout is not None and child.stdin is not None
    try:
        port = int(child.stdout.readline())
        sequential, rate = asyncio.run(measure(port, args.stores, args.calls, args.concurrency))
    finally:
        child.stdin.close()
        child.wait(timeout=30)
        nats_server.stop()
    ms = [s * 1000 for s in sequential]
    print(f"database: {args.database_url.split(':')[0]}  stores: {args.stores}  calls: {args.calls}")
    print(f"sequential: p50 {percentile(ms, 0.5):.2f} ms  p95 {percentile(ms, 0.95):.2f} ms  "
          f"p99 {percentile(ms, 0.99):.2f} ms  mean {statistics.mean(ms):.2f} ms")
    print(f"concurrent ({args.concurrency} in flight): {rate:.0f} calls/s")


if __name__ == "__main__":
    main()
