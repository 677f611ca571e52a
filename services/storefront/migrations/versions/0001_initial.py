"""storefront: outbox, inbox, store_settings, product_states

Revision ID: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

from services.common.tables import create_bus_tables, drop_bus_tables, store_hash, timestamp

revision = "0001_initial"
down_revision = None


def upgrade() -> None:
    """The event bus's outbox and inbox, then settings per store and the product states
    inventory's events feed (an older event never overwrites a newer state)."""
    create_bus_tables(op)
    op.create_table(
        "store_settings",
        store_hash(primary_key=True),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        timestamp("updated_at"),
        sa.CheckConstraint("revision > 0", name="ck_store_settings_revision"),
    )
    op.create_table(
        "product_states",
        store_hash(primary_key=True),
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
        timestamp("updated_at"),
    )


def downgrade() -> None:
    op.drop_table("product_states")
    op.drop_table("store_settings")
    drop_bus_tables(op)
