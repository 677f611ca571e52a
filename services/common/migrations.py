"""Alembic, per service, driven from code.

Each service keeps `services/<svc>/migrations/` with an `env.py` of two lines that calls
`run_env(metadata)` and its `versions/`. The version table is named per service
(`alembic_version_<svc>`) so services may share one PostgreSQL database if an operator
wants, though the default is one database per service.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, pool

from services.common.db import is_sqlite, sync_url


def alembic_config(service: str, database_url: str) -> Config:
    migrations = Path(__file__).resolve().parent.parent / service / "migrations"
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["database_url"] = database_url
    config.attributes["service"] = service
    return config


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    """Bring the service's schema to `revision` (idempotent)."""
    if is_sqlite(database_url):
        from services.common.db import _ensure_sqlite_folder

        _ensure_sqlite_folder(database_url)
    command.upgrade(alembic_config(service, database_url), revision)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's migrations/env.py (online mode only)."""
    config = context.config
    url = config.attributes["database_url"]
    service = config.attributes["service"]
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=f"alembic_version_{service}",
            render_as_batch=is_sqlite(url),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
