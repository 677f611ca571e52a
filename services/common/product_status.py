"""A backorder product's status, one rule for inventory, its SQL filters and the storefront.

salable = stock + threshold (threshold None = unlimited, so never sold out);
sold_out when salable ≤ 0; backorder when stock ≤ 0; low_stock when 0 < stock ≤ the store's
low-stock level (0 = off); in_stock otherwise.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, or_
from sqlalchemy.sql.elements import ColumnElement

IN_STOCK = "in_stock"
LOW_STOCK = "low_stock"
BACKORDER = "backorder"
SOLD_OUT = "sold_out"
STATUSES = (IN_STOCK, LOW_STOCK, BACKORDER, SOLD_OUT)


def salable_qty(stock: int, threshold: int | None) -> int | None:
    """stock + threshold; None (unlimited) when the threshold is unlimited."""
    return None if threshold is None else stock + threshold


def is_sold_out(stock: int, threshold: int | None) -> bool:
    salable = salable_qty(stock, threshold)
    return salable is not None and salable <= 0


def product_status(stock: int, threshold: int | None, low_stock_level: int = 0) -> str:
    if is_sold_out(stock, threshold):
        return SOLD_OUT
    if stock <= 0:
        return BACKORDER
    if low_stock_level > 0 and stock <= low_stock_level:
        return LOW_STOCK
    return IN_STOCK


def status_condition(status: str, stock: ColumnElement[Any], threshold: ColumnElement[Any],
                     low_stock_level: int) -> ColumnElement[bool]:
    """The SQL twin of `product_status(...) == status` over a stock and a threshold column."""
    sold_out = and_(threshold.is_not(None), stock + threshold <= 0)
    not_sold_out = or_(threshold.is_(None), stock + threshold > 0)
    if status == SOLD_OUT:
        return sold_out
    if status == BACKORDER:
        return and_(not_sold_out, stock <= 0)
    if status == LOW_STOCK:
        if low_stock_level <= 0:
            return false()
        return and_(not_sold_out, stock > 0, stock <= low_stock_level)
    if status == IN_STOCK:
        return and_(not_sold_out, stock > max(low_stock_level, 0))
    raise ValueError(f"unknown product status {status!r}")
