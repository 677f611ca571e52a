"""The definitions every service shares (services/common: clock, text, stores, product_status, product_events)."""

from __future__ import annotations

import datetime as dt

import pytest
from backorder.events.v1 import inventory_events_pb2 as events
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, insert, select

from services.common import clock, product_events, product_status, stores, text


def test_as_utc_takes_naive_as_utc_and_converts_aware() -> None:
    naive = dt.datetime(2026, 1, 2, 3, 4, 5)
    assert clock.as_utc(naive) == naive.replace(tzinfo=dt.UTC)
    plus_two = dt.datetime(2026, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert clock.as_utc(plus_two).tzinfo == dt.UTC and clock.as_utc(plus_two).hour == 3
    assert clock.as_utc(None) is None
    assert clock.iso_utc(naive) == "2026-01-02T03:04:05Z"
    assert clock.utcnow().tzinfo == dt.UTC


@pytest.mark.parametrize("query, pattern", [("Tee", "%tee%"), ("50%", "%50\\%%"), ("a_b", "%a\\_b%"),
                                            ("c:\\x", "%c:\\\\x%")])
def test_like_contains_escapes_the_searchers_wildcards(query: str, pattern: str) -> None:
    assert text.like_contains(query) == pattern


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12))
def test_like_contains_matches_exactly_the_rows_containing_the_query(query: str) -> None:
    engine = create_engine("sqlite://")
    rows = Table("rows", MetaData(), Column("id", Integer, primary_key=True), Column("name", String))
    rows.metadata.create_all(engine)
    names = [f"x{query}y", "plain", "50% off", "a_b", "back\\slash"]
    with engine.begin() as conn:
        conn.execute(insert(rows), [{"id": i, "name": n} for i, n in enumerate(names)])
        found = conn.execute(select(rows.c.name).where(
            func.lower(rows.c.name).like(text.like_contains(query), escape=text.LIKE_ESCAPE))).scalars().all()
    assert set(found) == {n for n in names if query.lower() in n.lower()}


@pytest.mark.parametrize("cell, safe", [("=SUM(A1)", "'=SUM(A1)"), ("@cmd", "'@cmd"), ("+x", "'+x"),
                                        ("-3", "-3"), ("+4", "+4"), ("\tx", "'\tx"), ("plain", "plain"),
                                        (None, ""), (-7, "-7")])
def test_csv_cells_never_run_as_formulas_and_numbers_stay_numbers(cell: object, safe: str) -> None:
    assert text.neutralise_csv_cell(cell) == safe


@pytest.mark.parametrize("value, ok", [("demo01", True), ("abc123xyz", True), ("a" * 32, True), ("a" * 33, False),
                                       ("", False), ("Demo", False), ("dot.ted", False), ("star*", False),
                                       ("has space", False), ("under_score", False), (None, False), (7, False)])
def test_store_hash_is_lower_case_letters_and_digits(value: object, ok: bool) -> None:
    assert stores.is_store_hash(value) is ok


@given(st.integers(-1000, 1000), st.one_of(st.none(), st.integers(0, 1000)), st.integers(0, 50))
def test_status_sql_agrees_with_the_rule(stock: int, threshold: int | None, level: int) -> None:
    engine = create_engine("sqlite://")
    products = Table("p", MetaData(), Column("id", Integer, primary_key=True), Column("stock", Integer),
                     Column("threshold", Integer, nullable=True))
    products.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(products).values(id=1, stock=stock, threshold=threshold))
        matching = [status for status in product_status.STATUSES if conn.execute(select(products.c.id).where(
            product_status.status_condition(status, products.c.stock, products.c.threshold, level))).first()]
    assert matching == [product_status.product_status(stock, threshold, level)]


def test_status_rule_examples() -> None:
    assert product_status.product_status(0, 0) == product_status.SOLD_OUT
    assert product_status.product_status(-1, 5) == product_status.BACKORDER
    assert product_status.product_status(-100, None) == product_status.BACKORDER
    assert product_status.product_status(2, 0, low_stock_level=3) == product_status.LOW_STOCK
    assert product_status.product_status(4, 0, low_stock_level=3) == product_status.IN_STOCK


def test_product_event_version_is_the_larger_of_version_and_ledger_id() -> None:
    state = events.InventoryProductState(product_id=5, version=3, assigned=True)
    assert product_events.product_event_version(events.StockChanged(product=state, ledger_id=9)) == 9
    assert product_events.product_event_version(events.StockChanged(product=state, ledger_id=1)) == 3
    assert product_events.product_event_version(events.ProductSoldOut(product=state)) == 3
    assert product_events.is_assigned_after("product.unassigned", events.ProductUnassigned(product=state)) is False
    assert product_events.is_assigned_after("stock.changed", events.StockChanged(product=state)) is True
    assert set(product_events.PRODUCT_STATE_EVENTS) == {
        "product.assigned", "product.unassigned", "stock.changed", "product.sold_out", "product.back_in_stock"}
