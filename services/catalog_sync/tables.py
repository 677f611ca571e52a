"""catalog_sync's tables: installed stores, hook registrations, the catalog mirror."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from services.common.bus import bus_tables

metadata = MetaData()
outbox, inbox = bus_tables(metadata)

stores = Table(
    "stores",
    metadata,
    Column("store_hash", String(64), primary_key=True),
    Column("installed", Boolean, nullable=False),
    # Fernet token (crypto.TokenCipher); NULL once uninstalled.
    Column("access_token", LargeBinary, nullable=True),
    Column("scope", Text, nullable=False, server_default=""),
    Column("account_uuid", String(64), nullable=False, server_default=""),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("name", String(255), nullable=False, server_default=""),
    Column("domain", String(255), nullable=False, server_default=""),
    Column("owner_email", String(255), nullable=False, server_default=""),
    Column("script_uuid", String(64), nullable=False, server_default=""),
    Column("installed_at", DateTime(timezone=True), nullable=False),
    Column("uninstalled_at", DateTime(timezone=True), nullable=True),
    Column("last_pull_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("installed = false OR access_token IS NOT NULL", name="ck_stores_installed_has_token"),
)

webhook_registrations = Table(
    "webhook_registrations",
    metadata,
    Column("store_hash", String(64), primary_key=True),
    Column("scope", String(128), primary_key=True),
    Column("hook_id", BigInteger, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("store_hash", String(64), primary_key=True),
    Column("product_id", BigInteger, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("sku", String(255), nullable=False),
    Column("is_visible", Boolean, nullable=False),
    Column("availability", String(16), nullable=False),
    Column("inventory_level", BigInteger, nullable=False),
    Column("inventory_tracking", String(16), nullable=False),
    # Comma-separated ids (only ever read whole).
    Column("category_ids", Text, nullable=False, server_default=""),
    Column("brand_id", BigInteger, nullable=False, server_default="0"),
    Column("date_modified", DateTime(timezone=True), nullable=True),
    # Followed from inventory's events.
    Column("assigned", Boolean, nullable=False, server_default=false()),
    Column("assigned_at", DateTime(timezone=True), nullable=True),
    # When our tracking-off write-back was confirmed by BigCommerce (guards tracking-on detection).
    Column("tracking_off_at", DateTime(timezone=True), nullable=True),
    # occurred_at of the last applied assign/unassign event, and of the last event that set
    # availability (older events of each kind are stale).
    Column("assignment_event_at", DateTime(timezone=True), nullable=True),
    Column("availability_event_at", DateTime(timezone=True), nullable=True),
    # Marks the full pull that last saw the product (rows a pull did not see are removed).
    Column("pull_marker", String(36), nullable=False, server_default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("availability IN ('available', 'disabled', 'preorder')", name="ck_products_availability"),
    CheckConstraint("inventory_tracking IN ('none', 'product', 'variant')", name="ck_products_tracking"),
    Index("ix_products_store_name", "store_hash", "name"),
    Index("ix_products_store_sku", "store_hash", "sku"),
)
