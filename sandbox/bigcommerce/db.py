"""The sandbox's own SQLite file.

Resources are stored as JSON documents (the public BigCommerce shape) next to the few columns
used for lookups, so list endpoints can return stored text without re-encoding it. One
connection is used from the event loop thread only; statements are short, so blocking the
loop for them is acceptable in an emulator.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.bigcommerce.errors import not_found

SCHEMA = """
CREATE TABLE IF NOT EXISTS stores (
    hash TEXT PRIMARY KEY, store_id TEXT NOT NULL, name TEXT NOT NULL, timezone TEXT NOT NULL,
    native_backorders INTEGER NOT NULL DEFAULT 0, quota INTEGER, window_ms INTEGER NOT NULL DEFAULT 30000,
    webhook_time_scale REAL, inventory_settings TEXT NOT NULL, account_uuid TEXT NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, store_hash TEXT NOT NULL, client_id TEXT NOT NULL, scope TEXT NOT NULL,
    user_json TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS oauth_codes (
    code TEXT PRIMARY KEY, store_hash TEXT NOT NULL, client_id TEXT NOT NULL, scope TEXT NOT NULL,
    user_json TEXT NOT NULL, expires_at REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS brands (id INTEGER PRIMARY KEY AUTOINCREMENT, store_hash TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS categories (
    id INTEGER PRIMARY KEY AUTOINCREMENT, store_hash TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY AUTOINCREMENT, store_hash TEXT NOT NULL, doc TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS products_by_store ON products(store_hash, id);
CREATE INDEX IF NOT EXISTS products_by_sku ON products(store_hash, json_extract(doc, '$.sku'));
CREATE TABLE IF NOT EXISTS variants (
    id INTEGER PRIMARY KEY AUTOINCREMENT, store_hash TEXT NOT NULL, product_id INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS variants_by_product ON variants(product_id);
CREATE TABLE IF NOT EXISTS inventory_items (
    store_hash TEXT NOT NULL, product_id INTEGER NOT NULL, variant_id INTEGER NOT NULL, location_id INTEGER NOT NULL,
    safety_stock INTEGER NOT NULL DEFAULT 0, is_in_stock INTEGER NOT NULL DEFAULT 1,
    warning_level INTEGER NOT NULL DEFAULT 0, bin_picking_number TEXT NOT NULL DEFAULT '',
    backorder_limit INTEGER NOT NULL DEFAULT 0, backorder_message_id INTEGER,
    qty_backordered INTEGER NOT NULL DEFAULT 0, absolute_set INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (store_hash, product_id, variant_id, location_id));
CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY AUTOINCREMENT, store_hash TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS order_products (
    id INTEGER PRIMARY KEY AUTOINCREMENT, order_id INTEGER NOT NULL, store_hash TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS order_products_by_order ON order_products(order_id, id);
CREATE TABLE IF NOT EXISTS hooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, store_hash TEXT NOT NULL, client_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scripts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE, store_hash TEXT NOT NULL,
    client_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS carts (id TEXT PRIMARY KEY, store_hash TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, store_hash TEXT NOT NULL, hook_id INTEGER NOT NULL,
    scope TEXT NOT NULL, destination TEXT NOT NULL, headers TEXT NOT NULL, body TEXT NOT NULL, hash TEXT NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL,
    created_at REAL NOT NULL, replay_of INTEGER);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, next_attempt_at);
CREATE TABLE IF NOT EXISTS delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, delivery_id INTEGER NOT NULL, at REAL NOT NULL,
    status_code INTEGER, error TEXT);
CREATE INDEX IF NOT EXISTS delivery_attempts_by_delivery ON delivery_attempts(delivery_id, id);
"""


class Database:
    def __init__(self, path: str):
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        self._depth = 0

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def insert(self, sql: str, params: Any = ()) -> int:
        """Run one INSERT; returns the new row's id."""
        row_id = self.conn.execute(sql, params).lastrowid
        if row_id is None:
            raise LookupError(f"no row inserted by {sql!r}")
        return row_id

    def one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def row(self, sql: str, params: Any = ()) -> sqlite3.Row:
        """The first row of a query that always has one (an aggregate, or a row just written)."""
        row = self.one(sql, params)
        if row is None:
            raise LookupError(f"no row for {sql!r}")
        return row

    def scalar(self, sql: str, params: Any = ()) -> Any:
        """The first column of `row(sql, params)`: a COUNT, a MAX, a flag."""
        return self.row(sql, params)[0]

    def all(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def doc(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        row = self.one(sql, params)
        return None if row is None else json.loads(row[0])

    def required_doc(self, sql: str, params: Any = (), *, missing: str) -> dict[str, Any]:
        """`doc`, or a 404 titled `missing` when there is no such document."""
        doc = self.doc(sql, params)
        if doc is None:
            raise not_found(missing)
        return doc


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
