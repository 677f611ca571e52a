"""catalog_sync: initial schema

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.common.bus import create_bus_tables

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_bus_tables(op)
    op.create_table(
        "stores",
        sa.Column("store_hash", sa.String(64), primary_key=True),
        sa.Column("installed", sa.Boolean, nullable=False),
        sa.Column("access_token", sa.LargeBinary, nullable=True),
        sa.Column("scope", sa.Text, nullable=False, server_default=""),
        sa.Column("account_uuid", sa.String(64), nullable=False, server_default=""),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        sa.Column("domain", sa.String(255), nullable=False, server_default=""),
        sa.Column("owner_email", sa.String(255), nullable=False, server_default=""),
        sa.Column("script_uuid", sa.String(64), nullable=False, server_default=""),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uninstalled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_pull_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("installed = false OR access_token IS NOT NULL", name="ck_stores_installed_has_token"),
    )
    op.create_table(
        "webhook_registrations",
        sa.Column("store_hash", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(128), primary_key=True),
        sa.Column("hook_id", sa.BigInteger, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "products",
        sa.Column("store_hash", sa.String(64), primary_key=True),
        sa.Column("product_id", sa.BigInteger, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sku", sa.String(255), nullable=False),
        sa.Column("is_visible", sa.Boolean, nullable=False),
        sa.Column("availability", sa.String(16), nullable=False),
        sa.Column("inventory_level", sa.BigInteger, nullable=False),
        sa.Column("inventory_tracking", sa.String(16), nullable=False),
        sa.Column("category_ids", sa.Text, nullable=False, server_default=""),
        sa.Column("brand_id", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("date_modified", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assigned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tracking_off_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assignment_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("availability_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pull_marker", sa.String(36), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("availability IN ('available', 'disabled', 'preorder')", name="ck_products_availability"),
        sa.CheckConstraint("inventory_tracking IN ('none', 'product', 'variant')", name="ck_products_tracking"),
    )
    op.create_index("ix_products_store_name", "products", ["store_hash", "name"])
    op.create_index("ix_products_store_sku", "products", ["store_hash", "sku"])


def downgrade() -> None:
    op.drop_table("products")
    op.drop_table("webhook_registrations")
    op.drop_table("stores")
    op.drop_table("inbox")
    op.drop_table("outbox")
