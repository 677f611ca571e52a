"""Product lists: BigCommerce's documented filters as SQL over the stored documents, sorting
and paging (with the page caches of `Sandbox`)."""

from __future__ import annotations

from typing import Any

from sandbox.bigcommerce.catalog_fields import int_list, parse_utc_iso, split_csv
from sandbox.bigcommerce.core import Sandbox
from sandbox.bigcommerce.errors import unprocessable


def product_filters(params: dict[str, str]) -> tuple[str, list[Any]]:
    """Translate BigCommerce's documented product filters into SQL over the stored documents."""
    clauses: list[str] = []
    args: list[Any] = []

    def field(name: str) -> str:
        return f"json_extract(doc, '$.{name}')"

    for key, value in params.items():
        if key in ("id:in", "id:not_in"):
            ids = int_list(value, key)
            marks = ",".join("?" * len(ids)) or "NULL"
            clauses.append(f"id {'NOT IN' if key.endswith('not_in') else 'IN'} ({marks})")
            args += ids
        elif key in ("id", "id:min", "id:max", "id:greater", "id:less"):
            op = {"id": "=", "id:min": ">=", "id:max": "<=", "id:greater": ">", "id:less": "<"}[key]
            clauses.append(f"id {op} ?")
            args.append(int_list(value, key)[0] if int_list(value, key) else 0)
        elif key == "sku":
            clauses.append(f"{field('sku')} = ?")
            args.append(value)
        elif key == "sku:in":
            skus = split_csv(value)
            clauses.append(f"{field('sku')} IN ({','.join('?' * len(skus)) or 'NULL'})")
            args += skus
        elif key == "name":
            clauses.append(f"{field('name')} = ?")
            args.append(value)
        elif key == "name:like":
            clauses.append(f"{field('name')} LIKE ?")
            args.append(f"%{value}%")
        elif key == "keyword":
            clauses.append(f"({field('name')} LIKE ? OR {field('sku')} LIKE ? OR {field('description')} LIKE ?"
                           f" OR {field('search_keywords')} LIKE ?)")
            args += [f"%{value}%"] * 4
        elif key in ("brand_id", "type", "availability", "inventory_tracking"):
            clauses.append(f"{field(key)} = ?")
            args.append(int_list(value, key)[0] if key == "brand_id" and int_list(value, key) else value)
        elif key in ("is_visible", "is_featured", "is_free_shipping"):
            clauses.append(f"{field(key)} = ?")
            args.append(1 if value.lower() in ("1", "true") else 0)
        elif key in ("categories", "categories:in"):
            ids = int_list(value, key)
            marks = ",".join("?" * len(ids)) or "NULL"
            clauses.append(f"EXISTS (SELECT 1 FROM json_each(doc, '$.categories') WHERE value IN ({marks}))")
            args += ids
        elif key.startswith("inventory_level"):
            suffix = key.partition(":")[2]
            if suffix in ("in", "not_in"):
                levels = int_list(value, key)
                marks = ",".join("?" * len(levels)) or "NULL"
                clauses.append(f"{field('inventory_level')} {'NOT IN' if suffix == 'not_in' else 'IN'} ({marks})")
                args += levels
            else:
                level_op = {"": "=", "min": ">=", "max": "<=", "greater": ">", "less": "<"}.get(suffix)
                if level_op is None:
                    continue
                clauses.append(f"{field('inventory_level')} {level_op} ?")
                args.append(int_list(value, key)[0])
        elif key == "inventory_low":
            low = f"{field('inventory_level')} <= {field('inventory_warning_level')}"
            clauses.append(f"({field('inventory_tracking')} != 'none' AND {low})" if value == "1"
                           else f"NOT ({low})")
        elif key == "out_of_stock" and value == "1":
            clauses.append(f"({field('inventory_tracking')} != 'none' AND {field('inventory_level')} = 0)")
        elif key.startswith("date_modified") or key.startswith("date_last_imported"):
            date_op = {"": "=", "min": ">=", "max": "<="}.get(key.partition(":")[2])
            if date_op is None:
                continue
            clauses.append(f"{field('date_modified')} {date_op} ?")
            args.append(parse_utc_iso(value, key))
        elif key in ("price", "weight"):
            try:
                number = float(value)
            except ValueError as exc:
                raise unprocessable(f"Invalid value for {key}", {key: "must be a number"}) from exc
            clauses.append(f"{field(key)} = ?")
            args.append(number)
    return (" AND ".join(clauses), args)


SORTABLE = {"id", "name", "sku", "price", "date_modified", "date_last_imported", "inventory_level", "is_visible",
            "total_sold", "calculated_price"}


def list_products(sb: Sandbox, store_hash: str, params: dict[str, str], page: int, limit: int
                  ) -> tuple[list[str], int]:
    """One page of product documents (stored JSON text) and the filtered total."""
    where, args = product_filters(params)
    sort = params.get("sort", "id")
    if sort not in SORTABLE:
        raise unprocessable("Invalid sort field", {"sort": f"must be one of {', '.join(sorted(SORTABLE))}"})
    direction = "DESC" if params.get("direction", "asc").lower() == "desc" else "ASC"
    order = f"id {direction}" if sort == "id" else f"json_extract(doc, '$.{sort}') {direction}, id"
    sql_where = "store_hash = ?" + (f" AND {where}" if where else "")
    plain = not where and order == "id ASC"
    version = sb.product_set_version.get(store_hash, 0)
    total = sb.product_counts.get((store_hash, version)) if plain else None
    if total is None:
        total = sb.db.scalar(f"SELECT COUNT(*) FROM products WHERE {sql_where}", [store_hash, *args])
        if plain:
            sb.product_counts[(store_hash, version)] = total
    # A full pull asks for page after page: continuing from the previous page's last id keeps each
    # request O(page size) instead of walking the whole offset.
    mark = sb.page_marks.get((store_hash, version, limit, page - 1)) if plain and page > 1 else None
    if mark is not None:
        ids = [row[0] for row in sb.db.all("SELECT id FROM products WHERE store_hash = ? AND id > ? ORDER BY id "
                                           "LIMIT ?", (store_hash, mark, limit))]
    else:
        # Ids first: without JSON filters this walks only the (store_hash, id) index.
        ids = [row[0] for row in sb.db.all(
            f"SELECT id FROM products WHERE {sql_where} ORDER BY {order} LIMIT ? OFFSET ?",
            [store_hash, *args, limit, (page - 1) * limit])]
    if not ids:
        return [], total
    if plain:
        if len(sb.page_marks) > 50_000:
            sb.page_marks.clear()
        sb.page_marks[(store_hash, version, limit, page)] = ids[-1]
    docs: dict[int, str] = {row[0]: row[1] for row in sb.db.all(
        f"SELECT id, doc FROM products WHERE id IN ({','.join('?' * len(ids))})", ids)}
    return [docs[product_id] for product_id in ids], total
