"""Admin list pages with 10,000 assigned products (issue 6): p50/p95 latency per page.

The whole platform on PostgreSQL (bench/admin_stack.py); 10,000 products are assigned through
the import endpoint and 200 backorder report rows are written; then each list (JSON API and
server-rendered HTML) is requested `--requests` times, one at a time, as a merchant would.

Usage: .venv/bin/python bench/admin_lists.py --admin-url postgresql://postgres@127.0.0.1:5432/postgres
       [--assigned 10000] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time

from admin_stack import HEADER, admin_stack, summary
from backorder.inventory.v1 import inventory_pb2


async def run(admin_url: str, assigned: int, requests: int, settle_s: float) -> None:
    async with admin_stack(admin_url, assigned) as (stack, client, ids):
        ids = ids[:assigned]
        text = HEADER + "".join(f"{pid},{pid % 4},{pid % 6 or ''},0,\n" for pid in ids)
        job, seconds = await client.import_csv(text, mode="assign")
        assert job["status"] == "completed", job
        print(f"assigned {job['applied']} products through the import in {seconds:.2f} s; phases {job['timings']}",
              flush=True)
        now = dt.datetime.now(dt.UTC)
        for n, pid in enumerate(ids[:200]):
            request = inventory_pb2.ApplyOrderRequest(store_hash=client.store_hash, order_id=str(1000 + n),
                                                      order_email=f"buyer{n}@example.com", lines=[
                                                          inventory_pb2.OrderLine(line_id="1", product_id=pid,
                                                                                  quantity=5)])
            request.order_date.FromDatetime(now)
            await stack.inventory.ApplyOrder(request)
        # catalog_sync writes every assignment back to BigCommerce (and consumes the product
        # webhooks that follow) at ~20 events/s in this one-process harness: give it --settle
        # seconds, then measure whatever the state.
        print(f"waited {await client.settle(settle_s):.0f} s for the platform to settle", flush=True)
        sku = (await client.http.get("/api/v1/backorder-products", headers=client.headers(),
                                     params={"limit": 1})).json()["data"][0]["sku"]
        pages = {
            "API assigned, page 1 (50)": ("/api/v1/backorder-products", {"limit": "50"}),
            "API assigned, page 100": ("/api/v1/backorder-products", {"limit": "50", "page": "100"}),
            "API assigned, search": ("/api/v1/backorder-products", {"q": sku[-6:]}),
            "API assigned, status filter": ("/api/v1/backorder-products", {"status": "backorder"}),
            "API all products, assigned=true": ("/api/v1/products", {"assigned": "true"}),
            "API report, page 1": ("/api/v1/reports/backorders", {}),
            "HTML Assigned Products": ("/admin/backorder-products", {}),
            "HTML All Products": ("/admin/products", {}),
            "HTML Report": ("/admin/report", {}),
        }
        for label, (path, params) in pages.items():
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                response = await client.http.get(path, params=params, headers=client.headers())
                samples.append(time.perf_counter() - started)
                assert response.status_code == 200, (path, response.status_code, response.text[:200])
            print(f"{label}: {summary(samples)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--assigned", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--settle", type=float, default=900.0)
    args = parser.parse_args()
    asyncio.run(run(args.admin_url, args.assigned, args.requests, args.settle))


if __name__ == "__main__":
    main()
