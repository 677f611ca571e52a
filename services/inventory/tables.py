"""Inventory tables. CHECK constraints are the last line of defence behind domain.py."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

from services.common.bus import bus_tables

metadata = MetaData()
outbox, inbox = bus_tables(metadata)

# SQLite autoincrements only an INTEGER PRIMARY KEY.
ID = BigInteger().with_variant(Integer, "sqlite")

store_settings = Table(
    "store_settings",
    metadata,
    Column("store_hash", String(64), primary_key=True),
    Column("low_stock_level", BigInteger, nullable=False, server_default="0"),
    Column("return_stock_on_cancel", Boolean, nullable=False, server_default="1"),
    Column("keep_assigned_when_tracking_enabled", Boolean, nullable=False, server_default="0"),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("low_stock_level >= 0", name="ck_store_settings_low_stock_level"),
)

# The newest billing.plan.changed handled per store (limit NULL = unlimited), so a
# downgrade handled after a later plan change applies the later limit instead.
store_plans = Table(
    "store_plans",
    metadata,
    Column("store_hash", String(64), primary_key=True),
    Column("plan", String(64), nullable=False),
    Column("max_assigned_products", BigInteger, nullable=True),
    Column("effective_at", DateTime(timezone=True), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Keyed by (store, product, variant, location): variant_id/location_id are NULL for the
# product-level rows of today, so variant-level and per-location rows can be added later
# beside them without rewriting a row.
assigned_products = Table(
    "assigned_products",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("store_hash", String(64), nullable=False),
    Column("product_id", BigInteger, nullable=False),
    Column("variant_id", BigInteger, nullable=True),
    Column("location_id", BigInteger, nullable=True),
    Column("name", String(255), nullable=False, server_default=""),
    Column("sku", String(255), nullable=False, server_default=""),
    Column("stock", BigInteger, nullable=False),
    Column("threshold", BigInteger, nullable=True),
    Column("incoming_stock", BigInteger, nullable=False, server_default="0"),
    Column("back_in_stock_date", Date, nullable=True),
    Column("category_key", String(1000), nullable=False, server_default=""),
    Column("brand_id", BigInteger, nullable=False, server_default="0"),
    Column("version", BigInteger, nullable=False, server_default="1"),
    Column("assigned_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("threshold IS NULL OR threshold >= 0", name="ck_assigned_products_threshold"),
    CheckConstraint("incoming_stock >= 0", name="ck_assigned_products_incoming"),
    Index("ix_assigned_products_due", "back_in_stock_date"),
)
Index(
    "uq_assigned_products_key",
    assigned_products.c.store_hash,
    assigned_products.c.product_id,
    func.coalesce(assigned_products.c.variant_id, 0),
    func.coalesce(assigned_products.c.location_id, 0),
    unique=True,
)

# Append-only: one row per change; also the audit log. The UNIQUE (store, key) is what
# makes a replayed change a no-op.
stock_ledger = Table(
    "stock_ledger",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("store_hash", String(64), nullable=False),
    Column("product_id", BigInteger, nullable=False),
    Column("variant_id", BigInteger, nullable=True),
    Column("location_id", BigInteger, nullable=True),
    Column("kind", String(16), nullable=False),
    Column("delta", BigInteger, nullable=False),
    Column("absolute", BigInteger, nullable=True),
    Column("stock_before", BigInteger, nullable=False),
    Column("stock_after", BigInteger, nullable=False),
    Column("source", String(16), nullable=False),
    Column("actor", String(255), nullable=False, server_default=""),
    Column("idempotency_key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False, server_default=""),
    Column("order_id", String(64), nullable=True),
    Column("line_id", String(64), nullable=True),
    Column("quantity", BigInteger, nullable=True),
    Column("backordered_qty", BigInteger, nullable=False, server_default="0"),
    Column("over_threshold", Boolean, nullable=False, server_default="0"),
    Column("note", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("store_hash", "idempotency_key", name="uq_stock_ledger_idempotency"),
    CheckConstraint("stock_after = stock_before + delta", name="ck_stock_ledger_arithmetic"),
    Index("ix_stock_ledger_product", "store_hash", "product_id", "id"),
    Index("ix_stock_ledger_order", "store_hash", "order_id"),
)

backorder_report = Table(
    "backorder_report",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("store_hash", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("line_id", String(64), nullable=False),
    Column("product_id", BigInteger, nullable=False),
    Column("product_name", String(255), nullable=False, server_default=""),
    Column("sku", String(255), nullable=False, server_default=""),
    Column("purchased_qty", BigInteger, nullable=False),
    Column("backordered_qty", BigInteger, nullable=False),
    Column("order_email", String(255), nullable=False, server_default=""),
    Column("order_date", DateTime(timezone=True), nullable=False),
    Column("category_key", String(1000), nullable=False, server_default=""),
    Column("brand_id", BigInteger, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("store_hash", "order_id", "line_id", name="uq_backorder_report_line"),
    CheckConstraint("backordered_qty > 0 AND backordered_qty <= purchased_qty", name="ck_backorder_report_qty"),
    Index("ix_backorder_report_date", "store_hash", "order_date"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("store_hash", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_api_tokens_store", "store_hash"),
)

# Not part of the schema (no migration): a temporary table an import fills in its own
# transaction (COPY on PostgreSQL), from which one INSERT … SELECT / UPDATE … FROM writes the
# products and their ledger entries set-based. One row per product the import changes.
scratch = MetaData()
import_rows = Table(
    "import_rows",
    scratch,
    Column("file_row", BigInteger, nullable=False),  # the CSV row number (the ledger key names it)
    Column("id", BigInteger, nullable=True),  # the product row (update mode)
    Column("product_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", String(255), nullable=False),
    Column("sku", String(255), nullable=False),
    Column("stock_before", BigInteger, nullable=False),
    Column("stock", BigInteger, nullable=False),
    Column("absolute", BigInteger, nullable=True),
    Column("threshold", BigInteger, nullable=True),
    Column("incoming_stock", BigInteger, nullable=False),
    Column("back_in_stock_date", Date, nullable=True),
    Column("category_key", String(1000), nullable=False),
    Column("brand_id", BigInteger, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("note", Text, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
