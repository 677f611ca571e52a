"""Catalog pull benchmark (issue 3): products pulled from the BigCommerce sandbox through the client.

Starts `python -m sandbox.bigcommerce` in a subprocess on a free port with a fresh SQLite file,
generates the products with a sandbox control, then pulls them all with
`TypedClient.iter_products` (tests/plugins/bigcommerce_typed.py) twice:
  1. with the store's quota lifted (no rate limit) -> products/s;
  2. with BigCommerce's default quota, 150 requests per 30 s -> time against the quota's bound,
     i.e. (ceil(requests / 150) - 1) windows of 30 s.

Usage: .venv/bin/python bench/catalog_pull.py [--products 100000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.common.bigcommerce import close_shared_http_client  # noqa: E402
from tests.plugins.bigcommerce_typed import TypedClient  # noqa: E402

STORE = "bench01"
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sandbox(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "BACKORDER_SANDBOX_PORT": str(port), "BACKORDER_SANDBOX_DB": f"{directory}/sandbox.db",
           "BACKORDER_SANDBOX_SEED_DEMO": "0"}
    process = subprocess.Popen([sys.executable, "-m", "sandbox.bigcommerce"], env=env,
                               cwd=Path(__file__).resolve().parent.parent)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/_sandbox/health").status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("sandbox did not start")


async def pull(base: str, concurrency: int) -> tuple[int, float]:
    client = TypedClient(STORE, TOKEN, api_base_url=base)
    started = time.perf_counter()
    count = 0
    async for _ in client.iter_products(limit=250, concurrency=concurrency):
        count += 1
    elapsed = time.perf_counter() - started
    await close_shared_http_client()
    return count, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--skip-default-quota", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as directory:
        process, base = start_sandbox(directory)
        try:
            control = httpx.Client(base_url=f"{base}/_sandbox", timeout=300)
            control.post("/stores", json={"store_hash": STORE, "access_token": TOKEN}).raise_for_status()
            started = time.perf_counter()
            remaining = args.products
            while remaining:
                batch = min(remaining, 25_000)
                control.post(f"/stores/{STORE}/products/generate", json={"count": batch}).raise_for_status()
                remaining -= batch
            print(f"generated {args.products} products in {time.perf_counter() - started:.1f}s")

            control.put(f"/stores/{STORE}/rate-limit", json={"quota": None}).raise_for_status()
            control.delete(f"/stores/{STORE}/stats")
            # Each run gets its own event loop, hence a fresh process-wide limiter for the store.
            count, elapsed = asyncio.run(pull(base, args.concurrency))
            stats = control.get(f"/stores/{STORE}/stats").json()
            print(f"quota lifted: {count} products in {elapsed:.2f}s = {count / elapsed:,.0f} products/s "
                  f"({stats['requests_served']} requests, concurrency {args.concurrency})")

            if not args.skip_default_quota:
                control.put(f"/stores/{STORE}/rate-limit", json={"quota": 150, "window_ms": 30_000})
                control.delete(f"/stores/{STORE}/stats")
                count, elapsed = asyncio.run(pull(base, args.concurrency))
                stats = control.get(f"/stores/{STORE}/stats").json()
                requests = stats["requests_served"]
                bound = (math.ceil(requests / 150) - 1) * 30
                print(f"default quota 150/30s: {count} products in {elapsed:.2f}s; {requests} requests, "
                      f"{stats['requests_throttled']} answered 429, max {stats['max_used_in_window']} in a window; "
                      f"quota bound {bound}s, overhead {elapsed - bound:.2f}s")
        finally:
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
