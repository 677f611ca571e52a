"""Storefront tables: settings per store and the product states fed by inventory events."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, Column, DateTime, MetaData, String, Table

from services.common.bus import bus_tables

metadata = MetaData()
outbox, inbox = bus_tables(metadata)

# One row per store that saved settings; `settings` holds only the fields that differ from
# the defaults' names (any field may be present), so new fields get their default.
store_settings = Table(
    "store_settings",
    metadata,
    Column("store_hash", String(64), primary_key=True),
    Column("settings", JSON, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("revision > 0", name="ck_store_settings_revision"),
)

# The latest state inventory published for each product. `version` (ledger id) and
# `occurred_at_us` (event time, microseconds) order events: an older event never
# overwrites a newer state.
product_states = Table(
    "product_states",
    metadata,
    Column("store_hash", String(64), primary_key=True),
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
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
