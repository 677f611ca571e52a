"""The partner ERP API (ErpInventoryService) and its authentication.

Every call needs `authorization: Bearer <store API token>` and runs scoped to that
token's store (CURRENT_STORE): a request can name no other store. The service is
registered through `add_erp_servicer_to_server`, which wraps each of its method handlers
with `ErpAuth`, so the check covers it on every port the server listens on (the
internal one and the partner listener) and no other service.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from backorder.inventory.v1 import erp_pb2, erp_pb2_grpc

from services.common.errors import Unauthenticated, ValidationFailed
from services.common.product_status import product_status
from services.inventory import domain
from services.inventory.handlers import InventoryHandlers
from services.inventory.servicer import STATUS_TO_PB, Context, ledger_pb
from services.inventory.stock import StockItem, StockItemResult
from services.inventory.tokens import hash_token

ERP_SERVICE = "backorder.inventory.v1.ErpInventoryService"
CURRENT_STORE: contextvars.ContextVar[str] = contextvars.ContextVar("erp_store_hash")
ITEM_STATUS_TO_PB = {
    "applied": erp_pb2.ITEM_STATUS_APPLIED,
    "replayed": erp_pb2.ITEM_STATUS_REPLAYED,
    "invalid": erp_pb2.ITEM_STATUS_INVALID,
    "not_found": erp_pb2.ITEM_STATUS_NOT_FOUND,
    "conflict": erp_pb2.ITEM_STATUS_CONFLICT,
}
MethodHandler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class ErpAuth:
    """Authenticates ErpInventoryService calls with `authorization: Bearer <token>` and
    scopes each call to the token's store (CURRENT_STORE).

    Verified tokens are cached for `cache_s` seconds, so a revoked token stops working
    within that time."""

    def __init__(self, verify: Callable[[str], Awaitable[tuple[str, str]]], cache_s: float = 10.0) -> None:
        self._verify = verify
        self._cache_s = cache_s
        self._cache: dict[str, tuple[str, float]] = {}

    async def authenticate(self, context: Context) -> str:
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

    def wrap(self, handler: MethodHandler) -> MethodHandler:
        if handler.unary_unary is not None:
            inner: Any = handler.unary_unary

            async def unary_unary(request: Any, context: Context) -> Any:
                reset = CURRENT_STORE.set(await self.authenticate(context))
                try:
                    return await inner(request, context)
                finally:
                    CURRENT_STORE.reset(reset)

            return grpc.unary_unary_rpc_method_handler(unary_unary, handler.request_deserializer,
                                                       handler.response_serializer)
        if handler.unary_stream is not None:
            inner_stream: Any = handler.unary_stream

            async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
                reset = CURRENT_STORE.set(await self.authenticate(context))
                try:
                    async for item in inner_stream(request, context):
                        yield item
                finally:
                    CURRENT_STORE.reset(reset)

            return grpc.unary_stream_rpc_method_handler(unary_stream, handler.request_deserializer,
                                                        handler.response_serializer)
        raise TypeError("ErpAuth supports unary and server-streaming methods")


class _GenericHandlerWithAuth(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, auth: ErpAuth) -> None:
        self._inner = inner
        self._auth = auth

    def service(self, handler_call_details: Any) -> Any:
        handler = self._inner.service(handler_call_details)
        return None if handler is None else self._auth.wrap(handler)


class _ServerWithAuth:
    """Hands a service's handlers to the real server through ErpAuth."""

    def __init__(self, server: Any, auth: ErpAuth) -> None:
        self._server = server
        self._auth = auth

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(tuple(_GenericHandlerWithAuth(h, self._auth) for h in handlers))

    def add_registered_method_handlers(self, service: str, method_handlers: dict[str, Any]) -> None:
        self._server.add_registered_method_handlers(
            service, {name: self._auth.wrap(h) for name, h in method_handlers.items()})


def add_erp_servicer_to_server(auth: ErpAuth) -> Callable[[Any, Any], None]:
    def add(servicer: Any, server: Any) -> None:
        wrapped: Any = _ServerWithAuth(server, auth)
        erp_pb2_grpc.add_ErpInventoryServiceServicer_to_server(servicer, wrapped)

    return add


def _erp_result(result: StockItemResult) -> erp_pb2.ErpItemResult:
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
        message.product_status = STATUS_TO_PB[product_status(product.stock, product.threshold, result.low_stock_level)]
    return message


class ErpServicer(erp_pb2_grpc.ErpInventoryServiceServicer):
    """Every method runs for CURRENT_STORE (set by ErpAuth); a request can name no other store."""

    def __init__(self, handlers: InventoryHandlers, *, poll_interval_s: float = 1.0) -> None:
        self.handlers = handlers
        self.poll_interval_s = poll_interval_s

    async def _apply(self, items: list[StockItem]) -> list[erp_pb2.ErpItemResult]:
        results = await self.handlers.stock.apply_items(CURRENT_STORE.get(), items, source="erp", actor="erp",
                                                        require_keys=True)
        return [_erp_result(r) for r in results]

    async def SetStock(self, request: erp_pb2.ErpInventoryServiceSetStockRequest, context: Context
                       ) -> erp_pb2.ErpInventoryServiceSetStockResponse:
        return erp_pb2.ErpInventoryServiceSetStockResponse(results=await self._apply(
            [StockItem("set", i.product_id, i.stock, i.idempotency_key) for i in request.items]))

    async def AdjustStock(self, request: erp_pb2.ErpInventoryServiceAdjustStockRequest, context: Context
                          ) -> erp_pb2.ErpInventoryServiceAdjustStockResponse:
        return erp_pb2.ErpInventoryServiceAdjustStockResponse(results=await self._apply(
            [StockItem("adjust", i.product_id, i.delta, i.idempotency_key) for i in request.items]))

    async def SetIncoming(self, request: erp_pb2.ErpInventoryServiceSetIncomingRequest, context: Context
                          ) -> erp_pb2.ErpInventoryServiceSetIncomingResponse:
        return erp_pb2.ErpInventoryServiceSetIncomingResponse(results=await self._apply(
            [StockItem("incoming", i.product_id, i.incoming_stock, i.idempotency_key, i.back_in_stock_date)
             for i in request.items]))

    async def StreamStockChanges(self, request: erp_pb2.StreamStockChangesRequest, context: Context
                                 ) -> AsyncIterator[erp_pb2.StreamStockChangesResponse]:
        store_hash = CURRENT_STORE.get()
        if request.cursor < 0:
            raise ValidationFailed("cursor: must be ≥ 0",
                                   [domain.field_error(None, "cursor", "out_of_range", "must be ≥ 0")])
        cursor = request.cursor
        while True:
            written = self.handlers.tx.ledger_written
            entries = await self.handlers.stock.ledger_after(store_hash, cursor)
            for entry in entries:
                cursor = entry.id
                yield erp_pb2.StreamStockChangesResponse(entry=ledger_pb(entry), cursor=cursor)
            if len(entries) < 500:
                # Woken by this process's commits; the timeout catches other replicas' writes.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(written.wait(), self.poll_interval_s)
