"""Each service's migrations build exactly the schema its tables.py declares, on SQLite and
on PostgreSQL (tables, columns, types, nullability, indexes, constraints; defaults on
PostgreSQL)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from services.common import migrations
from services.common.db import sync_url

SERVICES = ("billing", "catalog_sync", "inventory", "storefront")


# SQLite cannot reflect inventory's expression index (uq_assigned_products_key); PostgreSQL compares it.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
@pytest.mark.parametrize("service", SERVICES)
def test_migrations_build_the_schema_tables_py_declares(service: str, database_url: Callable[[], str]) -> None:
    url = database_url()
    migrations.upgrade(service, url)
    metadata = importlib.import_module(f"services.{service}.tables").metadata
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            # SQLite reflects a '' default as the text "''", which alembic takes for a change.
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "compare_server_default": conn.dialect.name == "postgresql",
            })
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()

    def version_table(difference: Any) -> bool:
        return (isinstance(difference, tuple) and difference[0] == "remove_table"
                and difference[1].name == f"alembic_version_{service}")

    assert [d for d in differences if not version_table(d)] == []
