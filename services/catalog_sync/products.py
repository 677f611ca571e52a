"""Product webhooks: a product created, changed or deleted in BigCommerce, and its stock
level changed there. The mirror follows BigCommerce; inventory follows an absolute stock
change of an assigned product, and a product deleted or tracked again by the merchant is
unassigned (unless the store keeps it assigned)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC
from typing import Any

import grpc
from backorder.inventory.v1 import inventory_pb2

from services.catalog_sync import domain, repository
from services.catalog_sync.bc_client import StoreApi
from services.catalog_sync.peers import rpc_code, transient
from services.catalog_sync.store_access import UseCase
from services.catalog_sync.tables import products

log = logging.getLogger(__name__)

ACTOR = "bigcommerce"


class ProductHooks(UseCase):
    """The product webhooks' reactions."""

    async def changed(self, hook: domain.Webhook) -> None:
        product_id = domain.resource_id(hook)
        # Two changes of one product within one second give byte-identical payloads (same
        # hash), so JetStream keeps only the first: look at the product only once that second
        # is over, so the fresh state includes every change the lost twin stood for.
        wait = domain.same_second_wait(hook.created_at, time.time())
        if wait > 0:
            await asyncio.sleep(wait)
        # Read the mirror before fetching the product: a tracking-off write-back confirmed
        # before this read is certainly reflected in the fresh state fetched after it.
        async with self.db.read() as conn:
            before = await repository.get_product(conn, hook.store_hash, product_id)
        api = await self.stores.api(hook.store_hash)
        fresh = await api.get_product(product_id)
        if fresh is None:
            return
        fields = domain.mirror_fields(fresh)
        if hook.scope == "store/product/updated" and before is not None and domain.tracking_switched_on(
                assigned=bool(before.assigned), tracking_off_at=before.tracking_off_at, assigned_at=before.assigned_at,
                fresh_tracking=fields["inventory_tracking"], hook_created=hook.created):
            fields = await self._tracking_switched_on(api, hook.store_hash, product_id, fields)
        async with self.db.unit_of_work() as uow:
            await repository.upsert_products(uow.conn, self.db.dialect, hook.store_hash, [fields], only_if_newer=True)
            await uow.commit()

    async def _tracking_switched_on(self, api: StoreApi, store_hash: str, product_id: int,
                                    fields: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = await self.peers.inventory.GetStoreSettings(
                inventory_pb2.GetStoreSettingsRequest(store_hash=store_hash))
        except grpc.RpcError as exc:
            raise transient(exc, "inventory.GetStoreSettings") from exc
        if reply.settings.keep_assigned_when_tracking_enabled:
            updated = await api.update_product(product_id, {"inventory_tracking": "none"})
            log.info("store %s product %s: tracking switched on, kept assigned (tracking off again)",
                     store_hash, product_id)
            return domain.mirror_fields(updated) if updated else fields
        await self._unassign(store_hash, product_id)
        log.info("store %s product %s: tracking switched on in BigCommerce, unassigned", store_hash, product_id)
        return fields

    async def _unassign(self, store_hash: str, product_id: int) -> None:
        try:
            await self.peers.inventory.UnassignProducts(inventory_pb2.UnassignProductsRequest(
                store_hash=store_hash, product_ids=[product_id], restore_tracking=False, disable_product=False,
                actor=ACTOR))
        except grpc.RpcError as exc:
            if rpc_code(exc) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                return  # not assigned (any more): nothing to undo
            raise transient(exc, "inventory.UnassignProducts") from exc

    async def deleted(self, hook: domain.Webhook) -> None:
        product_id = domain.resource_id(hook)
        await self._unassign(hook.store_hash, product_id)
        async with self.db.unit_of_work() as uow:
            await repository.delete_product(uow.conn, hook.store_hash, product_id)
            await uow.commit()

    async def inventory_updated(self, hook: domain.Webhook) -> None:
        update = domain.inventory_update(hook)
        if not update.absolute:
            # Orders move BigCommerce's level relatively; only absolute changes replace our stock.
            async with self.db.unit_of_work() as uow:
                await repository.update_product(uow.conn, hook.store_hash, update.product_id,
                                                inventory_level=products.c.inventory_level + update.value)
                await uow.commit()
            return
        try:
            reply = await self.peers.inventory.GetProduct(inventory_pb2.GetProductRequest(
                store_hash=hook.store_hash, product_id=update.product_id, ledger_limit=1))
            assigned_at = reply.product.assigned_at.ToDatetime(tzinfo=UTC) if reply.product.HasField(
                "assigned_at") else None
            assigned = True
        except grpc.RpcError as exc:
            if rpc_code(exc) not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                raise transient(exc, "inventory.GetProduct") from exc
            assigned, assigned_at = False, None
        if assigned and not domain.webhook_is_before_assignment(hook.created, assigned_at):
            try:
                await self.peers.inventory.SetStock(inventory_pb2.SetStockRequest(
                    store_hash=hook.store_hash, product_id=update.product_id, stock=update.value,
                    source=inventory_pb2.STOCK_SOURCE_BIGCOMMERCE, actor=ACTOR,
                    idempotency_key=f"bc:{hook.hash}"))
            except grpc.RpcError as exc:
                code = rpc_code(exc)
                if code not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
                                grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.INVALID_ARGUMENT):
                    raise transient(exc, "inventory.SetStock") from exc
                log.info("store %s product %s: stock webhook not applied (%s)", hook.store_hash,
                         update.product_id, code)
        async with self.db.unit_of_work() as uow:
            await repository.update_product(uow.conn, hook.store_hash, update.product_id,
                                            inventory_level=update.value)
            await uow.commit()

