"""CatalogService: proto <-> use cases (domain errors are mapped by the shared interceptor)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
from backorder.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from services.catalog_sync import domain
from services.catalog_sync.handlers import CatalogSync
from services.catalog_sync.peers import timestamp
from services.common.clock import as_utc
from services.common.stores import is_store_hash

AVAILABILITY_TO_PROTO = {
    "available": catalog_pb2.AVAILABILITY_AVAILABLE,
    "disabled": catalog_pb2.AVAILABILITY_DISABLED,
    "preorder": catalog_pb2.AVAILABILITY_PREORDER,
}
AVAILABILITY_FROM_PROTO = {value: key for key, value in AVAILABILITY_TO_PROTO.items()}
VISIBILITY_FROM_PROTO = {catalog_pb2.VISIBILITY_VISIBLE: True, catalog_pb2.VISIBILITY_HIDDEN: False}
ASSIGNED_FROM_PROTO = {catalog_pb2.ASSIGNED_FILTER_ASSIGNED: True, catalog_pb2.ASSIGNED_FILTER_UNASSIGNED: False}
MAX_LIMIT = 250


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def add_product(products: RepeatedCompositeFieldContainer[catalog_pb2.Product], row: Any) -> catalog_pb2.Product:
    """Append a mirror row's view to a repeated Product field, built in place (a message
    built apart is copied when put in the reply: a fifth of GetProducts' cost per product)."""
    message = products.add(
        product_id=row.product_id, name=row.name, sku=row.sku, is_visible=bool(row.is_visible),
        availability=AVAILABILITY_TO_PROTO.get(row.availability, catalog_pb2.AVAILABILITY_UNSPECIFIED),
        current_stock=int(row.inventory_level), inventory_tracking=row.inventory_tracking,
        assigned=bool(row.assigned), category_ids=domain.category_list(row.category_ids), brand_id=int(row.brand_id))
    if row.date_modified is not None:
        # What Timestamp.FromDatetime computes, without its time tuple (half a product's cost).
        since_epoch = as_utc(row.date_modified) - EPOCH
        message.date_modified.seconds = since_epoch.days * 86400 + since_epoch.seconds
        message.date_modified.nanos = since_epoch.microseconds * 1000
    return message


def store_message(row: Any, product_count: int = 0) -> catalog_pb2.Store:
    message = catalog_pb2.Store(
        store_hash=row.store_hash, installed=bool(row.installed), timezone=row.timezone, name=row.name,
        domain=row.domain, owner_email=row.owner_email, product_count=product_count)
    for field in ("installed_at", "uninstalled_at", "last_pull_at"):
        value = getattr(row, field)
        if value is not None:
            getattr(message, field).CopyFrom(timestamp(value))
    return message


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, app: CatalogSync) -> None:
        self.app = app

    async def Install(self, request: catalog_pb2.InstallRequest, context: grpc.aio.ServicerContext[Any, Any]
                      ) -> catalog_pb2.InstallResponse:
        result = await self.app.install(request.code, request.scope, request.context, request.account_uuid)
        row, count = await self.app.store_view(result["store_hash"])
        return catalog_pb2.InstallResponse(store=store_message(row, count), created=result["created"],
                                           webhooks_registered=result["webhooks"], products_pulled=count)

    async def Uninstall(self, request: catalog_pb2.UninstallRequest, context: grpc.aio.ServicerContext[Any, Any]
                        ) -> catalog_pb2.UninstallResponse:
        purge_after = await self.app.uninstall(request.store_hash)
        row, count = await self.app.store_view(request.store_hash)
        return catalog_pb2.UninstallResponse(store=store_message(row, count), purge_after=timestamp(purge_after))

    async def GetStore(self, request: catalog_pb2.GetStoreRequest, context: grpc.aio.ServicerContext[Any, Any]
                       ) -> catalog_pb2.GetStoreResponse:
        domain.check_store_hash(request.store_hash)
        row, count = await self.app.store_view(request.store_hash)
        return catalog_pb2.GetStoreResponse(store=store_message(row, count))

    async def VerifyWebhookToken(self, request: catalog_pb2.VerifyWebhookTokenRequest,
                                 context: grpc.aio.ServicerContext[Any, Any]) -> catalog_pb2.VerifyWebhookTokenResponse:
        valid = domain.webhook_token_matches(self.app.settings.webhook_secret_key.reveal(), request.store_hash,
                                             request.token)
        installed = is_store_hash(request.store_hash) and await self.app.is_installed(request.store_hash)
        return catalog_pb2.VerifyWebhookTokenResponse(valid=valid, installed=installed)

    async def ListProducts(self, request: catalog_pb2.ListProductsRequest, context: grpc.aio.ServicerContext[Any, Any]
                           ) -> catalog_pb2.ListProductsResponse:
        domain.check_store_hash(request.store_hash)
        page = max(1, request.page or 1)
        limit = min(MAX_LIMIT, max(1, request.limit or 50))
        rows, total = await self.app.list_products(
            request.store_hash, q=request.q.strip(), is_visible=VISIBILITY_FROM_PROTO.get(request.visibility),
            availability=AVAILABILITY_FROM_PROTO.get(request.availability),
            assigned=ASSIGNED_FROM_PROTO.get(request.assigned), page=page, limit=limit)
        reply = catalog_pb2.ListProductsResponse(total=total, page=page, limit=limit)
        for row in rows:
            add_product(reply.products, row)
        return reply

    async def GetProducts(self, request: catalog_pb2.GetProductsRequest, context: grpc.aio.ServicerContext[Any, Any]
                          ) -> catalog_pb2.GetProductsResponse:
        domain.check_store_hash(request.store_hash)
        found = await self.app.get_products(request.store_hash, list(request.product_ids))
        reply = catalog_pb2.GetProductsResponse()
        for product_id in dict.fromkeys(request.product_ids):
            row = found.get(product_id)
            if row is None:
                reply.missing_ids.append(product_id)
            else:
                add_product(reply.products, row)
        return reply

    async def PullCatalog(self, request: catalog_pb2.PullCatalogRequest, context: grpc.aio.ServicerContext[Any, Any]
                          ) -> catalog_pb2.PullCatalogResponse:
        domain.check_store_hash(request.store_hash)
        pulled, removed = await self.app.pull_catalog(request.store_hash)
        return catalog_pb2.PullCatalogResponse(products=pulled, removed=removed)

    async def SyncInventory(self, request: catalog_pb2.SyncInventoryRequest, context: grpc.aio.ServicerContext[Any, Any]
                            ) -> catalog_pb2.SyncInventoryResponse:
        domain.check_store_hash(request.store_hash)
        items = await self.app.sync_inventory(request.store_hash, list(request.product_ids))
        return catalog_pb2.SyncInventoryResponse(items=[catalog_pb2.SyncItem(**item) for item in items],
                                                 changed=sum(1 for item in items if item["changed"]))
