"""gRPC servicers: proto <-> handler calls, nothing else. Domain errors are mapped to gRPC
status codes by services.common.grpc_server.ErrorMappingInterceptor (one table). The
partner ERP service and its token authentication are in erp.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

import grpc
from backorder.inventory.v1 import (
    inventory_pb2,
    inventory_pb2_grpc,
    report_pb2,
    report_pb2_grpc,
    token_pb2,
    token_pb2_grpc,
)
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from services.common import product_status
from services.common.clock import as_utc, utcnow
from services.common.errors import DomainError
from services.inventory import domain
from services.inventory.handlers import InventoryHandlers
from services.inventory.import_rules import ImportRowInput
from services.inventory.orders import OrderResult
from services.inventory.reports import local_time
from services.inventory.repository import ProductRow, StoreSettingsRow
from services.inventory.stock import StockItem, StockItemResult

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
MAX_ORDERS_PER_CALL = 500
STATUS_TO_PB = {
    product_status.IN_STOCK: inventory_pb2.PRODUCT_STATUS_IN_STOCK,
    product_status.LOW_STOCK: inventory_pb2.PRODUCT_STATUS_LOW_STOCK,
    product_status.BACKORDER: inventory_pb2.PRODUCT_STATUS_BACKORDER,
    product_status.SOLD_OUT: inventory_pb2.PRODUCT_STATUS_SOLD_OUT,
}
STATUS_FROM_PB = {v: k for k, v in STATUS_TO_PB.items()}
SOURCE_TO_PB = {
    "admin": inventory_pb2.STOCK_SOURCE_ADMIN,
    "import": inventory_pb2.STOCK_SOURCE_IMPORT,
    "bigcommerce": inventory_pb2.STOCK_SOURCE_BIGCOMMERCE,
    "erp": inventory_pb2.STOCK_SOURCE_ERP,
    "order": inventory_pb2.STOCK_SOURCE_ORDER,
    "receipt": inventory_pb2.STOCK_SOURCE_RECEIPT,
    "billing": inventory_pb2.STOCK_SOURCE_BILLING,
}
SOURCE_FROM_PB = {v: k for k, v in SOURCE_TO_PB.items()}
KIND_TO_PB = {
    "assign": inventory_pb2.LEDGER_KIND_ASSIGN,
    "set": inventory_pb2.LEDGER_KIND_SET,
    "adjust": inventory_pb2.LEDGER_KIND_ADJUST,
    "order": inventory_pb2.LEDGER_KIND_ORDER,
    "return": inventory_pb2.LEDGER_KIND_RETURN,
    "receipt": inventory_pb2.LEDGER_KIND_RECEIPT,
    "edit": inventory_pb2.LEDGER_KIND_EDIT,
    "unassign": inventory_pb2.LEDGER_KIND_UNASSIGN,
}
def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    utc = as_utc(value)
    if utc is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(utc)
    return stamp


def product_pb(product: ProductRow, low_stock_level: int) -> inventory_pb2.Product:
    message = inventory_pb2.Product(
        store_hash=product.store_hash, product_id=product.product_id, name=product.name, sku=product.sku,
        stock=product.stock, incoming_stock=product.incoming_stock,
        back_in_stock_date=domain.format_date(product.back_in_stock_date),
        status=STATUS_TO_PB[product_status.product_status(product.stock, product.threshold, low_stock_level)],
        category_ids=domain.category_ids_from_key(product.category_key), brand_id=product.brand_id,
        assigned_at=timestamp(product.assigned_at), updated_at=timestamp(product.updated_at),
    )
    if product.threshold is not None:
        message.threshold = product.threshold
        message.salable_qty = product.stock + product.threshold
    return message


def ledger_pb(entry: Any) -> inventory_pb2.LedgerEntry:
    message = inventory_pb2.LedgerEntry(
        id=entry.id or 0, store_hash=entry.store_hash, product_id=entry.product_id,
        kind=KIND_TO_PB.get(entry.kind, inventory_pb2.LEDGER_KIND_UNSPECIFIED), delta=entry.delta,
        stock_before=entry.stock_before, stock_after=entry.stock_after,
        source=SOURCE_TO_PB.get(entry.source, inventory_pb2.STOCK_SOURCE_UNSPECIFIED), actor=entry.actor or "",
        idempotency_key=entry.idempotency_key, created_at=timestamp(entry.created_at),
        order_id=getattr(entry, "order_id", None) or "", line_id=getattr(entry, "line_id", None) or "",
        backordered_qty=getattr(entry, "backordered_qty", 0) or 0, note=getattr(entry, "note", "") or "",
    )
    if getattr(entry, "absolute", None) is not None:
        message.absolute = entry.absolute
    return message


def settings_pb(settings: StoreSettingsRow) -> inventory_pb2.StoreSettings:
    return inventory_pb2.StoreSettings(
        store_hash=settings.store_hash, low_stock_level=settings.low_stock_level,
        return_stock_on_cancel=settings.return_stock_on_cancel,
        keep_assigned_when_tracking_enabled=settings.keep_assigned_when_tracking_enabled,
        timezone=settings.timezone,
    )


def _source(value: inventory_pb2.StockSource.ValueType, default: str) -> str:
    return SOURCE_FROM_PB.get(value, default)


def _presence(message: Message, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(message, name) for name in names if message.HasField(name)}


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, handlers: InventoryHandlers) -> None:
        self.handlers = handlers

    async def _products_pb(self, store_hash: str, products: list[ProductRow]) -> list[inventory_pb2.Product]:
        """Products as a response carries them (status at the store's low-stock level)."""
        settings = await self.handlers.store_settings.get(store_hash)
        return [product_pb(p, settings.low_stock_level) for p in products]

    async def AssignProducts(self, request: inventory_pb2.AssignProductsRequest,
                             context: Context) -> inventory_pb2.AssignProductsResponse:
        items = []
        for item in request.items:
            items.append({
                "product_id": item.product_id, "name": item.name, "sku": item.sku, "stock": item.stock,
                "threshold": item.threshold if item.HasField("threshold") else None,
                "incoming_stock": item.incoming_stock, "back_in_stock_date": item.back_in_stock_date,
                "category_ids": list(item.category_ids), "brand_id": item.brand_id,
            })
        products = await self.handlers.assignment.assign(request.store_hash, items, actor=request.actor,
                                                         source=_source(request.source, "admin"))
        return inventory_pb2.AssignProductsResponse(products=await self._products_pb(request.store_hash, products))

    async def UpdateProducts(self, request: inventory_pb2.UpdateProductsRequest,
                             context: Context) -> inventory_pb2.UpdateProductsResponse:
        items = []
        for item in request.items:
            raw: dict[str, Any] = {"product_id": item.product_id}
            raw.update(_presence(item, ("stock", "threshold", "incoming_stock", "back_in_stock_date", "name", "sku",
                                        "brand_id")))
            if item.threshold_unlimited:
                raw["threshold_unlimited"] = True
            if item.set_category_ids:
                raw["category_ids"] = list(item.category_ids)
            items.append(raw)
        products = await self.handlers.assignment.update(request.store_hash, items, actor=request.actor,
                                                         source=_source(request.source, "admin"))
        return inventory_pb2.UpdateProductsResponse(products=await self._products_pb(request.store_hash, products))

    async def UnassignProducts(self, request: inventory_pb2.UnassignProductsRequest,
                               context: Context) -> inventory_pb2.UnassignProductsResponse:
        products = await self.handlers.assignment.unassign(
            request.store_hash, list(request.product_ids), restore_tracking=request.restore_tracking,
            disable_product=request.disable_product, actor=request.actor)
        return inventory_pb2.UnassignProductsResponse(products=await self._products_pb(request.store_hash, products))

    async def GetProduct(self, request: inventory_pb2.GetProductRequest,
                         context: Context) -> inventory_pb2.GetProductResponse:
        product, entries, settings = await self.handlers.assignment.get_product(
            request.store_hash, request.product_id, request.ledger_limit)
        return inventory_pb2.GetProductResponse(product=product_pb(product, settings.low_stock_level),
                                                recent_ledger=[ledger_pb(e) for e in entries])

    async def ListProducts(self, request: inventory_pb2.ListProductsRequest,
                           context: Context) -> inventory_pb2.ListProductsResponse:
        products, total, settings, page, limit = await self.handlers.assignment.list_products(
            request.store_hash, q=request.q, status=STATUS_FROM_PB.get(request.status), page=request.page,
            limit=request.limit, product_ids=list(request.product_ids))
        return inventory_pb2.ListProductsResponse(products=[product_pb(p, settings.low_stock_level) for p in products],
                                                  total=total, page=page, limit=limit)

    async def ApplyOrder(self, request: inventory_pb2.ApplyOrderRequest,
                         context: Context) -> inventory_pb2.ApplyOrderResponse:
        return _order_response(await self.handlers.orders.apply_order(_order_command(request)))

    async def ApplyOrders(self, request: inventory_pb2.ApplyOrdersRequest,
                          context: Context) -> inventory_pb2.ApplyOrdersResponse:
        """Each order on its own through the same group commit as ApplyOrder (they arrive
        together, so they share transactions); a DomainError fails only its order."""
        domain.check_count(len(request.orders), MAX_ORDERS_PER_CALL, "orders")

        async def one(order: inventory_pb2.ApplyOrderRequest) -> inventory_pb2.ApplyOrderOutcome:
            try:
                return inventory_pb2.ApplyOrderOutcome(
                    applied=_order_response(await self.handlers.orders.apply_order(_order_command(order))))
            except DomainError as exc:
                return inventory_pb2.ApplyOrderOutcome(error=inventory_pb2.OrderError(
                    grpc_code=exc.grpc_status.value[0], code=exc.code, message=exc.message,
                    details_json=json.dumps(exc.details, default=str)))

        return inventory_pb2.ApplyOrdersResponse(outcomes=await asyncio.gather(*(one(o) for o in request.orders)))

    async def ReturnOrderLines(self, request: inventory_pb2.ReturnOrderLinesRequest,
                               context: Context) -> inventory_pb2.ReturnOrderLinesResponse:
        result = await self.handlers.orders.return_order_lines(request.store_hash, request.order_id, request.reason,
                                                               list(request.line_ids))
        return inventory_pb2.ReturnOrderLinesResponse(order_id=result.order_id, returned=result.returned, lines=[
            inventory_pb2.ReturnedLine(line_id=r.line_id, product_id=r.product_id, quantity=r.quantity,
                                       stock_before=r.stock_before, stock_after=r.stock_after, replayed=r.replayed)
            for r in result.lines])

    async def _apply(self, request: inventory_pb2.SetStockRequest | inventory_pb2.AdjustStockRequest
                     | inventory_pb2.SetIncomingRequest, item: StockItem) -> StockItemResult:
        return await self.handlers.stock.apply_item(request.store_hash, item, source=_source(request.source, "admin"),
                                                    actor=request.actor)

    async def _stock_change(self, request: inventory_pb2.SetStockRequest | inventory_pb2.AdjustStockRequest,
                            item: StockItem) -> inventory_pb2.StockChange:
        result = await self._apply(request, item)
        change = inventory_pb2.StockChange(entry=ledger_pb(result.entry), replayed=result.status == "replayed")
        if result.product is not None:
            change.product.CopyFrom(product_pb(result.product, result.low_stock_level))
        return change

    async def SetStock(self, request: inventory_pb2.SetStockRequest,
                       context: Context) -> inventory_pb2.SetStockResponse:
        change = await self._stock_change(request, StockItem("set", request.product_id, request.stock,
                                                             request.idempotency_key))
        return inventory_pb2.SetStockResponse(change=change)

    async def AdjustStock(self, request: inventory_pb2.AdjustStockRequest,
                          context: Context) -> inventory_pb2.AdjustStockResponse:
        change = await self._stock_change(request, StockItem("adjust", request.product_id, request.delta,
                                                             request.idempotency_key))
        return inventory_pb2.AdjustStockResponse(change=change)

    async def SetIncoming(self, request: inventory_pb2.SetIncomingRequest,
                          context: Context) -> inventory_pb2.SetIncomingResponse:
        item = StockItem("incoming", request.product_id, request.incoming_stock, request.idempotency_key,
                         request.back_in_stock_date)
        result = await self._apply(request, item)
        response = inventory_pb2.SetIncomingResponse(replayed=result.status == "replayed")
        if result.product is not None:
            response.product.CopyFrom(product_pb(result.product, result.low_stock_level))
        return response

    async def ListLedger(self, request: inventory_pb2.ListLedgerRequest,
                         context: Context) -> inventory_pb2.ListLedgerResponse:
        entries, total = await self.handlers.stock.list_ledger(request.store_hash, request.product_id, request.page,
                                                               request.limit)
        return inventory_pb2.ListLedgerResponse(entries=[ledger_pb(e) for e in entries], total=total)

    async def ImportProducts(self, request: inventory_pb2.ImportProductsRequest,
                             context: Context) -> inventory_pb2.ImportProductsResponse:
        mode = {inventory_pb2.IMPORT_MODE_ASSIGN: "assign", inventory_pb2.IMPORT_MODE_UPDATE: "update"}.get(
            request.mode, "")
        # Positional: 100,000 rows per import (see ImportRowInput's field order).
        rows = [ImportRowInput(r.row, r.product_id, r.current_stock, r.backorder_threshold, r.incoming_stock,
                               r.back_in_stock_date, r.name, r.sku, tuple(r.category_ids), r.brand_id)
                for r in request.rows]
        outcome = await self.handlers.imports.apply(
            request.store_hash, mode=mode, overwrite=list(request.overwrite), rows=rows, dry_run=request.dry_run,
            actor=request.actor, import_id=request.import_id)
        return inventory_pb2.ImportProductsResponse(
            rows=outcome.rows, applied=outcome.applied, dry_run=outcome.dry_run,
            errors=[inventory_pb2.ImportError(**e) for e in outcome.errors])

    async def GetStoreSettings(self, request: inventory_pb2.GetStoreSettingsRequest,
                               context: Context) -> inventory_pb2.GetStoreSettingsResponse:
        return inventory_pb2.GetStoreSettingsResponse(settings=settings_pb(
            await self.handlers.store_settings.get(request.store_hash)))

    async def UpdateStoreSettings(self, request: inventory_pb2.UpdateStoreSettingsRequest,
                                  context: Context) -> inventory_pb2.UpdateStoreSettingsResponse:
        changes = _presence(request, ("low_stock_level", "return_stock_on_cancel",
                                      "keep_assigned_when_tracking_enabled", "timezone"))
        return inventory_pb2.UpdateStoreSettingsResponse(settings=settings_pb(
            await self.handlers.store_settings.update(request.store_hash, changes)))


def backorder_row_pb(row: Any, zone: ZoneInfo) -> report_pb2.BackorderRow:
    return report_pb2.BackorderRow(
        product_id=row.product_id, product_name=row.product_name, sku=row.sku, purchased_qty=row.purchased_qty,
        backordered_qty=row.backordered_qty, order_id=row.order_id, order_email=row.order_email,
        order_date=timestamp(row.order_date), order_date_local=local_time(row.order_date, zone).isoformat(),
        category_ids=domain.category_ids_from_key(row.category_key), brand_id=row.brand_id, line_id=row.line_id,
    )


def _filter_args(request: report_pb2.ListBackordersRequest | report_pb2.ExportBackordersRequest) -> dict[str, Any]:
    f = request.filter
    return {"q": f.q, "from_date": f.from_date, "to_date": f.to_date, "category_id": f.category_id,
            "brand_id": f.brand_id}


class ReportServicer(report_pb2_grpc.ReportServiceServicer):
    def __init__(self, handlers: InventoryHandlers) -> None:
        self.handlers = handlers

    async def ListBackorders(self, request: report_pb2.ListBackordersRequest,
                             context: Context) -> report_pb2.ListBackordersResponse:
        rows, total, zone, page, limit = await self.handlers.reports.list_rows(
            request.store_hash, page=request.page, limit=request.limit, **_filter_args(request))
        return report_pb2.ListBackordersResponse(rows=[backorder_row_pb(r, zone) for r in rows], total=total,
                                                 page=page, limit=limit)

    async def ExportBackorders(self, request: report_pb2.ExportBackordersRequest, context: Context
                               ) -> AsyncIterator[report_pb2.ExportBackordersResponse]:
        async for chunk in self.handlers.reports.export(request.store_hash, **_filter_args(request)):
            yield report_pb2.ExportBackordersResponse(chunk=chunk)


def token_pb(row: Any) -> token_pb2.ApiToken:
    return token_pb2.ApiToken(id=row.id, store_hash=row.store_hash, name=row.name, prefix=row.prefix,
                              created_at=timestamp(row.created_at), last_used_at=timestamp(row.last_used_at),
                              revoked_at=timestamp(row.revoked_at))


class TokenServicer(token_pb2_grpc.TokenServiceServicer):
    def __init__(self, handlers: InventoryHandlers) -> None:
        self.handlers = handlers

    async def CreateApiToken(self, request: token_pb2.CreateApiTokenRequest,
                             context: Context) -> token_pb2.CreateApiTokenResponse:
        row, plaintext = await self.handlers.tokens.create(request.store_hash, request.name)
        return token_pb2.CreateApiTokenResponse(token=token_pb(row), plaintext=plaintext)

    async def ListApiTokens(self, request: token_pb2.ListApiTokensRequest,
                            context: Context) -> token_pb2.ListApiTokensResponse:
        rows = await self.handlers.tokens.list_for(request.store_hash, request.include_revoked)
        return token_pb2.ListApiTokensResponse(tokens=[token_pb(r) for r in rows])

    async def RevokeApiToken(self, request: token_pb2.RevokeApiTokenRequest,
                             context: Context) -> token_pb2.RevokeApiTokenResponse:
        return token_pb2.RevokeApiTokenResponse(token=token_pb(
            await self.handlers.tokens.revoke(request.store_hash, request.id)))

    async def VerifyApiToken(self, request: token_pb2.VerifyApiTokenRequest,
                             context: Context) -> token_pb2.VerifyApiTokenResponse:
        store_hash, token_id = await self.handlers.tokens.verify(request.token)
        return token_pb2.VerifyApiTokenResponse(store_hash=store_hash, token_id=token_id)


def _order_command(request: inventory_pb2.ApplyOrderRequest) -> domain.OrderCommand:
    """An ApplyOrderRequest as a validated command (ValidationFailed names line and field)."""
    order_date = (request.order_date.ToDatetime(dt.UTC) if request.HasField("order_date")
                  else utcnow())
    return domain.validate_order(
        request.store_hash, request.order_id, request.order_email, order_date,
        [{"line_id": line.line_id, "product_id": line.product_id, "quantity": line.quantity, "name": line.name,
          "sku": line.sku, "category_ids": list(line.category_ids), "brand_id": line.brand_id}
         for line in request.lines])


def _order_response(result: OrderResult) -> inventory_pb2.ApplyOrderResponse:
    return inventory_pb2.ApplyOrderResponse(order_id=result.order_id, lines=[
        inventory_pb2.OrderLineResult(
            line_id=r.line_id, product_id=r.product_id, applied=r.applied, quantity=r.quantity,
            backordered_qty=r.backordered_qty, over_threshold=r.over_threshold, stock_before=r.stock_before,
            stock_after=r.stock_after, replayed=r.replayed)
        for r in result.lines])
