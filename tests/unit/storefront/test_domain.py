"""Storefront rules: rendering, validation, status, views, cart checks, order notes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.errors import ValidationFailed
from services.common.stores import is_store_hash as valid_store_hash
from services.storefront.domain import (
    DEFAULT_SETTINGS,
    GENERIC,
    THEMES,
    CartLine,
    OrderNoteLine,
    ProductState,
    apply_changes,
    backordered_qty,
    build_view,
    changed_fields,
    check_cart,
    format_date,
    product_status,
    render,
    render_order_note,
    theme_selectors,
)


def errors_of(excinfo: pytest.ExceptionInfo[ValidationFailed]) -> list[dict]:
    return excinfo.value.details["errors"]


# ---------------------------------------------------------------- rendering

def test_placeholders_render_as_plain_text_without_escaping() -> None:
    assert render("In stock: {stock}", {"stock": 4}) == "In stock: 4"
    assert render("<script>alert(1)</script> {stock}", {"stock": 1}) == "<script>alert(1)</script> 1"


def test_sentence_with_absent_value_is_left_out() -> None:
    template = "On backorder. {salable_qty} more can be ordered."
    assert render(template, {"salable_qty": None}) == "On backorder."
    assert render(template, {"salable_qty": 3}) == "On backorder. 3 more can be ordered."
    assert render("{back_in_stock_date} is the date! Ships soon.", {"back_in_stock_date": None}) == "Ships soon."


def test_empty_string_value_keeps_its_sentence() -> None:
    assert render("{name} (SKU {sku})", {"name": "Mug", "sku": ""}) == "Mug (SKU )"


def test_line_breaks_separate_sentences() -> None:
    assert render("Backorder\nDate {back_in_stock_date}\nThanks", {"back_in_stock_date": None}) == "Backorder\nThanks"


@given(st.text(max_size=80), st.one_of(st.none(), st.integers(-5, 10**6)))
def test_render_never_leaves_a_known_placeholder(prefix: str, value: int | None) -> None:
    rendered = render(prefix.replace("{", "").replace("}", "") + " {stock}.", {"stock": value})
    assert "{stock}" not in rendered


@pytest.mark.parametrize(("fmt", "expected"), [("iso", "2026-12-01"), ("long", "December 1, 2026"),
                                                ("long_day_first", "1 December 2026")])
def test_dates_render_in_the_store_format(fmt: str, expected: str) -> None:
    assert format_date("2026-12-01", fmt) == expected


def test_missing_or_bad_date_is_absent() -> None:
    assert format_date("", "long") is None
    assert format_date("2026-13-40", "long") is None


# ---------------------------------------------------------------- settings validation

def test_defaults_are_valid_and_read_well_with_unlimited_threshold() -> None:
    apply_changes(DEFAULT_SETTINGS, {})
    view = build_view(ProductState(7, True, stock=0, threshold=None), 7, DEFAULT_SETTINGS)
    assert view.messages.inventory == "Out of stock, available on backorder."
    assert view.messages.shipping == "Ships as soon as new stock arrives."
    assert "{" not in view.messages.inventory + view.messages.shipping


def test_unknown_placeholder_is_reported_by_name_and_field() -> None:
    with pytest.raises(ValidationFailed) as excinfo:
        apply_changes(DEFAULT_SETTINGS, {"backorder_message": "Only {salable} left", "cart_message": "{stock} ok"})
    errors = errors_of(excinfo)
    assert {"field": "backorder_message", "reason": "unknown_placeholder", "placeholder": "salable"}.items() <= \
        errors[0].items()
    assert len(errors) == 1


def test_placeholder_allowed_in_one_field_is_unknown_in_another() -> None:
    with pytest.raises(ValidationFailed) as excinfo:
        apply_changes(DEFAULT_SETTINGS, {"in_stock_message": "{added_qty} added"})
    assert errors_of(excinfo)[0]["placeholder"] == "added_qty"


def test_length_limits_colour_and_range_are_checked_together() -> None:
    with pytest.raises(ValidationFailed) as excinfo:
        apply_changes(DEFAULT_SETTINGS, {
            "backorder_button_text": "x" * 41,
            "backorder_button_color": "red; background:url(x)",
            "low_stock_level": -1,
            "theme_id": "nope",
            "date_format": "yyyy",
            "allowed_origins": ["javascript:alert(1)"],
        })
    reasons = {(e["field"], e["reason"]) for e in errors_of(excinfo)}
    assert reasons == {
        ("backorder_button_text", "too_long"), ("backorder_button_color", "invalid_color"),
        ("low_stock_level", "out_of_range"), ("theme_id", "unknown_theme"),
        ("date_format", "unknown_date_format"), ("allowed_origins", "invalid_origin"),
    }


def test_colour_is_normalised_and_text_trimmed() -> None:
    updated = apply_changes(DEFAULT_SETTINGS, {"backorder_button_color": " #0a0b0c ", "in_stock_message": " Hi "})
    assert updated.backorder_button_color == "#0A0B0C"
    assert updated.in_stock_message == "Hi"
    assert changed_fields(DEFAULT_SETTINGS, updated) == ["in_stock_message", "backorder_button_color"]


def test_unsupported_theme_version_is_refused() -> None:
    with pytest.raises(ValidationFailed) as excinfo:
        apply_changes(DEFAULT_SETTINGS, {"theme_id": "cornerstone", "theme_version": "5.0.0"})
    assert errors_of(excinfo)[0]["field"] == "theme_version"


def test_reset_restores_defaults_before_changes() -> None:
    changed = apply_changes(DEFAULT_SETTINGS, {"in_stock_message": "Yes"})
    reset = apply_changes(changed, {"sold_out_button_text": "Gone"}, reset=True)
    assert reset.in_stock_message == DEFAULT_SETTINGS.in_stock_message
    assert reset.sold_out_button_text == "Gone"


# ---------------------------------------------------------------- themes

def test_every_theme_supports_its_last_two_versions_and_other_is_generic() -> None:
    for theme in THEMES:
        if theme.id == "other":
            assert theme_selectors("other") == GENERIC
            continue
        assert len(theme.versions) == 2
        assert theme.versions[0].selectors.add_to_cart_button


def test_custom_version_of_a_theme_uses_its_selectors() -> None:
    settings = apply_changes(DEFAULT_SETTINGS, {"theme_id": "roots", "custom_theme": True})
    assert settings.selectors == theme_selectors("roots")


# ---------------------------------------------------------------- status and views

@pytest.mark.parametrize(("stock", "threshold", "expected"), [
    (10, 5, "in_stock"), (5, 5, "low_stock"), (1, None, "low_stock"), (0, 5, "backorder"),
    (-4, 5, "backorder"), (-5, 5, "sold_out"), (0, 0, "sold_out"), (-100, None, "backorder"),
])
def test_status(stock: int, threshold: int | None, expected: str) -> None:
    assert product_status(ProductState(1, True, stock, threshold), low_stock_level=5) == expected


def test_low_stock_level_zero_disables_low_stock() -> None:
    assert product_status(ProductState(1, True, 1, 5), low_stock_level=0) == "in_stock"


def test_backorder_view_carries_button_and_shipping_date() -> None:
    state = ProductState(3, True, stock=-1, threshold=4, back_in_stock_date="2026-12-24", version=9)
    view = build_view(state, 3, DEFAULT_SETTINGS, settings_revision=2)
    assert view.status == "backorder"
    assert view.salable_qty == 3
    assert view.messages.inventory == "Out of stock, available on backorder. 3 more can be ordered."
    assert view.messages.shipping.endswith("Expected back in stock on December 24, 2026.")
    assert view.messages.button_text == "Backorder now"
    assert view.messages.button_color == "#9A3412"
    assert (view.version, view.settings_revision) == (9, 2)


def test_sold_out_view_uses_sold_out_texts() -> None:
    view = build_view(ProductState(3, True, stock=-4, threshold=4), 3, DEFAULT_SETTINGS)
    assert view.status == "sold_out"
    assert view.messages.button_text == "Sold out"
    assert view.messages.button_color == ""


def test_unassigned_and_unknown_products_show_nothing() -> None:
    assert build_view(None, 5, DEFAULT_SETTINGS).assigned is False
    view = build_view(ProductState(5, False, 10, 5, version=3), 5, DEFAULT_SETTINGS)
    assert view.assigned is False and view.messages.inventory == "" and view.version == 3


# ---------------------------------------------------------------- cart check

@given(st.integers(0, 1000), st.integers(-1000, 1000))
def test_backordered_qty_is_units_beyond_stock(quantity: int, stock: int) -> None:
    assert backordered_qty(quantity, stock) == max(0, quantity - max(stock, 0))


@given(st.lists(st.integers(1, 50), min_size=1, max_size=6), st.integers(0, 20), st.integers(-20, 40),
       st.one_of(st.none(), st.integers(0, 60)))
def test_lines_of_one_product_share_its_stock(quantities: list[int], in_cart: int, stock: int,
                                              threshold: int | None) -> None:
    state = ProductState(1, True, stock, threshold)
    lines = [CartLine(1, quantities[0], in_cart), *(CartLine(1, q) for q in quantities[1:])]
    result = check_cart(lines, {1: state}, DEFAULT_SETTINGS)
    total = in_cart + sum(quantities)
    assert result.backordered_qty == backordered_qty(total, stock) - backordered_qty(in_cart, stock)
    assert sum(line.backordered_qty for line in result.lines) == result.backordered_qty
    salable = state.salable_qty
    assert result.over_threshold == (salable is not None and total > salable)
    assert bool(result.mixed_cart_alert) == (result.backordered_qty > 0)


def test_mixed_cart_alert_names_added_and_backordered_counts() -> None:
    state = ProductState(1, True, stock=2, threshold=10)
    result = check_cart([CartLine(1, 5)], {1: state}, DEFAULT_SETTINGS)
    assert result.lines[0].backordered_qty == 3
    assert result.mixed_cart_alert.startswith("You added 5: 3 of them are on backorder")
    assert result.lines[0].cart_message.startswith("3 of 5 on backorder")
    assert not result.over_threshold


def test_over_salable_is_flagged_with_the_alert() -> None:
    state = ProductState(1, True, stock=2, threshold=3)
    result = check_cart([CartLine(1, 4, in_cart_qty=2)], {1: state}, DEFAULT_SETTINGS)
    assert result.over_threshold
    assert result.over_threshold_alert == (
        "Sorry, only 5 of this item can be ordered right now. You already have 2 in your cart.")
    alone = check_cart([CartLine(1, 6)], {1: state}, DEFAULT_SETTINGS)
    assert alone.over_threshold_alert == "Sorry, only 5 of this item can be ordered right now."


def test_sold_out_product_cannot_be_added() -> None:
    result = check_cart([CartLine(1, 1)], {1: ProductState(1, True, stock=-3, threshold=3)}, DEFAULT_SETTINGS)
    assert result.over_threshold
    assert result.over_threshold_alert.startswith("Sold out")


def test_products_that_are_not_ours_pass_through() -> None:
    result = check_cart([CartLine(9, 3)], {}, DEFAULT_SETTINGS)
    assert result.lines[0].assigned is False
    assert (result.backordered_qty, result.over_threshold, result.mixed_cart_alert) == (0, False, "")


@pytest.mark.parametrize("line", [CartLine(0, 1), CartLine(1, 0), CartLine(1, 2_000_000), CartLine(1, 1, -1)])
def test_bad_cart_lines_are_refused(line: CartLine) -> None:
    with pytest.raises(ValidationFailed):
        check_cart([line], {}, DEFAULT_SETTINGS)


# ---------------------------------------------------------------- order note and ids

def test_order_note_lists_only_backordered_lines() -> None:
    note = render_order_note([OrderNoteLine("Mug <b>", "M-1", 2), OrderNoteLine("Cup", "C", 0),
                              OrderNoteLine("Pot", "P", 1)], DEFAULT_SETTINGS)
    assert note.splitlines() == [
        "Backorder: 3 unit(s) in this order ship when back in stock.",
        "- Mug <b> (SKU M-1): 2 backordered",
        "- Pot (SKU P): 1 backordered",
    ]
    assert render_order_note([OrderNoteLine("Cup", "C", 0)], DEFAULT_SETTINGS) == ""


@pytest.mark.parametrize(("value", "ok"), [("abc123", True), ("ABC", False), ("a/b", False), ("", False),
                                           ("x" * 33, False)])
def test_store_hash_shape(value: str, ok: bool) -> None:
    assert valid_store_hash(value) is ok
