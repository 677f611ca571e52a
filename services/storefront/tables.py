"""Storefront tables: settings per store and the product states fed by inventory events."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, Column, String

from services.common.tables import service_metadata, store_table, timestamp

metadata, outbox, inbox = service_metadata()

# One row per store that saved settings; `settings` holds only the fields that differ from
# the defaults' names (any field may be present), so new fields get their default.
store_settings = store_table(
    "store_settings", metadata,
    Column("settings", JSON, nullable=False),
    Column("revision", BigInteger, nullable=False),
    timestamp("updated_at"),
    CheckConstraint("revision > 0", name="ck_store_settings_revision"),
)

# The latest state inventory published for each product. `version` (ledger id) and
# `occurred_at_us` (event time, microseconds) order events: an older event never
# overwrites a newer state.
product_states = store_table(
    "product_states", metadata,
    Column("product_id", BigInteger, primary_key=True),
    Column("assigned", Boolean, nullable=False),
    Column("stock", BigInteger, nullable=False),
    Column("threshold", BigInteger, nullable=True),
    Column("incoming_stock", BigInteger, nullable=False),
    Column("back_in_stock_date", String(10), nullable=False),
    Column("name", String(255), nullable=False),
    Column("sku", String(255), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("occurred_at_us", BigInteger, nullable=False),
    timestamp("updated_at"),
)
