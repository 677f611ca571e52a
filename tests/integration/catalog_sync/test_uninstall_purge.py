"""Uninstall drops the token at once; the data goes after the grace period (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from cryptography.fernet import Fernet

from services.catalog_sync import domain, repository
from services.catalog_sync.crypto import TokenCipher
from services.catalog_sync.handlers import CatalogSync, Peers
from services.catalog_sync.settings import CatalogSettings
from services.common import migrations
from services.common.db import Database
from services.common.errors import NotFound


class NoBilling:
    async def EndSubscription(self, request, **kwargs):  # noqa: N802 - gRPC method name
        return None


@pytest.fixture
def database_url(request):
    """A fresh database of the parametrized kind (PostgreSQL is only reached when asked for)."""
    return request.getfixturevalue("sqlite_database_url" if request.param == "sqlite" else "pg_database_url")()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("grace_s,purged", [(0.0, True), (3600.0, False)])
async def test_uninstall_then_purge_after_grace(database_url, grace_s, purged):
    migrations.upgrade("catalog_sync", database_url)
    db = Database(database_url)
    settings = dataclasses.replace(CatalogSettings.from_env(environ={}), purge_after_s=grace_s)
    cipher = TokenCipher([Fernet.generate_key().decode()])
    app = CatalogSync(db, settings, cipher, None, Peers(inventory=None, billing=NoBilling(), storefront=None))
    store_hash = f"s{uuid.uuid4().hex[:8]}"
    try:
        async with db.unit_of_work() as uow:
            await repository.upsert_store(uow.conn, db.dialect, {"store_hash": store_hash,
                                                                 "access_token": cipher.encrypt("tok")})
            await repository.upsert_products(uow.conn, db.dialect, store_hash, [domain.mirror_fields(
                {"id": 1, "name": "A", "sku": "A"})])
            await uow.commit()
        assert await app.is_installed(store_hash)
        await app.uninstall(store_hash)
        assert not await app.is_installed(store_hash)
        row, count = await app.store_view(store_hash)
        assert row.access_token is None and not row.installed and count == 1
        assert (store_hash in await app.purge_expired()) is purged
        if purged:
            with pytest.raises(NotFound):
                await app.store_view(store_hash)
        else:
            assert (await app.store_view(store_hash))[1] == 1
        with pytest.raises(NotFound):
            await app.uninstall(f"s{uuid.uuid4().hex[:8]}")
    finally:
        await db.dispose()
