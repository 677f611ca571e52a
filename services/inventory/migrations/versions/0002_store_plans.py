"""inventory: store_plans, the newest billing.plan.changed handled per store

Revision ID: 0002_store_plans
"""

import sqlalchemy as sa
from alembic import op

from services.common.tables import store_hash, timestamp

revision = "0002_store_plans"
down_revision = "0001_initial"


def upgrade() -> None:
    op.create_table(
        "store_plans",
        store_hash(primary_key=True),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("max_assigned_products", sa.BigInteger, nullable=True),
        timestamp("effective_at"),
        sa.Column("event_id", sa.String(64), nullable=False),
        timestamp("updated_at"),
    )


def downgrade() -> None:
    op.drop_table("store_plans")
