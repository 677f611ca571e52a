"""catalog_sync: outbox, inbox, stores, webhook_registrations, products

Revision ID: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

from services.common.tables import blank_string, create_bus_tables, drop_bus_tables, store_hash, timestamp

revision = "0001_initial"
down_revision = None


def upgrade() -> None:
    create_bus_tables(op)
    op.create_table(
        "stores",
        store_hash(primary_key=True),
        sa.Column("installed", sa.Boolean, nullable=False),
        sa.Column("access_token", sa.LargeBinary, nullable=True),
        sa.Column("scope", sa.Text, nullable=False, server_default=""),
        blank_string("account_uuid", 64),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        blank_string("name", 255),
        blank_string("domain", 255),
        blank_string("owner_email", 255),
        blank_string("script_uuid", 64),
        timestamp("installed_at"),
        timestamp("uninstalled_at", nullable=True),
        timestamp("last_pull_at", nullable=True),
        timestamp("updated_at"),
        sa.CheckConstraint("installed = false OR access_token IS NOT NULL", name="ck_stores_installed_has_token"),
    )
    op.create_table(
        "webhook_registrations",
        store_hash(primary_key=True),
        sa.Column("scope", sa.String(128), primary_key=True),
        sa.Column("hook_id", sa.BigInteger, nullable=False),
        timestamp("registered_at"),
    )
    op.create_table(
        "products",
        store_hash(primary_key=True),
        sa.Column("product_id", sa.BigInteger, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sku", sa.String(255), nullable=False),
        sa.Column("is_visible", sa.Boolean, nullable=False),
        sa.Column("availability", sa.String(16), nullable=False),
        sa.Column("inventory_level", sa.BigInteger, nullable=False),
        sa.Column("inventory_tracking", sa.String(16), nullable=False),
        sa.Column("category_ids", sa.Text, nullable=False, server_default=""),
        sa.Column("brand_id", sa.BigInteger, nullable=False, server_default="0"),
        timestamp("date_modified", nullable=True),
        sa.Column("assigned", sa.Boolean, nullable=False, server_default=sa.false()),
        timestamp("assigned_at", nullable=True),
        timestamp("tracking_off_at", nullable=True),
        timestamp("assignment_event_at", nullable=True),
        timestamp("availability_event_at", nullable=True),
        blank_string("pull_marker", 36),
        timestamp("updated_at"),
        sa.CheckConstraint("availability IN ('available', 'disabled', 'preorder')", name="ck_products_availability"),
        sa.CheckConstraint("inventory_tracking IN ('none', 'product', 'variant')", name="ck_products_tracking"),
    )
    op.create_index("ix_products_store_name", "products", ["store_hash", "name"])
    op.create_index("ix_products_store_sku", "products", ["store_hash", "sku"])


def downgrade() -> None:
    op.drop_table("products")
    op.drop_table("webhook_registrations")
    op.drop_table("stores")
    drop_bus_tables(op)
