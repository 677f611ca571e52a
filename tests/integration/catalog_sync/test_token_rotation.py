"""`backorder catalog_sync rotate-token-key` on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from services.catalog_sync import repository
from services.catalog_sync.cli import rotate_token_key
from services.catalog_sync.crypto import TokenCipher
from services.catalog_sync.tables import stores
from services.common import migrations
from services.common.db import Database


@pytest.fixture
def database_url(request):
    """A fresh database of the parametrized kind (PostgreSQL is only reached when asked for)."""
    return request.getfixturevalue("sqlite_database_url" if request.param == "sqlite" else "pg_database_url")()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_rotation_re_encrypts_every_token_under_the_new_key(database_url):
    migrations.upgrade("catalog_sync", database_url)
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    db = Database(database_url)
    hashes = [f"s{uuid.uuid4().hex[:8]}" for _ in range(3)]
    try:
        for store_hash in hashes:
            async with db.unit_of_work() as uow:
                await repository.upsert_store(uow.conn, db.dialect, {
                    "store_hash": store_hash, "access_token": TokenCipher([old]).encrypt(f"token-{store_hash}")})
                await uow.commit()
        assert await rotate_token_key(database_url, TokenCipher([new, old])) == 3
        only_new = TokenCipher([new])
        async with db.read() as conn:
            rows = (await conn.execute(select(stores.c.store_hash, stores.c.access_token))).all()
        assert {row.store_hash: only_new.decrypt(row.access_token) for row in rows} == {
            h: f"token-{h}" for h in hashes}
    finally:
        await db.dispose()
