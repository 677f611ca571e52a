"""A product's state as events carry it, and the events built from it (each defined once)."""

from __future__ import annotations

import datetime as dt

from backorder.events.v1 import inventory_events_pb2 as events_pb
from google.protobuf.message import Message

from services.common.product_status import product_status
from services.inventory import domain
from services.inventory.repository import ProductRow, StoreSettingsRow


def state(product_id: int, stock: int, threshold: int | None, incoming_stock: int,
          back_in_stock_date: dt.date | None, name: str, sku: str, version: int, low_stock_level: int, *,
          assigned: bool = True) -> events_pb.InventoryProductState:
    """The product state every product event carries (no status once unassigned)."""
    message = events_pb.InventoryProductState(
        product_id=product_id, assigned=assigned, stock=stock, incoming_stock=incoming_stock,
        back_in_stock_date=domain.format_date(back_in_stock_date),
        status=product_status(stock, threshold, low_stock_level) if assigned else "",
        name=name, sku=sku, version=version)
    if threshold is not None:
        message.threshold = threshold
        message.salable_qty = stock + threshold
    return message


def product_state(product: ProductRow, settings: StoreSettingsRow, *, assigned: bool = True
                  ) -> events_pb.InventoryProductState:
    return state(product.product_id, product.stock, product.threshold, product.incoming_stock,
                 product.back_in_stock_date, product.name, product.sku, product.version, settings.low_stock_level,
                 assigned=assigned)


def stock_changed(product: events_pb.InventoryProductState, *, before: int, after: int, source: str, kind: str,
                  ledger_id: int, key: str) -> events_pb.StockChanged:
    """stock.changed for a ledger entry (`product` is the state after it)."""
    payload = events_pb.StockChanged(
        product=product, before=before, after=after, delta=after - before, source=source, kind=kind,
        status=product.status, ledger_id=ledger_id, idempotency_key=key)
    if product.HasField("salable_qty"):
        payload.salable_qty = product.salable_qty
    return payload


def availability_events(store_hash: str, product: events_pb.InventoryProductState, salable_after: int | None, *,
                        was_sellable: bool) -> list[tuple[str, str, Message]]:
    """product.sold_out or product.back_in_stock when a change crossed zero salable, else none."""
    transition = domain.availability_event(None, salable_after, was_sellable=was_sellable)
    if transition == "product.sold_out":
        return [(store_hash, transition, events_pb.ProductSoldOut(product=product))]
    if transition == "product.back_in_stock":
        return [(store_hash, transition, events_pb.ProductBackInStock(product=product))]
    return []
