"""catalog_sync's tables: installed stores, hook registrations, the catalog mirror."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Index,
    LargeBinary,
    String,
    Text,
    false,
)

from services.common.tables import blank_string, service_metadata, store_table, timestamp

metadata, outbox, inbox = service_metadata()

stores = store_table(
    "stores", metadata,
    Column("installed", Boolean, nullable=False),
    # Fernet token (crypto.TokenCipher); NULL once uninstalled.
    Column("access_token", LargeBinary, nullable=True),
    Column("scope", Text, nullable=False, server_default=""),
    blank_string("account_uuid", 64),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    blank_string("name", 255),
    blank_string("domain", 255),
    blank_string("owner_email", 255),
    blank_string("script_uuid", 64),
    timestamp("installed_at"),
    timestamp("uninstalled_at", nullable=True),
    timestamp("last_pull_at", nullable=True),
    timestamp("updated_at"),
    CheckConstraint("installed = false OR access_token IS NOT NULL", name="ck_stores_installed_has_token"),
)

webhook_registrations = store_table(
    "webhook_registrations", metadata,
    Column("scope", String(128), primary_key=True),
    Column("hook_id", BigInteger, nullable=False),
    timestamp("registered_at"),
)

products = store_table(
    "products", metadata,
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
    timestamp("date_modified", nullable=True),
    # Followed from inventory's events.
    Column("assigned", Boolean, nullable=False, server_default=false()),
    timestamp("assigned_at", nullable=True),
    # When our tracking-off write-back was confirmed by BigCommerce (guards tracking-on detection).
    timestamp("tracking_off_at", nullable=True),
    # occurred_at of the last applied assign/unassign event, and of the last event that set
    # availability (older events of each kind are stale).
    timestamp("assignment_event_at", nullable=True),
    timestamp("availability_event_at", nullable=True),
    # Marks the full pull that last saw the product (rows a pull did not see are removed).
    blank_string("pull_marker", 36),
    timestamp("updated_at"),
    CheckConstraint("availability IN ('available', 'disabled', 'preorder')", name="ck_products_availability"),
    CheckConstraint("inventory_tracking IN ('none', 'product', 'variant')", name="ck_products_tracking"),
    Index("ix_products_store_name", "store_hash", "name"),
    Index("ix_products_store_sku", "store_hash", "sku"),
)
