"""inventory: store_plans, the newest billing.plan.changed handled per store

Revision ID: 0002_store_plans
Revises: 0001_initial
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_store_plans"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_plans",
        sa.Column("store_hash", sa.String(64), primary_key=True),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("max_assigned_products", sa.BigInteger, nullable=True),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_plans")
