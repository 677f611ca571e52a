"""Reading catalog documents and an inventory item's settings row (the storage every catalog
and inventory use case shares)."""

from __future__ import annotations

import json
from typing import Any

from sandbox.bigcommerce.core import Sandbox
from sandbox.bigcommerce.errors import not_found


def product_row(sb: Sandbox, store_hash: str, product_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    row = sb.db.one("SELECT doc, options FROM products WHERE store_hash = ? AND id = ?", (store_hash, product_id))
    if row is None:
        raise not_found(f"The product with ID {product_id} was not found")
    return json.loads(row["doc"]), json.loads(row["options"])


def variants_of(sb: Sandbox, product_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = {pid: [] for pid in product_ids}
    for start in range(0, len(product_ids), 500):
        chunk = product_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in sb.db.all(f"SELECT product_id, doc FROM variants WHERE product_id IN ({marks}) ORDER BY id", chunk):
            grouped[row["product_id"]].append(json.loads(row["doc"]))
    return grouped


def variant_row(sb: Sandbox, store_hash: str, variant_id: int) -> dict[str, Any]:
    return sb.db.required_doc("SELECT doc FROM variants WHERE store_hash = ? AND id = ?", (store_hash, variant_id),
                              missing=f"The variant with ID {variant_id} was not found")


def item_settings(sb: Sandbox, store_hash: str, product_id: int, variant_id: int, **updates: Any
                  ) -> dict[str, Any]:
    """One inventory item's settings row (created on first use), after applying `updates` to its columns."""
    sb.db.execute("INSERT OR IGNORE INTO inventory_items (store_hash, product_id, variant_id, location_id) "
                  "VALUES (?, ?, ?, 1)", (store_hash, product_id, variant_id))
    for column, value in updates.items():
        sb.db.execute(f"UPDATE inventory_items SET {column} = ? WHERE store_hash = ? AND product_id = ? "
                      "AND variant_id = ? AND location_id = 1", (value, store_hash, product_id, variant_id))
    return dict(sb.db.row("SELECT * FROM inventory_items WHERE store_hash = ? AND product_id = ? AND variant_id = ? "
                          "AND location_id = 1", (store_hash, product_id, variant_id)))

