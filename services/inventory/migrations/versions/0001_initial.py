"""inventory: initial schema

Revision ID: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

from services.common.tables import (
    blank_string,
    create_bus_tables,
    drop_bus_tables,
    row_id,
    store_hash,
    timestamp,
)

revision = "0001_initial"
down_revision = None


def _product_key() -> list[sa.Column[int]]:
    """product_id, then variant_id and location_id (NULL on the product-level rows)."""
    return [sa.Column(name, sa.BigInteger, nullable=name != "product_id")
            for name in ("product_id", "variant_id", "location_id")]


def upgrade() -> None:
    create_bus_tables(op)
    op.create_table(
        "store_settings",
        store_hash(primary_key=True),
        sa.Column("low_stock_level", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("return_stock_on_cancel", sa.Boolean, nullable=False, server_default="1"),
        sa.Column("keep_assigned_when_tracking_enabled", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        timestamp("updated_at"),
        sa.CheckConstraint("low_stock_level >= 0", name="ck_store_settings_low_stock_level"),
    )
    op.create_table(
        "assigned_products",
        row_id(),
        store_hash(),
        *_product_key(),
        blank_string("name", 255),
        blank_string("sku", 255),
        sa.Column("stock", sa.BigInteger, nullable=False),
        sa.Column("threshold", sa.BigInteger, nullable=True),
        sa.Column("incoming_stock", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("back_in_stock_date", sa.Date, nullable=True),
        blank_string("category_key", 1000),
        sa.Column("brand_id", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("version", sa.BigInteger, nullable=False, server_default="1"),
        timestamp("assigned_at"),
        timestamp("updated_at"),
        sa.CheckConstraint("threshold IS NULL OR threshold >= 0", name="ck_assigned_products_threshold"),
        sa.CheckConstraint("incoming_stock >= 0", name="ck_assigned_products_incoming"),
    )
    op.create_index(
        "uq_assigned_products_key",
        "assigned_products",
        ["store_hash", "product_id", sa.text("coalesce(variant_id, 0)"), sa.text("coalesce(location_id, 0)")],
        unique=True,
    )
    op.create_index("ix_assigned_products_due", "assigned_products", ["back_in_stock_date"])
    op.create_table(
        "stock_ledger",
        row_id(),
        store_hash(),
        *_product_key(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("delta", sa.BigInteger, nullable=False),
        sa.Column("absolute", sa.BigInteger, nullable=True),
        sa.Column("stock_before", sa.BigInteger, nullable=False),
        sa.Column("stock_after", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        blank_string("actor", 255),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        blank_string("request_hash", 64),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("line_id", sa.String(64), nullable=True),
        sa.Column("quantity", sa.BigInteger, nullable=True),
        sa.Column("backordered_qty", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("over_threshold", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        timestamp("created_at"),
        sa.UniqueConstraint("store_hash", "idempotency_key", name="uq_stock_ledger_idempotency"),
        sa.CheckConstraint("stock_after = stock_before + delta", name="ck_stock_ledger_arithmetic"),
    )
    op.create_index("ix_stock_ledger_product", "stock_ledger", ["store_hash", "product_id", "id"])
    op.create_index("ix_stock_ledger_order", "stock_ledger", ["store_hash", "order_id"])
    op.create_table(
        "backorder_report",
        row_id(),
        store_hash(),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("line_id", sa.String(64), nullable=False),
        sa.Column("product_id", sa.BigInteger, nullable=False),
        blank_string("product_name", 255),
        blank_string("sku", 255),
        sa.Column("purchased_qty", sa.BigInteger, nullable=False),
        sa.Column("backordered_qty", sa.BigInteger, nullable=False),
        blank_string("order_email", 255),
        timestamp("order_date"),
        blank_string("category_key", 1000),
        sa.Column("brand_id", sa.BigInteger, nullable=False, server_default="0"),
        timestamp("created_at"),
        sa.UniqueConstraint("store_hash", "order_id", "line_id", name="uq_backorder_report_line"),
        sa.CheckConstraint("backordered_qty > 0 AND backordered_qty <= purchased_qty", name="ck_backorder_report_qty"),
    )
    op.create_index("ix_backorder_report_date", "backorder_report", ["store_hash", "order_date"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(36), primary_key=True),
        store_hash(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        timestamp("created_at"),
        timestamp("last_used_at", nullable=True),
        timestamp("revoked_at", nullable=True),
    )
    op.create_index("ix_api_tokens_store", "api_tokens", ["store_hash"])


def downgrade() -> None:
    for table in ("api_tokens", "backorder_report", "stock_ledger", "assigned_products", "store_settings"):
        op.drop_table(table)
    drop_bus_tables(op)
