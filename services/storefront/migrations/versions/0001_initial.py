"""storefront: initial schema

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
        "store_settings",
        sa.Column("store_hash", sa.String(64), primary_key=True),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("revision > 0", name="ck_store_settings_revision"),
    )
    op.create_table(
        "product_states",
        sa.Column("store_hash", sa.String(64), primary_key=True),
        sa.Column("product_id", sa.BigInteger, primary_key=True),
        sa.Column("assigned", sa.Boolean, nullable=False),
        sa.Column("stock", sa.BigInteger, nullable=False),
        sa.Column("threshold", sa.BigInteger, nullable=True),
        sa.Column("incoming_stock", sa.BigInteger, nullable=False),
        sa.Column("back_in_stock_date", sa.String(10), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sku", sa.String(255), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("product_states")
    op.drop_table("store_settings")
    op.drop_table("inbox")
    op.drop_table("outbox")
