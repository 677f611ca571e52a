"""The catalog mirror: the full pull from BigCommerce, its reads, and the stock sync of
assigned products from BigCommerce's levels."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from backorder.inventory.v1 import inventory_pb2

from services.catalog_sync import domain, repository
from services.catalog_sync.store_access import UseCase
from services.common.clock import utcnow

PULL_CONCURRENCY = 4  # product pages a pull fetches at once

log = logging.getLogger(__name__)


class Catalog(UseCase):
    """The mirror's pull, reads and stock sync."""

    async def pull_catalog(self, store_hash: str) -> tuple[int, int]:
        """Full pull into the mirror, pages fetched concurrently, each page in its own short
        transaction; rows the pull did not see are removed at the end. Returns (pulled, removed)."""
        api = await self.stores.api(store_hash)
        marker = str(uuid.uuid4())
        started = utcnow()
        pulled = 0

        async def save(rows: list[dict[str, Any]]) -> None:
            nonlocal pulled
            fields = [domain.mirror_fields(row) for row in rows]
            async with self.db.unit_of_work() as uow:
                await repository.upsert_products(uow.conn, self.db.dialect, store_hash, fields, marker=marker)
                await uow.commit()
            pulled += len(fields)

        first, pages = await api.products_page(1)
        await save(first)
        slots = asyncio.Semaphore(PULL_CONCURRENCY)

        async def fetch(page: int) -> None:
            async with slots:
                rows, _ = await api.products_page(page)
            await save(rows)

        await asyncio.gather(*(fetch(page) for page in range(2, pages + 1)))
        async with self.db.unit_of_work() as uow:
            removed = await repository.remove_unseen(uow.conn, store_hash, marker, started)
            await repository.update_store(uow.conn, store_hash, last_pull_at=utcnow())
            await uow.commit()
        log.info("store %s: pulled %d products (%d removed)", store_hash, pulled, removed)
        return pulled, removed

    async def list_products(self, store_hash: str, **filters: Any) -> tuple[list[Any], int]:
        async with self.db.read() as conn:
            return await repository.list_products(conn, store_hash, **filters)

    async def get_products(self, store_hash: str, product_ids: list[int]) -> dict[int, Any]:
        async with self.db.read() as conn:
            return await repository.get_products(conn, store_hash, product_ids)

    async def sync_inventory(self, store_hash: str, product_ids: list[int]) -> list[dict[str, Any]]:
        """Replace inventory's stock with BigCommerce's level where they differ (one ledger
        entry each, keyed by this run so a retried call of the same run applies once)."""
        api = await self.stores.api(store_hash)
        assigned: dict[int, int] = {}
        page = 1
        while True:
            reply = await self.peers.inventory.ListProducts(inventory_pb2.ListProductsRequest(
                store_hash=store_hash, product_ids=product_ids, page=page, limit=250))
            assigned.update({p.product_id: p.stock for p in reply.products})
            if page * 250 >= reply.total or not reply.products:
                break
            page += 1
        ids = sorted(assigned)
        levels: dict[int, int] = {}
        for start in range(0, len(ids), 250):
            chunk = ids[start:start + 250]
            rows, _ = await api.products_page(1, 250, **{"id:in": ",".join(str(i) for i in chunk)})
            levels.update({int(r["id"]): int(r.get("inventory_level") or 0) for r in rows})
        run = uuid.uuid4().hex[:12]
        results = []
        for product_id in ids:
            if product_id not in levels:
                continue
            before, level = assigned[product_id], levels[product_id]
            changed = before != level
            if changed:
                await self.peers.inventory.SetStock(inventory_pb2.SetStockRequest(
                    store_hash=store_hash, product_id=product_id, stock=level,
                    source=inventory_pb2.STOCK_SOURCE_BIGCOMMERCE, actor="sync",
                    idempotency_key=f"sync:{run}:{product_id}"))
            results.append({"product_id": product_id, "bigcommerce_stock": level, "stock_before": before,
                            "changed": changed})
        return results
