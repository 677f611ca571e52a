"""The stock rules of DESIGN §3, property-tested."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common import product_status
from services.common.errors import ValidationFailed
from services.inventory import domain, import_rules

stocks = st.integers(min_value=-10_000, max_value=10_000)
quantities = st.integers(min_value=1, max_value=10_000)
thresholds = st.one_of(st.none(), st.integers(min_value=0, max_value=10_000))


@given(stocks, thresholds)
def test_salable_is_stock_plus_threshold_or_unlimited(stock, threshold):
    salable = product_status.salable_qty(stock, threshold)
    assert salable == (None if threshold is None else stock + threshold)


@given(stocks, quantities, thresholds)
def test_split_line_follows_the_design_formula(stock, quantity, threshold):
    split = domain.split_line(stock, quantity, threshold)
    assert split.stock_after == stock - quantity
    assert split.backordered == quantity - min(quantity, max(stock, 0))
    assert split.from_stock + split.backordered == quantity
    assert 0 <= split.backordered <= quantity
    salable = product_status.salable_qty(stock, threshold)
    assert split.over_threshold == (salable is not None and quantity > salable)


@given(st.integers(min_value=0, max_value=1000), st.lists(quantities, max_size=30), thresholds)
def test_sequential_lines_backorder_exactly_what_stock_could_not_serve(initial, lines, threshold):
    stock = initial
    backordered = 0
    for quantity in lines:
        split = domain.split_line(stock, quantity, threshold)
        stock = split.stock_after
        backordered += split.backordered
    assert stock == initial - sum(lines)
    assert backordered == max(sum(lines) - initial, 0)


@given(stocks, thresholds, st.integers(min_value=0, max_value=100))
def test_status_is_consistent_with_salable(stock, threshold, low):
    status = product_status.product_status(stock, threshold, low)
    salable = product_status.salable_qty(stock, threshold)
    if salable is not None and salable <= 0:
        assert status == product_status.SOLD_OUT
    elif stock <= 0:
        assert status == product_status.BACKORDER
    elif low and stock <= low:
        assert status == product_status.LOW_STOCK
    else:
        assert status == product_status.IN_STOCK


def test_unlimited_threshold_is_never_sold_out():
    assert product_status.product_status(-1_000, None) == product_status.BACKORDER
    assert not product_status.is_sold_out(-1_000, None)


@given(st.one_of(st.none(), stocks), st.one_of(st.none(), stocks))
def test_availability_events_fire_only_on_crossing_zero(before, after):
    event = domain.availability_event(before, after)
    sellable_before = before is None or before > 0
    sellable_after = after is None or after > 0
    if sellable_before == sellable_after:
        assert event is None
    else:
        assert event == ("product.sold_out" if sellable_before else "product.back_in_stock")


@given(stocks, quantities)
def test_return_undoes_the_order_line(stock, quantity):
    split = domain.split_line(stock, quantity, None)
    assert domain.return_line(split.stock_after, quantity) == stock


def test_receipt_is_due_on_and_after_its_date():
    day = dt.date(2026, 1, 10)
    assert not domain.receipt_due(day, dt.date(2026, 1, 9))
    assert domain.receipt_due(day, day)
    assert domain.receipt_due(day, dt.date(2026, 2, 1))
    assert not domain.receipt_due(None, day)
    assert domain.receive(-3, 10) == 7


@pytest.mark.parametrize("text", ["2026-1-01", "01/02/2026", "2026-02-30", "tomorrow", " 2026-01-01"])
def test_bad_dates_are_rejected(text):
    with pytest.raises(ValueError):
        domain.parse_date(text)


def test_assign_validation_names_item_and_field():
    with pytest.raises(ValidationFailed) as caught:
        domain.validate_assign_items([
            {"product_id": 1, "stock": 1},
            {"product_id": 2, "stock": 1, "threshold": -1},
        ])
    error = caught.value.details["errors"][0]
    assert (error["item"], error["field"], error["reason"]) == (1, "threshold", "out_of_range")
    assert "items[1].threshold" in caught.value.message


def test_assign_validation_rejects_bad_date_and_duplicates():
    with pytest.raises(ValidationFailed) as caught:
        domain.validate_assign_items([
            {"product_id": 1, "stock": 1, "back_in_stock_date": "2026/01/01"},
            {"product_id": 1, "stock": 1},
        ])
    found = {(e["item"], e["field"], e["reason"]) for e in caught.value.details["errors"]}
    assert found == {(0, "back_in_stock_date", "invalid_date"), (1, "product_id", "duplicate")}


def test_update_validation_keeps_only_present_fields_and_unlimited():
    (command,) = domain.validate_update_items([{"product_id": 3, "threshold_unlimited": True}])
    assert command.changes() == {"threshold": None}


def test_order_validation_rejects_non_positive_quantity():
    with pytest.raises(ValidationFailed) as caught:
        domain.validate_order("s1", "o1", "", dt.datetime.now(dt.UTC),
                              [{"line_id": "a", "product_id": 1, "quantity": 0}])
    assert caught.value.details["errors"][0]["line"] == 0
    assert caught.value.details["errors"][0]["field"] == "quantity"


def row(n, product_id="1", stock="5", threshold="", incoming="", date=""):
    return import_rules.ImportRowInput(n, product_id, stock, threshold, incoming, date)


def test_import_rows_report_row_column_and_code():
    result = import_rules.parse_import_rows([
        row(2), row(3, product_id="x"), row(4, product_id="2", stock="1.5"), row(5, product_id="3", stock="-1"),
        row(6, product_id="4", date="2026-13-01"), row(7, product_id="1"),
    ], mode="assign")
    found = {(e["row"], e["column"], e["code"]) for e in result.errors}
    assert found == {
        (3, "product_id", "not_integer"), (4, "current_stock", "not_integer"), (5, "current_stock", "negative"),
        (6, "back_in_stock_date", "invalid_date"), (7, "product_id", "duplicate"),
    }
    assert [v.row for v in result.values] == [2]


@given(st.lists(st.tuples(st.integers(1, 10**6), st.integers(0, 10**6), st.one_of(st.none(), st.integers(0, 99))),
                max_size=40, unique_by=lambda t: t[0]))
def test_valid_import_rows_round_trip(items):
    rows = [row(i + 2, str(p), str(s), "" if t is None else str(t)) for i, (p, s, t) in enumerate(items)]
    result = import_rules.parse_import_rows(rows, mode="assign")
    assert result.errors == []
    assert [(v.product_id, v.stock, v.threshold) for v in result.values] == items


@given(st.lists(st.integers(1, 10**9), max_size=10))
def test_category_key_round_trips(ids):
    assert domain.category_ids_from_key(domain.category_key(ids)) == sorted(set(ids))


@given(st.one_of(st.text(max_size=8), st.integers(-10**6, 10**6).map(str),
                 st.sampled_from(["+5", "-0", " 7 ", "٣", "²", "1_000", "0x1", "12\n", "1.0"])))
def test_import_numbers_are_whole_numbers_as_the_pattern_defines_them(text):
    stripped = text.strip()
    expected = int(stripped) if import_rules.INTEGER_PATTERN.match(stripped) else None
    try:
        parsed = import_rules._parse_whole(text)
    except ValueError:
        parsed = None
    assert parsed == expected


def test_an_update_row_sets_stock_edits_the_chosen_columns_or_changes_nothing():
    value = import_rules.ImportRowValues(2, 1, 4, None, None, None)
    everything = import_rules.OVERWRITABLE
    assert import_rules.import_update(4, None, 0, None, value, everything) == ("set", 4, None, 0, None, "")
    assert import_rules.import_update(4, 3, 2, None, value, everything) == (
        "set", 4, None, 0, None, "edited: threshold, incoming_stock")
    assert import_rules.import_update(4, 3, 2, None, value, ("incoming_stock",)) == ("edit", 4, 3, 0, None,
                                                                               "edited: incoming_stock")
    assert import_rules.import_update(4, None, 0, None, value, ("threshold", "incoming_stock")) is None
