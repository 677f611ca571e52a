"""Storefront rules: the theme collection, settings (defaults and validation), message
rendering, product views, cart checks and the order note. Pure: no I/O.

Rendering produces plain text. Merchant texts may contain anything (even `<script>`); it is
the script's job to insert them with `textContent`, and the JSON encoder of the gateway
escapes `<`, `>` and `&`. Colours are the only values that reach CSS and they are checked
against `#RRGGBB`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any

from services.common import product_status as status_rule
from services.common.errors import ValidationFailed

# ---------------------------------------------------------------- themes


@dataclass(frozen=True)
class Selectors:
    """CSS selector lists the storefront script uses (first match wins)."""

    product_view: str
    product_id_input: str
    add_to_cart_form: str
    add_to_cart_button: str
    quantity_input: str
    message_anchor: str
    stock_label: str
    cart_line: str
    cart_line_product: str
    cart_line_message_anchor: str

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Each hook as (Cornerstone 6.x, "Other"). Cornerstone: REFERENCE.md §8,
# templates/components/products/product-view.html, add-to-cart.html and
# templates/components/cart/content.html; 6.20 and 6.21 share these hooks. "Other": generic
# selectors that match Stencil themes and most hand-made product forms.
_HOOKS: dict[str, tuple[str, str]] = {
    "product_view": (".productView", '.productView, [data-product-view], [itemtype$="/Product"], main'),
    "product_id_input": ('form[data-cart-item-add] input[name="product_id"]',
                         'input[name="product_id"], [data-product-id]'),
    "add_to_cart_form": ("form[data-cart-item-add]",
                         'form[data-cart-item-add], form[action*="cart.php"], form[action*="/cart"]'),
    "add_to_cart_button": ("#form-action-addToCart",
                           '#form-action-addToCart, form[data-cart-item-add] [type="submit"], '
                           'form[action*="cart.php"] [type="submit"], [data-button-type="add-cart"]'),
    "quantity_input": ('form[data-cart-item-add] input[name="qty[]"]',
                       'input[name="qty[]"], input[name="quantity"], input[name="qty"]'),
    "message_anchor": (".form-field--stock", ".form-field--stock, .productView-info, "
                                             "[data-product-price-without-tax], form[data-cart-item-add]"),
    "stock_label": (".form-field--stock", ".form-field--stock"),
    "cart_line": ("tr.cart-item[data-item-row]", "tr.cart-item, [data-item-row], .cart-item, [data-cart-item]"),
    "cart_line_product": ("[data-product-id]", "[data-product-id]"),
    "cart_line_message_anchor": (".cart-item-title",
                                 ".cart-item-title, .cart-item-name, td:nth-child(2), :scope > *"),
}
CORNERSTONE = Selectors(**{hook: selectors[0] for hook, selectors in _HOOKS.items()})
GENERIC = Selectors(**{hook: selectors[1] for hook, selectors in _HOOKS.items()})

# Cornerstone before 6.12 put the stock label in .productView-info and the button had no id
# on some variations; derived themes built on those versions keep that markup.
CORNERSTONE_LEGACY = replace(
    CORNERSTONE,
    add_to_cart_button='#form-action-addToCart, form[data-cart-item-add] [type="submit"]',
    message_anchor=".form-field--stock, .productView-info",
)


@dataclass(frozen=True)
class ThemeVersion:
    """One release of a theme and the hooks its markup offers."""

    version: str
    selectors: Selectors


@dataclass(frozen=True)
class Theme:
    id: str
    name: str
    vendor: str
    versions: tuple[ThemeVersion, ...]  # newest first; only the last two are supported
    based_on: str = ""

    def selectors(self, version: str = "") -> Selectors:
        for candidate in self.versions:
            if candidate.version == version:
                return candidate.selectors
        return self.versions[0].selectors


OTHER_THEME_ID = "other"

# Cornerstone and the popular themes built on it (REFERENCE.md §8). Derived themes keep
# Cornerstone's data-attribute hooks; the Cornerstone release each version tracks decides
# which hook set applies.
THEMES: tuple[Theme, ...] = (
    Theme("cornerstone", "Cornerstone", "BigCommerce",
          (ThemeVersion("6.21.0", CORNERSTONE), ThemeVersion("6.20.0", CORNERSTONE))),
    Theme("roots", "Roots", "Weizen Young",
          (ThemeVersion("2.1", CORNERSTONE), ThemeVersion("2.0", CORNERSTONE_LEGACY)), based_on="cornerstone"),
    Theme("chiara", "Chiara", "PapaThemes",
          (ThemeVersion("6.0", CORNERSTONE), ThemeVersion("5.9", CORNERSTONE_LEGACY)), based_on="cornerstone"),
    Theme("supermarket", "Supermarket", "PapaThemes",
          (ThemeVersion("6.0", CORNERSTONE), ThemeVersion("5.9", CORNERSTONE_LEGACY)), based_on="cornerstone"),
    Theme(OTHER_THEME_ID, "Other", "", (ThemeVersion("", GENERIC),)),
)
THEMES_BY_ID: dict[str, Theme] = {theme.id: theme for theme in THEMES}


def theme_selectors(theme_id: str, version: str = "") -> Selectors:
    """Selectors in force; "custom version of X" uses X's, unknown ids the generic ones."""
    theme = THEMES_BY_ID.get(theme_id)
    return theme.selectors(version) if theme is not None else GENERIC


# ---------------------------------------------------------------- settings

PRODUCT_PLACEHOLDERS = frozenset({"stock", "threshold", "salable_qty", "incoming_stock", "back_in_stock_date"})
MIXED_CART_PLACEHOLDERS = frozenset({"added_qty", "backordered_qty", "in_stock_qty", "stock", "back_in_stock_date"})
OVER_THRESHOLD_PLACEHOLDERS = frozenset({"requested_qty", "salable_qty", "stock", "threshold", "in_cart_qty"})
CART_PLACEHOLDERS = frozenset({"backordered_qty", "quantity", "stock", "back_in_stock_date"})
ORDER_NOTE_PLACEHOLDERS = frozenset({"backordered_lines", "backordered_qty"})
ORDER_NOTE_LINE_PLACEHOLDERS = frozenset({"name", "sku", "backordered_qty"})
NO_PLACEHOLDERS: frozenset[str] = frozenset()

DATE_FORMATS = ("iso", "long", "long_day_first")
MESSAGE_MAX = 300
BUTTON_MAX = 40
LOW_STOCK_LEVEL_MAX = 1_000_000
ORIGINS_MAX = 20
ORIGIN_MAX = 255

# field -> (max length, allowed placeholders) for every text field.
TEXT_FIELDS: dict[str, tuple[int, frozenset[str]]] = {
    "in_stock_message": (MESSAGE_MAX, PRODUCT_PLACEHOLDERS),
    "low_stock_message": (MESSAGE_MAX, PRODUCT_PLACEHOLDERS),
    "backorder_message": (MESSAGE_MAX, PRODUCT_PLACEHOLDERS),
    "shipping_message": (MESSAGE_MAX, PRODUCT_PLACEHOLDERS),
    "sold_out_message": (MESSAGE_MAX, PRODUCT_PLACEHOLDERS),
    "backorder_button_text": (BUTTON_MAX, NO_PLACEHOLDERS),
    "sold_out_button_text": (BUTTON_MAX, NO_PLACEHOLDERS),
    "mixed_cart_alert": (MESSAGE_MAX, MIXED_CART_PLACEHOLDERS),
    "over_threshold_alert": (MESSAGE_MAX, OVER_THRESHOLD_PLACEHOLDERS),
    "cart_message": (MESSAGE_MAX, CART_PLACEHOLDERS),
    "order_note_message": (MESSAGE_MAX, ORDER_NOTE_PLACEHOLDERS),
    "order_note_line": (MESSAGE_MAX, ORDER_NOTE_LINE_PLACEHOLDERS),
}
COLOR_FIELDS = ("backorder_button_color", "backorder_button_text_color")


@dataclass(frozen=True)
class Settings:
    """A store's storefront settings. The defaults read well out of the box."""

    theme_id: str = "cornerstone"
    theme_version: str = ""
    custom_theme: bool = False
    in_stock_message: str = "In stock: {stock} available."
    low_stock_level: int = 5
    low_stock_message: str = "Only {stock} left in stock. Order soon!"
    backorder_message: str = "Out of stock, available on backorder. {salable_qty} more can be ordered."
    shipping_message: str = (
        "Ships as soon as new stock arrives. Expected back in stock on {back_in_stock_date}."
    )
    sold_out_message: str = "Sold out. This item cannot be ordered right now."
    backorder_button_text: str = "Backorder now"
    backorder_button_color: str = "#9A3412"
    backorder_button_text_color: str = "#FFFFFF"
    sold_out_button_text: str = "Sold out"
    mixed_cart_alert: str = (
        "You added {added_qty}: {backordered_qty} of them are on backorder and will ship when back in stock. "
        "Expected back in stock on {back_in_stock_date}."
    )
    over_threshold_alert: str = (
        "Sorry, only {salable_qty} of this item can be ordered right now. You already have {in_cart_qty} in your cart."
    )
    cart_message: str = (
        "{backordered_qty} of {quantity} on backorder: ships when back in stock. "
        "Expected on {back_in_stock_date}."
    )
    order_note_message: str = "Backorder: {backordered_qty} unit(s) in this order ship when back in stock."
    order_note_line: str = "- {name} (SKU {sku}): {backordered_qty} backordered"
    date_format: str = "long"
    allowed_origins: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["allowed_origins"] = list(self.allowed_origins)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Settings:
        """Stored values over the defaults; unknown keys (from newer versions) are ignored."""
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in values.items() if k in known}
        if "allowed_origins" in kept:
            kept["allowed_origins"] = tuple(kept["allowed_origins"])
        return cls(**kept)

    @property
    def selectors(self) -> Selectors:
        return theme_selectors(self.theme_id, self.theme_version)


DEFAULT_SETTINGS = Settings()
SETTINGS_FIELDS = tuple(f.name for f in fields(Settings))

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
# Control characters other than line breaks and tabs are refused.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def placeholders_in(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def validate_settings(settings: Settings) -> None:
    """Raise ValidationFailed listing every bad field (with the unknown placeholder's name)."""
    errors: list[dict[str, Any]] = []
    theme = THEMES_BY_ID.get(settings.theme_id)
    if theme is None:
        errors.append({"field": "theme_id", "reason": "unknown_theme", "value": settings.theme_id[:50],
                       "allowed": [t.id for t in THEMES]})
    elif settings.theme_version and settings.theme_version not in {v.version for v in theme.versions}:
        errors.append({"field": "theme_version", "reason": "unsupported_version",
                       "allowed": [v.version for v in theme.versions if v.version]})
    for name, (max_length, allowed) in TEXT_FIELDS.items():
        value = getattr(settings, name)
        if len(value) > max_length:
            errors.append({"field": name, "reason": "too_long", "max_length": max_length, "length": len(value)})
        if _CONTROL.search(value):
            errors.append({"field": name, "reason": "control_character"})
        for placeholder in placeholders_in(value):
            if placeholder not in allowed:
                errors.append({"field": name, "reason": "unknown_placeholder", "placeholder": placeholder[:50],
                               "allowed": sorted(allowed)})
    for name in COLOR_FIELDS:
        if not _COLOR.match(getattr(settings, name)):
            errors.append({"field": name, "reason": "invalid_color", "expected": "#RRGGBB"})
    if not 0 <= settings.low_stock_level <= LOW_STOCK_LEVEL_MAX:
        errors.append({"field": "low_stock_level", "reason": "out_of_range", "min": 0, "max": LOW_STOCK_LEVEL_MAX})
    if settings.date_format not in DATE_FORMATS:
        errors.append({"field": "date_format", "reason": "unknown_date_format", "allowed": list(DATE_FORMATS)})
    if len(settings.allowed_origins) > ORIGINS_MAX:
        errors.append({"field": "allowed_origins", "reason": "too_many", "max_items": ORIGINS_MAX})
    for index, origin in enumerate(settings.allowed_origins):
        if len(origin) > ORIGIN_MAX or not _ORIGIN.match(origin):
            errors.append({"field": "allowed_origins", "item": index, "reason": "invalid_origin",
                           "expected": "https://host[:port]"})
    if errors:
        fields_named = ", ".join(dict.fromkeys(e["field"] for e in errors))
        raise ValidationFailed(f"invalid storefront settings: {fields_named}", errors=errors)


def apply_changes(current: Settings, changes: Mapping[str, Any], *, reset: bool = False) -> Settings:
    """New settings: `changes` over `current` (or over the defaults when `reset`), validated."""
    base = DEFAULT_SETTINGS if reset else current
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValidationFailed("unknown settings field", errors=[{"field": f, "reason": "unknown_field"}
                                                                  for f in unknown])
    values = dict(changes)
    if "allowed_origins" in values:
        values["allowed_origins"] = tuple(o.strip().rstrip("/") for o in values["allowed_origins"])
    for name in TEXT_FIELDS:
        if name in values:
            values[name] = values[name].strip()
    for name in COLOR_FIELDS:
        if name in values:
            values[name] = values[name].strip().upper()
    updated = replace(base, **values)
    validate_settings(updated)
    return updated


def changed_fields(before: Settings, after: Settings) -> list[str]:
    return [name for name in SETTINGS_FIELDS if getattr(before, name) != getattr(after, name)]


# ---------------------------------------------------------------- rendering

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
# A sentence ends at ., ! or ? followed by white space, or at a line break.
_SENTENCE_BREAK = re.compile(r"((?<=[.!?])[ \t]+|\n)")


def format_date(iso: str, date_format: str) -> str | None:
    """`YYYY-MM-DD` in the store's format; None when absent or malformed."""
    if not iso:
        return None
    try:
        day = date.fromisoformat(iso)
    except ValueError:
        return None
    if date_format == "long":
        return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"
    if date_format == "long_day_first":
        return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
    return day.isoformat()


def render(template: str, values: Mapping[str, object | None]) -> str:
    """Fill `{name}` placeholders with plain text.

    A value of None means "absent" (unlimited threshold, no back-in-stock date): the
    sentence holding that placeholder is left out, so "On backorder. {salable_qty} more can
    be ordered." reads "On backorder." when the threshold is unlimited. Unknown
    placeholders (validation prevents them) render empty. No escaping happens here.
    """
    pieces = _SENTENCE_BREAK.split(template)
    kept: list[str] = []
    for index in range(0, len(pieces), 2):
        sentence = pieces[index]
        separator = pieces[index + 1] if index + 1 < len(pieces) else ""
        names = placeholders_in(sentence)
        if any(name in values and values[name] is None for name in names):
            continue
        text = _PLACEHOLDER.sub(lambda m: _as_text(values.get(m.group(1))), sentence)
        if text.strip() or separator == "\n":
            kept.append(text + separator)
    return "".join(kept).strip()


def _as_text(value: object | None) -> str:
    return "" if value is None else str(value)


# ---------------------------------------------------------------- product views

@dataclass(frozen=True)
class ProductState:
    """What inventory told us about one product (from its events)."""

    product_id: int
    assigned: bool
    stock: int = 0
    threshold: int | None = None  # None = unlimited
    incoming_stock: int = 0
    back_in_stock_date: str = ""
    version: int = 0
    name: str = ""
    sku: str = ""

    @property
    def salable_qty(self) -> int | None:
        return status_rule.salable_qty(self.stock, self.threshold)


@dataclass(frozen=True)
class ProductMessages:
    """The texts a product page shows for the product's status ("" = nothing shown)."""

    inventory: str = ""
    shipping: str = ""
    button_text: str = ""
    button_color: str = ""
    button_text_color: str = ""


@dataclass(frozen=True)
class ProductView:
    product_id: int
    assigned: bool
    status: str = ""
    stock: int = 0
    threshold: int | None = None
    salable_qty: int | None = None
    incoming_stock: int = 0
    back_in_stock_date: str = ""
    messages: ProductMessages = field(default_factory=ProductMessages)
    version: int = 0
    settings_revision: int = 0


def product_status(state: ProductState, low_stock_level: int) -> str:
    """The shared status rule (services.common.product_status) for one product's state."""
    return status_rule.product_status(state.stock, state.threshold, low_stock_level)


def product_values(state: ProductState, settings: Settings) -> dict[str, object | None]:
    return {
        "stock": max(state.stock, 0),
        "threshold": state.threshold,
        "salable_qty": None if state.salable_qty is None else max(state.salable_qty, 0),
        "incoming_stock": state.incoming_stock or None,
        "back_in_stock_date": format_date(state.back_in_stock_date, settings.date_format),
    }


def build_view(state: ProductState | None, product_id: int, settings: Settings, settings_revision: int = 0) -> ProductView:
    """The storefront view of one product; unassigned or unknown products show nothing."""
    if state is None or not state.assigned:
        return ProductView(product_id=product_id, assigned=False,
                           version=state.version if state else 0, settings_revision=settings_revision)
    status = product_status(state, settings.low_stock_level)
    values = product_values(state, settings)
    if status == status_rule.SOLD_OUT:
        messages = ProductMessages(inventory=render(settings.sold_out_message, values),
                                   button_text=settings.sold_out_button_text)
    elif status == status_rule.BACKORDER:
        messages = ProductMessages(
            inventory=render(settings.backorder_message, values),
            shipping=render(settings.shipping_message, values),
            button_text=settings.backorder_button_text,
            button_color=settings.backorder_button_color,
            button_text_color=settings.backorder_button_text_color,
        )
    elif status == status_rule.LOW_STOCK:
        messages = ProductMessages(inventory=render(settings.low_stock_message, values))
    else:
        messages = ProductMessages(inventory=render(settings.in_stock_message, values))
    return ProductView(
        product_id=product_id, assigned=True, status=status, stock=state.stock, threshold=state.threshold,
        salable_qty=state.salable_qty, incoming_stock=state.incoming_stock,
        back_in_stock_date=state.back_in_stock_date, messages=messages, version=state.version,
        settings_revision=settings_revision,
    )


# ---------------------------------------------------------------- cart check


def backordered_qty(quantity: int, stock: int) -> int:
    """Units of an order line of `quantity` beyond stock (DESIGN §3)."""
    return quantity - min(quantity, max(stock, 0))


@dataclass(frozen=True)
class CartLine:
    product_id: int
    quantity: int
    in_cart_qty: int = 0


@dataclass(frozen=True)
class CartLineResult:
    product_id: int
    quantity: int
    assigned: bool
    backordered_qty: int = 0
    over_threshold: bool = False
    alert: str = ""
    cart_message: str = ""


@dataclass(frozen=True)
class CartCheck:
    lines: tuple[CartLineResult, ...]
    mixed_cart_alert: str
    over_threshold: bool
    over_threshold_alert: str
    cart_message: str
    backordered_qty: int
    added_qty: int


MAX_CART_LINES = 100
MAX_QUANTITY = 1_000_000


def validate_cart(lines: Iterable[CartLine]) -> list[CartLine]:
    checked = list(lines)
    errors: list[dict[str, Any]] = []
    if not checked:
        errors.append({"field": "lines", "reason": "empty"})
    if len(checked) > MAX_CART_LINES:
        errors.append({"field": "lines", "reason": "too_many", "max_items": MAX_CART_LINES})
    for index, line in enumerate(checked[:MAX_CART_LINES]):
        if line.product_id <= 0:
            errors.append({"field": "product_id", "item": index, "reason": "must_be_positive"})
        if not 1 <= line.quantity <= MAX_QUANTITY:
            errors.append({"field": "quantity", "item": index, "reason": "out_of_range", "min": 1, "max": MAX_QUANTITY})
        if not 0 <= line.in_cart_qty <= MAX_QUANTITY:
            errors.append({"field": "in_cart_qty", "item": index, "reason": "out_of_range", "min": 0,
                           "max": MAX_QUANTITY})
    if errors:
        raise ValidationFailed("invalid cart", errors=errors)
    return checked


def check_cart(lines: Iterable[CartLine], states: Mapping[int, ProductState], settings: Settings) -> CartCheck:
    """Split each line into in-stock and backordered units and flag lines over salable.

    Lines of the same product share its stock in order (a line's units come after the
    `in_cart_qty` already in the cart and after earlier lines of that product).
    """
    checked = validate_cart(lines)
    taken: dict[int, int] = {}
    results: list[CartLineResult] = []
    total_added = total_backordered = 0
    first_backordered: ProductState | None = None
    first_alert = ""
    for line in checked:
        state = states.get(line.product_id)
        if state is None or not state.assigned:
            results.append(CartLineResult(line.product_id, line.quantity, assigned=False))
            total_added += line.quantity
            continue
        before = taken.get(line.product_id, 0) + line.in_cart_qty
        after = before + line.quantity
        taken[line.product_id] = after
        backordered = backordered_qty(after, state.stock) - backordered_qty(before, state.stock)
        salable = state.salable_qty
        over = salable is not None and after > salable
        values = product_values(state, settings)
        alert = ""
        if over:
            if salable is not None and salable <= 0:
                alert = render(settings.sold_out_message, values)
            else:
                alert = render(settings.over_threshold_alert, {
                    **values, "requested_qty": after, "in_cart_qty": before or None,
                })
            first_alert = first_alert or alert
        message = ""
        if backordered > 0:
            first_backordered = first_backordered or state
            message = render(settings.cart_message, {
                **values, "backordered_qty": backordered, "quantity": line.quantity,
            })
        total_added += line.quantity
        total_backordered += backordered
        results.append(CartLineResult(line.product_id, line.quantity, True, backordered, over, alert, message))
    mixed_alert = cart_message = ""
    if total_backordered > 0 and first_backordered is not None:
        first_values = product_values(first_backordered, settings)
        mixed_alert = render(settings.mixed_cart_alert, {
            "added_qty": total_added, "backordered_qty": total_backordered,
            "in_stock_qty": total_added - total_backordered, "stock": first_values["stock"],
            "back_in_stock_date": first_values["back_in_stock_date"],
        })
        cart_message = render(settings.cart_message, {
            "backordered_qty": total_backordered, "quantity": total_added, "stock": first_values["stock"],
            "back_in_stock_date": first_values["back_in_stock_date"],
        })
    return CartCheck(tuple(results), mixed_alert, bool(first_alert), first_alert, cart_message,
                     total_backordered, total_added)


# ---------------------------------------------------------------- order note


@dataclass(frozen=True)
class OrderNoteLine:
    name: str
    sku: str
    backordered_qty: int


def render_order_note(lines: Iterable[OrderNoteLine], settings: Settings) -> str:
    """Plain-text staff note for the backordered lines; "" when nothing is backordered."""
    backordered = [line for line in lines if line.backordered_qty > 0]
    if not backordered:
        return ""
    header = render(settings.order_note_message, {
        "backordered_lines": len(backordered),
        "backordered_qty": sum(line.backordered_qty for line in backordered),
    })
    body = [render(settings.order_note_line, {"name": line.name, "sku": line.sku,
                                              "backordered_qty": line.backordered_qty})
            for line in backordered]
    return "\n".join(part for part in [header, *body] if part)


# ---------------------------------------------------------------- ids

MAX_PRODUCT_ID = 2**53 - 1


def valid_product_id(product_id: int) -> bool:
    return 0 < product_id <= MAX_PRODUCT_ID
