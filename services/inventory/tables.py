"""Inventory tables. CHECK constraints are the last line of defence behind domain.py."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

from services.common.tables import (
    blank_string,
    service_metadata,
    store_hash,
    store_log,
    store_table,
    timestamp,
)

metadata, outbox, inbox = service_metadata()


def product_key() -> tuple[Column[int], Column[int], Column[int]]:
    """Which stock a row is about: variant_id and location_id are NULL for the product-level
    rows of today, so variant-level and per-location rows can be added later beside them."""
    return (
        Column("product_id", BigInteger, nullable=False),
        Column("variant_id", BigInteger, nullable=True),
        Column("location_id", BigInteger, nullable=True),
    )


store_settings = store_table(
    "store_settings", metadata,
    Column("low_stock_level", BigInteger, nullable=False, server_default="0"),
    Column("return_stock_on_cancel", Boolean, nullable=False, server_default="1"),
    Column("keep_assigned_when_tracking_enabled", Boolean, nullable=False, server_default="0"),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    timestamp("updated_at"),
    CheckConstraint("low_stock_level >= 0", name="ck_store_settings_low_stock_level"),
)

# The newest billing.plan.changed handled per store (limit NULL = unlimited), so a
# downgrade handled after a later plan change applies the later limit instead.
store_plans = store_table(
    "store_plans", metadata,
    Column("plan", String(64), nullable=False),
    Column("max_assigned_products", BigInteger, nullable=True),
    timestamp("effective_at"),
    Column("event_id", String(64), nullable=False),
    timestamp("updated_at"),
)

# Keyed by (store, product, variant, location), see product_key().
assigned_products = store_log(
    "assigned_products", metadata,
    *product_key(),
    blank_string("name", 255),
    blank_string("sku", 255),
    Column("stock", BigInteger, nullable=False),
    Column("threshold", BigInteger, nullable=True),
    Column("incoming_stock", BigInteger, nullable=False, server_default="0"),
    Column("back_in_stock_date", Date, nullable=True),
    blank_string("category_key", 1000),
    Column("brand_id", BigInteger, nullable=False, server_default="0"),
    Column("version", BigInteger, nullable=False, server_default="1"),
    timestamp("assigned_at"),
    timestamp("updated_at"),
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
stock_ledger = store_log(
    "stock_ledger", metadata,
    *product_key(),
    Column("kind", String(16), nullable=False),
    Column("delta", BigInteger, nullable=False),
    Column("absolute", BigInteger, nullable=True),
    Column("stock_before", BigInteger, nullable=False),
    Column("stock_after", BigInteger, nullable=False),
    Column("source", String(16), nullable=False),
    blank_string("actor", 255),
    Column("idempotency_key", String(255), nullable=False),
    blank_string("request_hash", 64),
    Column("order_id", String(64), nullable=True),
    Column("line_id", String(64), nullable=True),
    Column("quantity", BigInteger, nullable=True),
    Column("backordered_qty", BigInteger, nullable=False, server_default="0"),
    Column("over_threshold", Boolean, nullable=False, server_default="0"),
    Column("note", Text, nullable=False, server_default=""),
    timestamp("created_at"),
    UniqueConstraint("store_hash", "idempotency_key", name="uq_stock_ledger_idempotency"),
    CheckConstraint("stock_after = stock_before + delta", name="ck_stock_ledger_arithmetic"),
    Index("ix_stock_ledger_product", "store_hash", "product_id", "id"),
    Index("ix_stock_ledger_order", "store_hash", "order_id"),
)

backorder_report = store_log(
    "backorder_report", metadata,
    Column("order_id", String(64), nullable=False),
    Column("line_id", String(64), nullable=False),
    Column("product_id", BigInteger, nullable=False),
    blank_string("product_name", 255),
    blank_string("sku", 255),
    Column("purchased_qty", BigInteger, nullable=False),
    Column("backordered_qty", BigInteger, nullable=False),
    blank_string("order_email", 255),
    timestamp("order_date"),
    blank_string("category_key", 1000),
    Column("brand_id", BigInteger, nullable=False, server_default="0"),
    timestamp("created_at"),
    UniqueConstraint("store_hash", "order_id", "line_id", name="uq_backorder_report_line"),
    CheckConstraint("backordered_qty > 0 AND backordered_qty <= purchased_qty", name="ck_backorder_report_qty"),
    Index("ix_backorder_report_date", "store_hash", "order_date"),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", String(36), primary_key=True),
    store_hash(),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    timestamp("created_at"),
    timestamp("last_used_at", nullable=True),
    timestamp("revoked_at", nullable=True),
    Index("ix_api_tokens_store", "store_hash"),
)

# Not part of the schema (no migration): a temporary table an import fills in its own
# transaction (COPY on PostgreSQL), from which one INSERT … SELECT / UPDATE … FROM writes the
# products and their ledger entries set-based. One row per product the import changes.
scratch = MetaData()
import_rows = Table(
    "import_rows", scratch,
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
