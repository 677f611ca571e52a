"""billing: subscriptions, charges, subscription_history, outbox, inbox

Revision ID: 0001
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

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        store_hash(primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("plan", sa.String(32), nullable=False),
        sa.Column("max_assigned_products", sa.BigInteger, nullable=True),
        sa.Column("price_cents", sa.BigInteger, nullable=False),
        timestamp("anchor_at"),
        sa.Column("cycle_index", sa.Integer, nullable=False),
        timestamp("cycle_start"),
        timestamp("cycle_end"),
        sa.Column("pending_plan", sa.String(32), nullable=True),
        sa.Column("pending_max_assigned_products", sa.BigInteger, nullable=True),
        sa.Column("pending_price_cents", sa.BigInteger, nullable=True),
        timestamp("pending_requested_at", nullable=True),
        blank_string("merchant_account_uuid", 64),
        timestamp("started_at"),
        timestamp("updated_at"),
        sa.CheckConstraint("status IN ('active', 'ended')", name="ck_subscriptions_status"),
        sa.CheckConstraint("price_cents >= 0", name="ck_subscriptions_price"),
        sa.CheckConstraint("max_assigned_products IS NULL OR max_assigned_products >= 0",
                           name="ck_subscriptions_limit"),
        sa.CheckConstraint("cycle_start < cycle_end", name="ck_subscriptions_cycle"),
        sa.CheckConstraint("cycle_index >= 0", name="ck_subscriptions_cycle_index"),
    )
    op.create_index("ix_subscriptions_due", "subscriptions", ["status", "cycle_end"])
    op.create_table(
        "charges",
        row_id(),
        store_hash(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("plan", sa.String(32), nullable=False),
        blank_string("from_plan", 32),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        timestamp("cycle_start"),
        timestamp("cycle_end"),
        sa.Column("days_charged", sa.Integer, nullable=False),
        sa.Column("days_in_cycle", sa.Integer, nullable=False),
        sa.Column("description", sa.String(1000), nullable=False),
        sa.Column("idempotency_key", sa.String(100), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        blank_string("provider_reference", 200),
        blank_string("checkout_url", 1000),
        timestamp("created_at"),
        sa.UniqueConstraint("store_hash", "idempotency_key", name="uq_charges_store_key"),
        sa.CheckConstraint("amount_cents >= 0", name="ck_charges_amount"),
        sa.CheckConstraint("kind IN ('cycle', 'proration')", name="ck_charges_kind"),
        sa.CheckConstraint("days_charged >= 0 AND days_charged <= days_in_cycle", name="ck_charges_days"),
    )
    op.create_index("ix_charges_store", "charges", ["store_hash", "id"])
    op.create_table(
        "subscription_history",
        row_id(),
        store_hash(),
        timestamp("at"),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("from_plan", sa.String(32), nullable=False),
        sa.Column("to_plan", sa.String(32), nullable=False),
        sa.Column("message", sa.String(2000), nullable=False),
    )
    op.create_index("ix_subscription_history_store", "subscription_history", ["store_hash", "id"])
    create_bus_tables(op)


def downgrade() -> None:
    op.drop_table("subscription_history")
    op.drop_table("charges")
    op.drop_table("subscriptions")
    drop_bus_tables(op)
