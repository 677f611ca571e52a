"""New orders and order status changes from BigCommerce's webhooks.

A batch of `store/order/created` hooks is handled together: the orders read through the
orders list (one request per run of nearby ids), one mirror read per store, one
inventory.ApplyOrders call, one note rendering call per store, then each order's staff note
written. Each step is safe to run twice: inventory applies an order line once, and the note
is appended only if absent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import grpc
from backorder.inventory.v1 import inventory_pb2
from backorder.storefront.v1 import storefront_pb2

from services.catalog_sync import domain, repository
from services.catalog_sync.bc_client import BigCommerceRejected, StoreApi
from services.catalog_sync.peers import rpc_code, timestamp, transient
from services.catalog_sync.store_access import UseCase
from services.common.bus import TransientError

log = logging.getLogger(__name__)

ORDERS_PER_APPLY = 500  # InventoryService.ApplyOrders' limit per call
ORDERS_LIST_SPAN = 250  # ids one orders-list page (limit 250) always covers


@dataclass
class FetchedOrder:
    """An order and its lines as BigCommerce returned them."""

    order_id: int
    order: dict[str, Any]
    items: list[dict[str, Any]]
    api: StoreApi


@dataclass
class AppliedOrder:
    """An order inventory applied, with its backordered lines (for the staff note)."""

    fetched: FetchedOrder
    backordered: list[domain.NoteLine]


class Orders(UseCase):
    """The order webhooks' reactions."""

    async def created(self, hooks: list[domain.Webhook]) -> list[BaseException | None]:
        """A batch of new orders: each order and its lines fetched (all side by side), one
        mirror read per store, one inventory call for all the orders, one note rendering
        call per store, then each order's staff notes written. One outcome per hook."""
        if not hooks:
            return []
        listed = await self._list_orders(hooks)
        fetched = await asyncio.gather(*(self._fetch_order(hook, listed.get((hook.store_hash, domain.resource_id(hook))))
                                         for hook in hooks), return_exceptions=True)
        wanted: dict[str, set[int]] = defaultdict(set)
        for hook, got in zip(hooks, fetched, strict=True):
            if isinstance(got, FetchedOrder):
                wanted[hook.store_hash].update(int(item.get("product_id") or 0) for item in got.items)
        mirrors: dict[str, dict[int, Any]] = {}
        async with self.db.read() as conn:
            for store_hash, product_ids in wanted.items():
                mirrors[store_hash] = await repository.get_products(conn, store_hash, sorted(product_ids))
        applied = await self._apply_orders(hooks, fetched, mirrors)
        notes = await self._render_notes([(hook, result) for hook, result in zip(hooks, applied, strict=True)
                                          if isinstance(result, AppliedOrder)])
        outcomes = [result if isinstance(result, BaseException) else None for result in applied]
        noted = [(index, result) for index, result in enumerate(applied)
                 if isinstance(result, AppliedOrder) and notes.get(id(result))]
        written = await asyncio.gather(*(self._write_note(result, notes[id(result)]) for _, result in noted),
                                       return_exceptions=True)
        for (index, _), result in zip(noted, written, strict=True):
            outcomes[index] = result if isinstance(result, BaseException) else None
        return outcomes

    async def _list_orders(self, hooks: list[domain.Webhook]) -> dict[tuple[str, int], dict[str, Any]]:
        """The batch's orders read through the orders list, one request per run of nearby ids
        (new orders' ids are close together) instead of one per order; keyed (store, id).
        Best effort: an order the list does not return (or a list that fails) is read alone."""
        by_store: dict[str, set[int]] = defaultdict(set)
        for hook in hooks:
            by_store[hook.store_hash].add(domain.resource_id(hook))
        ranges = [(store_hash, first, last) for store_hash, ids in by_store.items()
                  for first, last in domain.id_runs(sorted(ids), span=ORDERS_LIST_SPAN)]

        async def read(store_hash: str, first: int, last: int) -> list[tuple[tuple[str, int], dict[str, Any]]]:
            try:
                api = await self.stores.api(store_hash)
                orders = await api.orders_between(first, last)
            except Exception as exc:  # noqa: BLE001 - the orders are then read one by one
                log.info("store %s: orders %s-%s not listed (%s); reading them one by one", store_hash, first, last,
                         exc)
                return []
            return [((store_hash, int(order["id"])), order) for order in orders if isinstance(order, dict)]

        found = await asyncio.gather(*(read(*r) for r in ranges))
        return dict(pair for pairs in found for pair in pairs)

    async def _fetch_order(self, hook: domain.Webhook, listed: dict[str, Any] | None = None) -> FetchedOrder | None:
        order_id = domain.resource_id(hook)
        api = await self.stores.api(hook.store_hash)
        if listed is not None:
            return FetchedOrder(order_id, listed, await self._order_items(api, order_id), api)
        # The order and its lines are independent reads: fetch them side by side.
        order, items = await asyncio.gather(api.get_order(order_id), self._order_items(api, order_id))
        if order is None:
            log.warning("store %s: order %s of a webhook no longer exists", hook.store_hash, order_id)
            return None
        return FetchedOrder(order_id, order, items, api)

    async def _apply_orders(self, hooks: list[domain.Webhook], fetched: list[Any],
                            mirrors: dict[str, dict[int, Any]]) -> list[Any]:
        """One ApplyOrders call for the fetched orders with lines of assigned products; per
        hook: an AppliedOrder (with backordered lines), None (nothing to apply or nothing
        backordered), or the exception (a fetch that failed, an order inventory refused)."""
        results: list[Any] = [got if isinstance(got, BaseException) else None for got in fetched]
        sent: list[tuple[int, FetchedOrder, dict[str, domain.OrderLine]]] = []
        requests = []
        for index, (hook, got) in enumerate(zip(hooks, fetched, strict=True)):
            if not isinstance(got, FetchedOrder):
                continue
            mirror = mirrors.get(hook.store_hash, {})
            known = {pid: {"name": row.name, "sku": row.sku, "category_ids": row.category_ids,
                           "brand_id": row.brand_id} for pid, row in mirror.items()}
            lines = domain.order_lines(got.items, known)
            if not lines:
                continue
            request = inventory_pb2.ApplyOrderRequest(
                store_hash=hook.store_hash, order_id=str(got.order_id),
                order_email=str((got.order.get("billing_address") or {}).get("email") or ""),
                lines=[inventory_pb2.OrderLine(line_id=line.line_id, product_id=line.product_id,
                                               quantity=line.quantity, name=line.name, sku=line.sku,
                                               category_ids=line.category_ids, brand_id=line.brand_id)
                       for line in lines])
            order_date = domain.parse_bc_time(got.order.get("date_created"))
            if order_date is not None:
                request.order_date.CopyFrom(timestamp(order_date))
            requests.append(request)
            sent.append((index, got, {line.line_id: line for line in lines}))
        if not requests:
            return results

        async def apply(chunk: list[inventory_pb2.ApplyOrderRequest]) -> list[Any]:
            try:
                reply = await self.peers.inventory.ApplyOrders(inventory_pb2.ApplyOrdersRequest(orders=chunk))
                return list(reply.outcomes)
            except grpc.RpcError as exc:
                return [transient(exc, "inventory.ApplyOrders")] * len(chunk)

        chunks = [requests[start:start + ORDERS_PER_APPLY] for start in range(0, len(requests), ORDERS_PER_APPLY)]
        outcomes = [outcome for replies in await asyncio.gather(*(apply(c) for c in chunks)) for outcome in replies]
        for (index, got, by_line), outcome in zip(sent, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                results[index] = outcome
                continue
            if outcome.HasField("error"):
                # Retried like a failed ApplyOrder call: a conflict or a refusal may clear up.
                results[index] = TransientError(f"inventory.ApplyOrders: order {got.order_id}: "
                                                f"{outcome.error.code}: {outcome.error.message}")
                continue
            backordered = [domain.NoteLine(by_line[r.line_id].name, by_line[r.line_id].sku, r.backordered_qty)
                           for r in outcome.applied.lines
                           if r.applied and r.backordered_qty > 0 and r.line_id in by_line]
            results[index] = AppliedOrder(got, backordered) if backordered else None
        return results

    async def _render_notes(self, orders: list[tuple[domain.Webhook, AppliedOrder]]) -> dict[int, str]:
        """The note of each applied order (keyed by id() of its AppliedOrder): one storefront
        call per store; the default note when the storefront does not answer."""
        by_store: dict[str, list[AppliedOrder]] = defaultdict(list)
        for hook, applied in orders:
            by_store[hook.store_hash].append(applied)

        async def render(store_hash: str, applied: list[AppliedOrder]) -> list[str]:
            try:
                reply = await self.peers.storefront.RenderOrderNotes(storefront_pb2.RenderOrderNotesRequest(
                    store_hash=store_hash, orders=[storefront_pb2.OrderNoteLines(lines=[
                        storefront_pb2.OrderNoteLine(name=line.name, sku=line.sku,
                                                     backordered_qty=line.backordered_qty)
                        for line in one.backordered]) for one in applied]))
                return [str(note) for note in reply.notes]
            except grpc.RpcError as exc:
                log.warning("store %s: storefront could not render order notes (%s); using the default",
                            store_hash, rpc_code(exc))
                return [domain.default_order_note(one.backordered) for one in applied]

        stores = list(by_store)
        rendered = await asyncio.gather(*(render(store, by_store[store]) for store in stores))
        return {id(one): note for store, notes in zip(stores, rendered, strict=True)
                for one, note in zip(by_store[store], notes, strict=True)}

    @staticmethod
    async def _write_note(applied: AppliedOrder, note: str) -> None:
        fetched = applied.fetched
        notes = domain.staff_notes_with(fetched.order.get("staff_notes"), note)
        if notes is not None:
            await fetched.api.update_order(fetched.order_id, {"staff_notes": notes})

    @staticmethod
    async def _order_items(api: StoreApi, order_id: int) -> list[dict[str, Any]]:
        try:
            return [item async for item in api.order_products(order_id)]
        except BigCommerceRejected as exc:
            if (exc.details or {}).get("status") == 404:
                return []
            raise

    async def status_updated(self, hook: domain.Webhook) -> None:
        reason = domain.returning_status(hook)
        if reason is None:
            return
        try:
            await self.peers.inventory.ReturnOrderLines(inventory_pb2.ReturnOrderLinesRequest(
                store_hash=hook.store_hash, order_id=str(domain.resource_id(hook)), reason=reason))
        except grpc.RpcError as exc:
            if rpc_code(exc) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                return  # nothing of this order was applied
            raise transient(exc, "inventory.ReturnOrderLines") from exc

