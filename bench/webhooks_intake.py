"""Webhooks accepted per second at the gateway, each answered 200 only after JetStream's ack.

Runs a nats-server from the wheel (file storage, `sync_interval: always` as in the embedded
mode) and the gateway (`backorder serve gateway`, its own process) on loopback. The
installed-store check goes to a minimal CatalogService in this process (the gateway caches
its answer per store for a few seconds, so it is off the hot path either way). The client
POSTs `--requests` distinct store/order/created deliveries for `--stores` stores with the
right X-Backorder-Hook-Token, `--concurrency` in flight, and counts the 200s.

The same client then POSTs the same bodies to a bare Starlette endpoint (uvicorn, its own
process, answering 200 without reading anything) in the same run: on a shared or busy
machine the ratio is the meaningful figure.

    PYTHONPATH=. .venv/bin/python bench/webhooks_intake.py --requests 20000 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import socket
import subprocess
import sys
import time
import uuid

import aiohttp
import grpc
import httpx
from backorder.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from services.common import bigcommerce_webhooks as domain
from tests.plugins.services import NatsServer

WEBHOOK_KEY = "bench-webhook-secret-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class InstalledCatalog(catalog_pb2_grpc.CatalogServiceServicer):
    """Every store is installed; the token is checked as catalog_sync checks it."""

    async def VerifyWebhookToken(self, request, context):  # noqa: N802 - gRPC method name
        return catalog_pb2.VerifyWebhookTokenResponse(
            valid=domain.webhook_token_matches(WEBHOOK_KEY, request.store_hash, request.token), installed=True)


async def wait_http(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as http:
        while True:
            try:
                if (await http.get(url)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up")
            await asyncio.sleep(0.1)


BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
import uvicorn, sys
async def ok(request):
    await request.body()
    return Response(status_code=200)
uvicorn.run(Starlette(routes=[Route("/webhooks/bigcommerce", ok, methods=["POST"])]), host="127.0.0.1",
            port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


async def blast(url: str, bodies: list[tuple[str, bytes]], tokens: dict[str, str], concurrency: int
                ) -> tuple[float, collections.Counter[int], list[float]]:
    statuses: collections.Counter[int] = collections.Counter()
    latencies: list[float] = []
    # aiohttp, not httpx: httpcore's pool cost the load generator ~1 ms of CPU per request at
    # 64 in flight, which capped even a bare endpoint near 120 requests/s on 2 cores.
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        # Warm-up: connections, the gateway's installed-store cache, the stream.
        for store, token in tokens.items():
            async with http.post(url, data=bodies[0][1].replace(bodies[0][0].encode(), store.encode()),
                                 headers={domain.HOOK_TOKEN_HEADER: token}) as response:
                await response.read()
        queue = collections.deque(bodies)

        async def sender() -> None:
            while queue:
                store, body = queue.popleft()
                started = time.perf_counter()
                try:
                    async with http.post(url, data=body, headers={
                            domain.HOOK_TOKEN_HEADER: tokens[store], "Content-Type": "application/json"}) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError:
                    # A keep-alive connection closed under us: resend, as BigCommerce would.
                    statuses[0] += 1
                    queue.append((store, body))
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return elapsed, statuses, latencies


async def run(args: argparse.Namespace) -> None:
    nats_server = NatsServer()
    nats_server.start()
    server = grpc.aio.server()
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(InstalledCatalog(), server)
    catalog_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    gateway_port = free_port()
    environ = {**os.environ, "BACKORDER_GATEWAY_PORT": str(gateway_port), "BACKORDER_NATS_URL": nats_server.url,
               "BACKORDER_WEBHOOK_SECRET_KEY": WEBHOOK_KEY, "BACKORDER_LOG_LEVEL": "WARNING",
               "BACKORDER_CATALOG_SYNC_GRPC_ADDR": f"127.0.0.1:{catalog_port}",
               **{f"BACKORDER_{peer}_GRPC_ADDR": f"127.0.0.1:{free_port()}"
                  for peer in ("INVENTORY", "STOREFRONT", "BILLING")}}
    gateway = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "gateway"], env=environ,  # noqa: ASYNC220
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{gateway_port}/webhooks/bigcommerce"
    try:
        await wait_http(f"http://127.0.0.1:{gateway_port}/metrics")
        stores = [f"b{uuid.uuid4().hex[:7]}" for _ in range(args.stores)]
        tokens = {store: domain.webhook_secret(WEBHOOK_KEY, store) for store in stores}
        now = int(time.time())
        bodies = []
        for i in range(args.requests):
            store = stores[i % len(stores)]
            bodies.append((store, json.dumps({
                "scope": "store/order/created", "store_id": "1", "data": {"type": "order", "id": i + 1},
                "hash": uuid.uuid4().hex + "0" * 8, "created_at": now, "producer": f"stores/{store}"}).encode()))
        elapsed, statuses, latencies = await blast(url, bodies, tokens, args.concurrency)
        accepted = statuses.get(200, 0)
        print(f"{args.requests} deliveries, {args.stores} stores, concurrency {args.concurrency}: "
              f"{elapsed:.2f}s, statuses {dict(statuses)}")
        print(f"accepted with publish ack (status 0 = connection error, resent): {accepted / elapsed:,.0f} webhooks/s; "
              f"latency p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
              f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms")
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)],  # noqa: ASYNC220
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await wait_http(f"http://127.0.0.1:{bare_port}/")
            bare_elapsed, _, _ = await blast(f"http://127.0.0.1:{bare_port}/webhooks/bigcommerce", bodies, tokens,
                                             args.concurrency)
        finally:
            bare.terminate()
            bare.wait(timeout=20)
        print(f"bare Starlette endpoint, same client and bodies: {args.requests / bare_elapsed:,.0f} requests/s "
              f"-> intake = {bare_elapsed / elapsed:.2f}x bare")
    finally:
        gateway.terminate()
        gateway.wait(timeout=20)
        await server.stop(0)
        nats_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
