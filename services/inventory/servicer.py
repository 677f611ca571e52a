"""gRPC servicers: proto <-> handler calls, nothing else. Domain errors are mapped to gRPC
status codes by services.common.grpc_server.ErrorMappingInterceptor (one table).

The partner ERP service is wrapped by `ErpAuthInterceptor`: every call needs
`authorization: Bearer <store API token>` and runs scoped to that token's store.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from backorder.inventory.v1 import (
    erp_pb2,
    erp_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    report_pb2,
    report_pb2_grpc,
    token_pb2,
    token_pb2_grpc,
)
from google.protobuf import timestamp_pb2

from services.common.errors import DomainError, Unauthenticated, ValidationFailed
from services.inventory import domain
from services.inventory.handlers import InventoryHandlers, StockItem, StockItemResult, hash_token, local_time
from services.inventory.repository import ProductRow, StoreSettingsRow, as_utc

MAX_ORDERS_PER_CALL = 500
STATUS_TO_PB = {
    domain.IN_STOCK: inventory_pb2.PRODUCT_STATUS_IN_STOCK,
    domain.LOW_STOCK: inventory_pb2.PRODUCT_STATUS_LOW_STOCK,
    domain.BACKORDER: inventory_pb2.PRODUCT_STATUS_BACKORDER,
    domain.SOLD_OUT: inventory_pb2.PRODUCT_STATUS_SOLD_OUT,
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
ITEM_STATUS_TO_PB = {
    "applied": erp_pb2.ITEM_STATUS_APPLIED,
    "replayed": erp_pb2.ITEM_STATUS_REPLAYED,
    "invalid": erp_pb2.ITEM_STATUS_INVALID,
    "not_found": erp_pb2.ITEM_STATUS_NOT_FOUND,
    "conflict": erp_pb2.ITEM_STATUS_CONFLICT,
}


def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(as_utc(value))
    return stamp


def product_pb(product: ProductRow, low_stock_level: int) -> inventory_pb2.Product:
    message = inventory_pb2.Product(
        store_hash=product.store_hash, product_id=product.product_id, name=product.name, sku=product.sku,
        stock=product.stock, incoming_stock=product.incoming_stock,
        back_in_stock_date=domain.format_date(product.back_in_stock_date),
        status=STATUS_TO_PB[domain.product_status(product.stock, product.threshold, low_stock_level)],
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


def _source(value: int, default: str) -> str:
    return SOURCE_FROM_PB.get(value, default)


def _presence(message: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(message, name) for name in names if message.HasField(name)}


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, handlers: InventoryHandlers) -> None:
        self.handlers = handlers

    async def AssignProducts(self, request: Any, context: Any) -> Any:
        items = []
        for item in request.items:
            items.append({
                "product_id": item.product_id, "name": item.name, "sku": item.sku, "stock": item.stock,
                "threshold": item.threshold if item.HasField("threshold") else None,
                "incoming_stock": item.incoming_stock, "back_in_stock_date": item.back_in_stock_date,
                "category_ids": list(item.category_ids), "brand_id": item.brand_id,
            })
        products = await self.handlers.assign(request.store_hash, items, actor=request.actor,
                                              source=_source(request.source, "admin"))
        settings = await self.handlers.get_settings(request.store_hash)
        return inventory_pb2.AssignProductsResponse(products=[product_pb(p, settings.low_stock_level) for p in products])

    async def UpdateProducts(self, request: Any, context: Any) -> Any:
        items = []
        for item in request.items:
            raw = {"product_id": item.product_id}
            raw.update(_presence(item, ("stock", "threshold", "incoming_stock", "back_in_stock_date", "name", "sku",
                                        "brand_id")))
            if item.threshold_unlimited:
                raw["threshold_unlimited"] = True
            if item.set_category_ids:
                raw["category_ids"] = list(item.category_ids)
            items.append(raw)
        products = await self.handlers.update(request.store_hash, items, actor=request.actor,
                                              source=_source(request.source, "admin"))
        settings = await self.handlers.get_settings(request.store_hash)
        return inventory_pb2.UpdateProductsResponse(products=[product_pb(p, settings.low_stock_level) for p in products])

    async def UnassignProducts(self, request: Any, context: Any) -> Any:
        products = await self.handlers.unassign(
            request.store_hash, list(request.product_ids), restore_tracking=request.restore_tracking,
            disable_product=request.disable_product, actor=request.actor)
        settings = await self.handlers.get_settings(request.store_hash)
        return inventory_pb2.UnassignProductsResponse(
            products=[product_pb(p, settings.low_stock_level) for p in products])

    async def GetProduct(self, request: Any, context: Any) -> Any:
        product, entries, settings = await self.handlers.get_product(request.store_hash, request.product_id,
                                                                     request.ledger_limit)
        return inventory_pb2.GetProductResponse(product=product_pb(product, settings.low_stock_level),
                                                recent_ledger=[ledger_pb(e) for e in entries])

    async def ListProducts(self, request: Any, context: Any) -> Any:
        products, total, settings, page, limit = await self.handlers.list_products(
            request.store_hash, q=request.q, status=STATUS_FROM_PB.get(request.status), page=request.page,
            limit=request.limit, product_ids=list(request.product_ids))
        return inventory_pb2.ListProductsResponse(products=[product_pb(p, settings.low_stock_level) for p in products],
                                                  total=total, page=page, limit=limit)

    async def ApplyOrder(self, request: Any, context: Any) -> Any:
        return _order_response(await self.handlers.apply_order(_order_command(request)))

    async def ApplyOrders(self, request: Any, context: Any) -> Any:
        """Each order on its own through the same group commit as ApplyOrder (they arrive
        together, so they share transactions); a DomainError fails only its order."""
        domain.check_count(len(request.orders), MAX_ORDERS_PER_CALL, "orders")

        async def one(order: Any) -> Any:
            try:
                return inventory_pb2.ApplyOrderOutcome(
                    applied=_order_response(await self.handlers.apply_order(_order_command(order))))
            except DomainError as exc:
                return inventory_pb2.ApplyOrderOutcome(error=inventory_pb2.OrderError(
                    grpc_code=exc.grpc_status.value[0], code=exc.code, message=exc.message,
                    details_json=json.dumps(exc.details, default=str)))

        return inventory_pb2.ApplyOrdersResponse(outcomes=await asyncio.gather(*(one(o) for o in request.orders)))

    async def ReturnOrderLines(self, request: Any, context: Any) -> Any:
        result = await self.handlers.return_order_lines(request.store_hash, request.order_id, request.reason,
                                                        list(request.line_ids))
        return inventory_pb2.ReturnOrderLinesResponse(order_id=result.order_id, returned=result.returned, lines=[
            inventory_pb2.ReturnedLine(line_id=r.line_id, product_id=r.product_id, quantity=r.quantity,
                                       stock_before=r.stock_before, stock_after=r.stock_after, replayed=r.replayed)
            for r in result.lines])

    async def _stock_change(self, request: Any, item: StockItem) -> inventory_pb2.StockChange:
        result = await self.handlers.apply_stock_item(request.store_hash, item, source=_source(request.source, "admin"),
                                                      actor=request.actor)
        change = inventory_pb2.StockChange(entry=ledger_pb(result.entry), replayed=result.status == "replayed")
        if result.product is not None:
            change.product.CopyFrom(product_pb(result.product, result.low_stock_level))
        return change

    async def SetStock(self, request: Any, context: Any) -> Any:
        change = await self._stock_change(request, StockItem("set", request.product_id, request.stock,
                                                             request.idempotency_key))
        return inventory_pb2.SetStockResponse(change=change)

    async def AdjustStock(self, request: Any, context: Any) -> Any:
        change = await self._stock_change(request, StockItem("adjust", request.product_id, request.delta,
                                                             request.idempotency_key))
        return inventory_pb2.AdjustStockResponse(change=change)

    async def SetIncoming(self, request: Any, context: Any) -> Any:
        item = StockItem("incoming", request.product_id, request.incoming_stock, request.idempotency_key,
                         request.back_in_stock_date)
        result = await self.handlers.apply_stock_item(request.store_hash, item, source=_source(request.source, "admin"),
                                                      actor=request.actor)
        response = inventory_pb2.SetIncomingResponse(replayed=result.status == "replayed")
        if result.product is not None:
            response.product.CopyFrom(product_pb(result.product, result.low_stock_level))
        return response

    async def ListLedger(self, request: Any, context: Any) -> Any:
        entries, total = await self.handlers.list_ledger(request.store_hash, request.product_id, request.page,
                                                         request.limit)
        return inventory_pb2.ListLedgerResponse(entries=[ledger_pb(e) for e in entries], total=total)

    async def ImportProducts(self, request: Any, context: Any) -> Any:
        mode = {inventory_pb2.IMPORT_MODE_ASSIGN: "assign", inventory_pb2.IMPORT_MODE_UPDATE: "update"}.get(
            request.mode, "")
        # Positional: 100,000 rows per import (see ImportRowInput's field order).
        rows = [domain.ImportRowInput(r.row, r.product_id, r.current_stock, r.backorder_threshold, r.incoming_stock,
                                      r.back_in_stock_date, r.name, r.sku, tuple(r.category_ids), r.brand_id)
                for r in request.rows]
        outcome = await self.handlers.import_products(
            request.store_hash, mode=mode, overwrite=list(request.overwrite), rows=rows, dry_run=request.dry_run,
            actor=request.actor, import_id=request.import_id)
        return inventory_pb2.ImportProductsResponse(
            rows=outcome.rows, applied=outcome.applied, dry_run=outcome.dry_run,
            errors=[inventory_pb2.ImportError(**e) for e in outcome.errors])

    async def GetStoreSettings(self, request: Any, context: Any) -> Any:
        return inventory_pb2.GetStoreSettingsResponse(settings=settings_pb(
            await self.handlers.get_settings(request.store_hash)))

    async def UpdateStoreSettings(self, request: Any, context: Any) -> Any:
        changes = _presence(request, ("low_stock_level", "return_stock_on_cancel",
                                      "keep_assigned_when_tracking_enabled", "timezone"))
        return inventory_pb2.UpdateStoreSettingsResponse(settings=settings_pb(
            await self.handlers.update_settings(request.store_hash, changes)))


def backorder_row_pb(row: Any, zone: Any) -> report_pb2.BackorderRow:
    return report_pb2.BackorderRow(
        product_id=row.product_id, product_name=row.product_name, sku=row.sku, purchased_qty=row.purchased_qty,
        backordered_qty=row.backordered_qty, order_id=row.order_id, order_email=row.order_email,
        order_date=timestamp(row.order_date), order_date_local=local_time(row.order_date, zone).isoformat(),
        category_ids=domain.category_ids_from_key(row.category_key), brand_id=row.brand_id, line_id=row.line_id,
    )


def _filter_args(request: Any) -> dict[str, Any]:
    f = request.filter
    return {"q": f.q, "from_date": f.from_date, "to_date": f.to_date, "category_id": f.category_id,
            "brand_id": f.brand_id}


class ReportServicer(report_pb2_grpc.ReportServiceServicer):
    def __init__(self, handlers: InventoryHandlers) -> None:
        self.handlers = handlers

    async def ListBackorders(self, request: Any, context: Any) -> Any:
        rows, total, zone, page, limit = await self.handlers.list_report(
            request.store_hash, page=request.page, limit=request.limit, **_filter_args(request))
        return report_pb2.ListBackordersResponse(rows=[backorder_row_pb(r, zone) for r in rows], total=total,
                                                 page=page, limit=limit)

    async def ExportBackorders(self, request: Any, context: Any) -> AsyncIterator[Any]:
        async for chunk in self.handlers.export_report(request.store_hash, **_filter_args(request)):
            yield report_pb2.ExportBackordersResponse(chunk=chunk)


def token_pb(row: Any) -> token_pb2.ApiToken:
    return token_pb2.ApiToken(id=row.id, store_hash=row.store_hash, name=row.name, prefix=row.prefix,
                              created_at=timestamp(row.created_at), last_used_at=timestamp(row.last_used_at),
                              revoked_at=timestamp(row.revoked_at))


class TokenServicer(token_pb2_grpc.TokenServiceServicer):
    def __init__(self, handlers: InventoryHandlers) -> None:
        self.handlers = handlers

    async def CreateApiToken(self, request: Any, context: Any) -> Any:
        row, plaintext = await self.handlers.create_token(request.store_hash, request.name)
        return token_pb2.CreateApiTokenResponse(token=token_pb(row), plaintext=plaintext)

    async def ListApiTokens(self, request: Any, context: Any) -> Any:
        rows = await self.handlers.list_tokens(request.store_hash, request.include_revoked)
        return token_pb2.ListApiTokensResponse(tokens=[token_pb(r) for r in rows])

    async def RevokeApiToken(self, request: Any, context: Any) -> Any:
        return token_pb2.RevokeApiTokenResponse(token=token_pb(
            await self.handlers.revoke_token(request.store_hash, request.id)))

    async def VerifyApiToken(self, request: Any, context: Any) -> Any:
        store_hash, token_id = await self.handlers.verify_token(request.token)
        return token_pb2.VerifyApiTokenResponse(store_hash=store_hash, token_id=token_id)


# ---------------------------------------------------------------- partner ERP

ERP_SERVICE = "backorder.inventory.v1.ErpInventoryService"
CURRENT_STORE: contextvars.ContextVar[str] = contextvars.ContextVar("erp_store_hash")


class ErpAuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates ErpInventoryService calls with `authorization: Bearer <token>` and
    scopes the call to the token's store (CURRENT_STORE). Other services pass through.

    Verified tokens are cached for `cache_s` seconds, so a revoked token stops working
    within that time."""

    def __init__(self, verify: Callable[[str], Awaitable[tuple[str, str]]], cache_s: float = 10.0) -> None:
        self._verify = verify
        self._cache_s = cache_s
        self._cache: dict[str, tuple[str, float]] = {}

    async def authenticate(self, context: grpc.aio.ServicerContext) -> str:
        header = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = value if isinstance(value, str) else value.decode()
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("missing 'authorization: Bearer <store API token>'")
        token = token.strip()
        # Keyed by the token's hash: no plaintext token is kept in memory.
        cache_key = hash_token(token)
        cached = self._cache.get(cache_key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        store_hash, _ = await self._verify(token)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[cache_key] = (store_hash, time.monotonic() + self._cache_s)
        return store_hash

    def wrap(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                reset = CURRENT_STORE.set(await self.authenticate(context))
                try:
                    return await inner(request, context)
                finally:
                    CURRENT_STORE.reset(reset)

            return grpc.unary_unary_rpc_method_handler(unary_unary, handler.request_deserializer,
                                                       handler.response_serializer)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                reset = CURRENT_STORE.set(await self.authenticate(context))
                try:
                    async for item in inner_stream(request, context):
                        yield item
                finally:
                    CURRENT_STORE.reset(reset)

            return grpc.unary_stream_rpc_method_handler(unary_stream, handler.request_deserializer,
                                                        handler.response_serializer)
        raise TypeError("ErpAuthInterceptor supports unary and server-streaming methods")

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(f"/{ERP_SERVICE}/"):
            return handler
        return self.wrap(handler)


class _GenericHandlerWithInterceptor(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, interceptor: ErpAuthInterceptor) -> None:
        self._inner = inner
        self._interceptor = interceptor

    def service(self, handler_call_details: Any) -> Any:
        handler = self._inner.service(handler_call_details)
        return None if handler is None else self._interceptor.wrap(handler)


class _ServerWithInterceptor:
    """Hands a service's handlers to the real server through the interceptor, so the
    interceptor covers this service on every port the server listens on."""

    def __init__(self, server: Any, interceptor: ErpAuthInterceptor) -> None:
        self._server = server
        self._interceptor = interceptor

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(
            tuple(_GenericHandlerWithInterceptor(h, self._interceptor) for h in handlers))

    def add_registered_method_handlers(self, service: str, method_handlers: dict[str, Any]) -> None:
        self._server.add_registered_method_handlers(
            service, {name: self._interceptor.wrap(h) for name, h in method_handlers.items()})


def add_erp_servicer_to_server(interceptor: ErpAuthInterceptor) -> Callable[[Any, Any], None]:
    def add(servicer: Any, server: Any) -> None:
        erp_pb2_grpc.add_ErpInventoryServiceServicer_to_server(servicer, _ServerWithInterceptor(server, interceptor))

    return add


def _erp_result(index: int, result: StockItemResult) -> erp_pb2.ErpItemResult:
    message = erp_pb2.ErpItemResult(product_id=result.item.product_id, idempotency_key=result.item.idempotency_key,
                                    status=ITEM_STATUS_TO_PB[result.status])
    if result.error is not None:
        message.error_code = result.error.code
        message.message = result.error.message
    if result.entry is not None:
        message.stock_before = result.entry.stock_before
        message.stock_after = result.entry.stock_after
    if result.product is not None:
        product = result.product
        if product.threshold is not None:
            message.salable_qty = product.stock + product.threshold
        message.product_status = STATUS_TO_PB[domain.product_status(product.stock, product.threshold,
                                                                     result.low_stock_level)]
    return message


class ErpServicer(erp_pb2_grpc.ErpInventoryServiceServicer):
    """Every method runs for CURRENT_STORE (set by ErpAuthInterceptor); a request can name
    no other store."""

    def __init__(self, handlers: InventoryHandlers, *, poll_interval_s: float = 1.0) -> None:
        self.handlers = handlers
        self.poll_interval_s = poll_interval_s

    async def _apply(self, items: list[StockItem]) -> list[erp_pb2.ErpItemResult]:
        store_hash = CURRENT_STORE.get()
        results = await self.handlers.apply_stock_items(store_hash, items, source="erp", actor="erp",
                                                        require_keys=True)
        return [_erp_result(i, r) for i, r in enumerate(results)]

    async def SetStock(self, request: Any, context: Any) -> Any:
        return erp_pb2.ErpInventoryServiceSetStockResponse(results=await self._apply(
            [StockItem("set", i.product_id, i.stock, i.idempotency_key) for i in request.items]))

    async def AdjustStock(self, request: Any, context: Any) -> Any:
        return erp_pb2.ErpInventoryServiceAdjustStockResponse(results=await self._apply(
            [StockItem("adjust", i.product_id, i.delta, i.idempotency_key) for i in request.items]))

    async def SetIncoming(self, request: Any, context: Any) -> Any:
        return erp_pb2.ErpInventoryServiceSetIncomingResponse(results=await self._apply(
            [StockItem("incoming", i.product_id, i.incoming_stock, i.idempotency_key, i.back_in_stock_date)
             for i in request.items]))

    async def StreamStockChanges(self, request: Any, context: Any) -> AsyncIterator[Any]:
        store_hash = CURRENT_STORE.get()
        if request.cursor < 0:
            raise ValidationFailed("cursor: must be ≥ 0",
                                   [domain.field_error(None, "cursor", "out_of_range", "must be ≥ 0")])
        cursor = request.cursor
        while True:
            written = self.handlers.ledger_written
            entries = await self.handlers.ledger_after(store_hash, cursor)
            for entry in entries:
                cursor = entry.id
                yield erp_pb2.StreamStockChangesResponse(entry=ledger_pb(entry), cursor=cursor)
            if len(entries) < 500:
                # Woken by this process's commits; the timeout catches other replicas' writes.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(written.wait(), self.poll_interval_s)


def _order_command(request: Any) -> domain.OrderCommand:
    """An ApplyOrderRequest as a validated command (ValidationFailed names line and field)."""
    order_date = (request.order_date.ToDatetime(dt.UTC) if request.HasField("order_date")
                  else dt.datetime.now(dt.UTC))
    return domain.validate_order(
        request.store_hash, request.order_id, request.order_email, order_date,
        [{"line_id": line.line_id, "product_id": line.product_id, "quantity": line.quantity, "name": line.name,
          "sku": line.sku, "category_ids": list(line.category_ids), "brand_id": line.brand_id}
         for line in request.lines])


def _order_response(result: Any) -> inventory_pb2.ApplyOrderResponse:
    return inventory_pb2.ApplyOrderResponse(order_id=result.order_id, lines=[
        inventory_pb2.OrderLineResult(
            line_id=r.line_id, product_id=r.product_id, applied=r.applied, quantity=r.quantity,
            backordered_qty=r.backordered_qty, over_threshold=r.over_threshold, stock_before=r.stock_before,
            stock_after=r.stock_after, replayed=r.replayed)
        for r in result.lines])
