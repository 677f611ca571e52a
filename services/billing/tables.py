"""Billing's tables: one subscription per store, its charges ledger and its history.

Plans are configuration (domain.Catalogue), not rows; a subscription keeps a snapshot of its
plan's limit and price so entitlements stay a single primary-key read.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, Integer, String, UniqueConstraint

from services.common.tables import blank_string, service_metadata, store_log, store_table, timestamp

metadata, outbox, inbox = service_metadata()

subscriptions = store_table(
    "subscriptions", metadata,
    Column("status", String(16), nullable=False),
    Column("plan", String(32), nullable=False),
    # NULL = unlimited.
    Column("max_assigned_products", BigInteger, nullable=True),
    Column("price_cents", BigInteger, nullable=False),
    timestamp("anchor_at"),
    Column("cycle_index", Integer, nullable=False),
    # Derived from anchor_at and cycle_index, stored for the scheduler's indexed scan.
    timestamp("cycle_start"),
    timestamp("cycle_end"),
    Column("pending_plan", String(32), nullable=True),
    Column("pending_max_assigned_products", BigInteger, nullable=True),
    Column("pending_price_cents", BigInteger, nullable=True),
    timestamp("pending_requested_at", nullable=True),
    blank_string("merchant_account_uuid", 64),
    timestamp("started_at"),
    timestamp("updated_at"),
    CheckConstraint("status IN ('active', 'ended')", name="ck_subscriptions_status"),
    CheckConstraint("price_cents >= 0", name="ck_subscriptions_price"),
    CheckConstraint("max_assigned_products IS NULL OR max_assigned_products >= 0", name="ck_subscriptions_limit"),
    CheckConstraint("cycle_start < cycle_end", name="ck_subscriptions_cycle"),
    CheckConstraint("cycle_index >= 0", name="ck_subscriptions_cycle_index"),
    Index("ix_subscriptions_due", "status", "cycle_end"),
)

charges = store_log(
    "charges", metadata,
    Column("kind", String(16), nullable=False),
    Column("plan", String(32), nullable=False),
    blank_string("from_plan", 32),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    timestamp("cycle_start"),
    timestamp("cycle_end"),
    Column("days_charged", Integer, nullable=False),
    Column("days_in_cycle", Integer, nullable=False),
    Column("description", String(1000), nullable=False),
    # "cycle:<cycle_start>" makes renewal idempotent; prorations get a fresh key each.
    Column("idempotency_key", String(100), nullable=False),
    Column("provider", String(16), nullable=False),
    blank_string("provider_reference", 200),
    blank_string("checkout_url", 1000),
    timestamp("created_at"),
    UniqueConstraint("store_hash", "idempotency_key", name="uq_charges_store_key"),
    CheckConstraint("amount_cents >= 0", name="ck_charges_amount"),
    CheckConstraint("kind IN ('cycle', 'proration')", name="ck_charges_kind"),
    CheckConstraint("days_charged >= 0 AND days_charged <= days_in_cycle", name="ck_charges_days"),
    Index("ix_charges_store", "store_hash", "id"),
)

history = store_log(
    "subscription_history", metadata,
    timestamp("at"),
    Column("kind", String(32), nullable=False),
    Column("from_plan", String(32), nullable=False),
    Column("to_plan", String(32), nullable=False),
    Column("message", String(2000), nullable=False),
    Index("ix_subscription_history_store", "store_hash", "id"),
)
