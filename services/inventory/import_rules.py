"""CSV import rows (DESIGN §3): parsing and checking each row, and what an update-mode row
does to a product. Pure code like domain.py: no I/O, no clock, no database; checks that
need the store (assigned or not, the plan limit) are the import handler's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from services.inventory.domain import MAX_QUANTITY, parse_date

MAX_IMPORT_ROWS = 200_000
INTEGER_PATTERN = re.compile(r"^[+-]?\d+$")
IMPORT_COLUMNS = ("product_id", "current_stock", "backorder_threshold", "incoming_stock", "back_in_stock_date")
OVERWRITABLE = ("stock", "threshold", "incoming_stock", "back_in_stock_date")


class ImportRowInput(NamedTuple):
    """One CSV row as the gateway sends it (text cells; name and the rest from the catalog).

    Named tuples rather than dataclasses: an import builds 100,000 of each, and a frozen
    dataclass costs several times more to construct."""

    row: int
    product_id: str
    current_stock: str
    backorder_threshold: str
    incoming_stock: str
    back_in_stock_date: str
    name: str = ""
    sku: str = ""
    category_ids: tuple[int, ...] = ()
    brand_id: int = 0


class ImportRowValues(NamedTuple):
    row: int
    product_id: int
    stock: int | None
    threshold: int | None
    incoming_stock: int | None
    back_in_stock_date: dt.date | None
    name: str = ""
    sku: str = ""
    category_ids: tuple[int, ...] = ()
    brand_id: int = 0


@dataclass
class ImportValidation:
    values: list[ImportRowValues] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, row: int, column: str, code: str, message: str) -> None:
        self.errors.append({"row": row, "column": column, "code": code, "message": message})


def _parse_whole(text: str) -> int:
    text = text.strip()
    # isdecimal() is exactly INTEGER_PATTERN without a sign (both mean Unicode digits, Nd),
    # and skips the regex for the usual cell.
    if not (text.isdecimal() or INTEGER_PATTERN.match(text)):
        raise ValueError("not a whole number")
    return int(text)


def _import_quantity(result: ImportValidation, row: int, column: str, text: str, allow_empty: bool) -> int | None:
    text = text.strip()
    if text == "":
        if not allow_empty:
            result.error(row, column, "required", "is required")
        return None
    try:
        number = _parse_whole(text)
    except ValueError:
        result.error(row, column, "not_integer", f"{text!r} is not a whole number")
        return None
    if number < 0:
        result.error(row, column, "negative", "must not be negative")
    elif number > MAX_QUANTITY:
        result.error(row, column, "out_of_range", f"must be ≤ {MAX_QUANTITY}")
    return number


def parse_import_rows(rows: Iterable[ImportRowInput], *, mode: str) -> ImportValidation:
    """Parse and check every row (format, ranges, duplicates). Store-dependent checks
    (assigned or not, plan limit) are done by the handler against the database."""
    result = ImportValidation()
    errors = result.errors
    seen: dict[int, int] = {}
    stock_optional = mode == "update"
    for raw in rows:
        row = raw.row
        errors_before = len(errors)
        product_id = 0
        try:
            product_id = _parse_whole(raw.product_id)
            if product_id <= 0:
                result.error(row, "product_id", "out_of_range", "must be a positive product id")
        except ValueError:
            result.error(row, "product_id", "not_integer" if raw.product_id.strip() else "required",
                         "must be a whole number" if raw.product_id.strip() else "is required")
        stock = _import_quantity(result, row, "current_stock", raw.current_stock, stock_optional)
        threshold = _import_quantity(result, row, "backorder_threshold", raw.backorder_threshold, True)
        incoming = _import_quantity(result, row, "incoming_stock", raw.incoming_stock, True)
        date = None
        date_text = raw.back_in_stock_date.strip()
        if date_text:
            try:
                date = parse_date(date_text)
            except ValueError:
                result.error(row, "back_in_stock_date", "invalid_date",
                             f"{raw.back_in_stock_date!r} is not YYYY-MM-DD")
        if product_id > 0:
            if product_id in seen:
                result.error(row, "product_id", "duplicate", f"product {product_id} is also on row {seen[product_id]}")
            else:
                seen[product_id] = row
        if len(errors) == errors_before:
            result.values.append(ImportRowValues(row, product_id, stock, threshold, incoming, date, raw.name, raw.sku,
                                                 raw.category_ids, raw.brand_id))
    return result


def import_update(stock: int, threshold: int | None, incoming_stock: int, back_in_stock_date: dt.date | None,
                  value: ImportRowValues, overwrite: Collection[str]) -> tuple[str, int, int | None, int,
                                                                             dt.date | None, str] | None:
    """What an update-mode import row does to a product with these values: (kind, stock,
    threshold, incoming_stock, back_in_stock_date, note), or None when it changes nothing.

    The same rules as an admin edit of the columns in `overwrite`: a stock in the file is an
    absolute "set" entry (even to the same number); otherwise changed columns are an "edit"
    entry; the note names the changed columns other than stock. An empty threshold means
    unlimited and an empty incoming stock 0."""
    edited = []
    if "threshold" in overwrite and value.threshold != threshold:
        threshold = value.threshold
        edited.append("threshold")
    new_incoming = value.incoming_stock or 0
    if "incoming_stock" in overwrite and new_incoming != incoming_stock:
        incoming_stock = new_incoming
        edited.append("incoming_stock")
    if "back_in_stock_date" in overwrite and value.back_in_stock_date != back_in_stock_date:
        back_in_stock_date = value.back_in_stock_date
        edited.append("back_in_stock_date")
    note = "edited: " + ", ".join(edited) if edited else ""
    if value.stock is not None and "stock" in overwrite:
        return "set", value.stock, threshold, incoming_stock, back_in_stock_date, note
    if edited:
        return "edit", stock, threshold, incoming_stock, back_in_stock_date, note
    return None
