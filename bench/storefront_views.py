"""Storefront product views through the gateway, beside a bare Starlette JSON endpoint.

What runs (all on this machine, loopback only):
- a nats-server from the wheel, the storefront service (`python -m services.storefront`,
  SQLite by default or `--database-url`), and two uvicorn servers with the same settings
  (one process each, uvloop + httptools, no access log, the gateway's production options):
  the real gateway (`create_app()`, every route module) and a bare Starlette app whose one
  route returns the same JSON body with `JSONResponse`;
- products are assigned by publishing inventory events, as the inventory service does.

Figures:
1. throughput with a warm cache: `wrk -t1 -c64 -d<seconds>s` on one product URL, bare and
   gateway alternately (`--rounds` each, best round reported), in the same run;
2. p99 latency at a constant 1,000 requests/s: our own open-loop generator (below) for
   `--rate-seconds` on both servers;
3. cold views: the first GET of each of `--cold` products (gateway cache miss -> gRPC ->
   database -> render), one at a time, then the same products warm;
4. freshness: time from publishing a stock.changed event to the gateway serving the new
   view (polled every millisecond).

The constant-rate generator schedules request i at t0 + i/rate and measures each latency
from that scheduled time to the last byte of the response (so a stalled server is charged
for the requests it delays: no coordinated omission). It keeps up to 256 keep-alive
HTTP/1.1 connections, opened ahead of the run; a request waits for a free connection if all
are busy, and that wait counts in its latency.

    PYTHONPATH=.:gen .venv/bin/python bench/storefront_views.py --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STORE = "bench01"
PRODUCT = 1
UVICORN_OPTIONS: dict[str, Any] = {
    "host": "127.0.0.1", "log_config": None, "access_log": False, "proxy_headers": True,
    "forwarded_allow_ips": "*", "loop": "uvloop", "http": "httptools", "timeout_graceful_shutdown": 2,
}


# ---------------------------------------------------------------- servers (child processes)

def bare_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    body = json.loads(os.environ["BENCH_BARE_BODY"])

    async def product(request: Request) -> JSONResponse:
        return JSONResponse(body)

    return Starlette(routes=[Route("/storefront/v1/stores/{store_hash}/products/{product_id}", product)])


def serve(kind: str, port: int) -> None:
    import uvicorn

    if kind == "bare":
        app = bare_app()
    else:
        from services.gateway.app import create_app

        app = create_app()
    uvicorn.run(app, port=port, **UVICORN_OPTIONS)


# ---------------------------------------------------------------- orchestration helpers

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(arguments: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *arguments], env=env, cwd=ROOT)


def wait_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing on port {port}")


async def publish(bus: Any, product_id: int, stock: int, version: int, event_type: str = "product.assigned") -> None:
    from backorder.events.v1 import inventory_events_pb2 as inv

    from services.common.bus import build_envelope, event_subject

    state = inv.InventoryProductState(product_id=product_id, assigned=True, stock=stock, threshold=10,
                                      salable_qty=stock + 10, version=version, back_in_stock_date="2026-12-24")
    payload = inv.ProductAssigned(product=state) if event_type == "product.assigned" else inv.StockChanged(
        product=state, ledger_id=version)
    envelope = build_envelope(STORE, "inventory", event_type, payload, occurred_at=datetime.now(UTC))
    await bus.publish(event_subject(STORE, "inventory", event_type), envelope.SerializeToString(), envelope.event_id)


async def all_applied(grpc_port: int, product_ids: list[int], timeout_s: float = 60) -> None:
    """Wait (asking the storefront service directly, not the gateway) until every product is assigned."""
    from backorder.storefront.v1 import storefront_pb2 as pb
    from backorder.storefront.v1 import storefront_pb2_grpc

    from services.common.grpc_server import insecure_channel

    deadline = time.monotonic() + timeout_s
    async with insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = storefront_pb2_grpc.StorefrontServiceStub(channel)
        while True:
            views = []
            for start in range(0, len(product_ids), 250):
                reply = await stub.GetProductViews(pb.GetProductViewsRequest(
                    store_hash=STORE, product_ids=product_ids[start:start + 250]), timeout=10)
                views.extend(reply.views)
            if all(view.assigned for view in views):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("products not applied by the storefront service")
            await asyncio.sleep(0.05)


# ---------------------------------------------------------------- HTTP clients

class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def get(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        match = re.search(rb"(?i)content-length:\s*(\d+)", head)
        if match and int(match.group(1)):
            await self.reader.readexactly(int(match.group(1)))
        return status


async def open_connections(port: int, count: int) -> list[Connection]:
    connections = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        connections.append(Connection(reader, writer))
    return connections


def request_bytes(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: https://shop.example\r\n\r\n".encode()


async def constant_rate(port: int, path: str, rate: float, seconds: float, connections: int = 256) -> dict[str, Any]:
    """Open-loop load at `rate` req/s; latency from each request's scheduled send time."""
    pool = await open_connections(port, connections)
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in pool:
        free.put_nowait(connection)
    request = request_bytes(port, path)
    latencies: list[float] = []
    errors = 0
    total = int(rate * seconds)
    tasks = []

    async def one(scheduled: float) -> None:
        nonlocal errors
        connection = await free.get()
        try:
            status = await connection.get(request)
            if status != 200:
                errors += 1
        finally:
            free.put_nowait(connection)
        latencies.append(time.perf_counter() - scheduled)

    gc.collect()
    gc.freeze()
    start = time.perf_counter() + 0.05
    for index in range(total):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    gc.unfreeze()
    for connection in pool:
        connection.writer.close()
    latencies.sort()
    return {
        "requests": total, "errors": errors, "achieved_rps": round(total / elapsed, 1),
        "p50_ms": round(latencies[int(0.50 * (total - 1))] * 1000, 2),
        "p99_ms": round(latencies[int(0.99 * (total - 1))] * 1000, 2),
        "p999_ms": round(latencies[int(0.999 * (total - 1))] * 1000, 2),
        "max_ms": round(latencies[-1] * 1000, 2),
    }


def wrk(url: str, seconds: int, connections: int) -> float:
    output = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", "Origin: https://shop.example",
                             url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if match is None or non2xx:
        raise RuntimeError(f"wrk failed or saw errors:\n{output}")
    return float(match.group(1))


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: round(ordered[int(q * (len(ordered) - 1))] * 1000, 2)  # noqa: E731
    return {"n": len(ordered), "p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99),
            "mean_ms": round(statistics.mean(ordered) * 1000, 2)}


# ---------------------------------------------------------------- main

async def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from services.common.bus import EventBus
    from tests.plugins.services import NatsServer

    nats = NatsServer()
    nats.start()
    folder = Path(tempfile.mkdtemp(prefix="bench-storefront-"))
    processes: list[subprocess.Popen[bytes]] = []
    grpc_port, gateway_port, bare_port = free_port(), free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}", "BACKORDER_NATS_URL": nats.url,
           "BACKORDER_LOG_LEVEL": "WARNING", "BACKORDER_METRICS_PORT": "0"}
    service_env = {**env, "BACKORDER_DATABASE_URL": args.database_url or f"sqlite:///{folder / 'storefront.db'}",
                   "BACKORDER_GRPC_PORT": str(grpc_port), "BACKORDER_DATA_DIR": str(folder)}
    bus = EventBus(nats.url, "bench")
    try:
        processes.append(spawn(["-m", "services.storefront"], service_env))
        wait_port(grpc_port)
        await bus.connect()
        await bus.ensure_streams()
        await publish(bus, PRODUCT, stock=3, version=1)
        gateway_env = {**env, "BACKORDER_STOREFRONT_GRPC_ADDR": f"127.0.0.1:{grpc_port}",
                       "BACKORDER_STOREFRONT_RATE_LIMIT": "0", "BACKORDER_GATEWAY_PORT": str(gateway_port)}
        processes.append(spawn([__file__, "--serve", "gateway", "--port", str(gateway_port)], gateway_env))
        wait_port(gateway_port)
        path = f"/storefront/v1/stores/{STORE}/products/{PRODUCT}"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while (response := await client.get(path)).status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"view never served: {response.status_code}")
                await asyncio.sleep(0.05)
            body = response.json()
            bare_env = {**env, "BENCH_BARE_BODY": json.dumps(body)}
            processes.append(spawn([__file__, "--serve", "bare", "--port", str(bare_port)], bare_env))
            wait_port(bare_port)

            # 1. throughput, warm cache, alternating
            rounds: dict[str, list[float]] = {"bare": [], "gateway": []}
            for _ in range(args.rounds):
                for kind, port in (("bare", bare_port), ("gateway", gateway_port)):
                    rounds[kind].append(wrk(f"http://127.0.0.1:{port}{path}", args.seconds, args.connections))
            best = {kind: max(values) for kind, values in rounds.items()}

            # 2. p99 at a constant rate
            constant = {kind: await constant_rate(port, path, args.rate, args.rate_seconds)
                        for kind, port in (("bare", bare_port), ("gateway", gateway_port))}

            # 3. cold views (cache misses), then the same products warm
            first_cold = 1000
            for product_id in range(first_cold, first_cold + args.cold):
                await publish(bus, product_id, stock=5, version=1)
            await all_applied(grpc_port, list(range(first_cold, first_cold + args.cold)))
            cold: list[float] = []
            warm: list[float] = []
            for product_id in range(first_cold, first_cold + args.cold):
                started = time.perf_counter()
                response = await client.get(f"/storefront/v1/stores/{STORE}/products/{product_id}")
                cold.append(time.perf_counter() - started)
                assert response.status_code == 200
            for product_id in range(first_cold, first_cold + args.cold):
                started = time.perf_counter()
                await client.get(f"/storefront/v1/stores/{STORE}/products/{product_id}")
                warm.append(time.perf_counter() - started)

            # 4. event -> fresh view through the gateway
            lags: list[float] = []
            for version in range(2, 2 + args.freshness):
                stock = 100 + version
                published = time.perf_counter()
                await publish(bus, PRODUCT, stock=stock, version=version, event_type="stock.changed")
                while True:
                    if (await client.get(path)).json()["stock"] == stock:
                        break
                    await asyncio.sleep(0.001)
                lags.append(time.perf_counter() - published)
    finally:
        await bus.close()
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        nats.stop()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(nats.store, ignore_errors=True)
    return {
        "database": "postgresql" if args.database_url else "sqlite",
        "wrk_rounds_rps": rounds,
        "best_rps": best,
        "gateway_over_bare": round(best["gateway"] / best["bare"], 3),
        "constant_rate": constant,
        "cold_view": percentiles(cold),
        "warm_view_same_client": percentiles(warm),
        "event_to_fresh_view": percentiles(lags),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", choices=["gateway", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--cold", type=int, default=300)
    parser.add_argument("--freshness", type=int, default=50)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL for the storefront service (default SQLite)")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    import uvloop

    print(json.dumps(uvloop.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
