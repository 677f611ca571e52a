"""`backorder catalog_sync …` commands (routed here by services/cli.py).

rotate-token-key: re-encrypt every stored BigCommerce token with the first key of
BACKORDER_TOKEN_ENCRYPTION_KEYS (docs/operations-secrets.md). Safe to run while the
service runs and to run twice: each row is rewritten in its own short transaction, and a
row already under the first key decrypts and re-encrypts the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy import select, update

from services.catalog_sync.crypto import TokenCipher
from services.catalog_sync.settings import CatalogSettings
from services.catalog_sync.tables import stores
from services.common import migrations
from services.common.db import Database
from services.common.settings import ServiceSettings


async def rotate_token_key(database_url: str, cipher: TokenCipher) -> int:
    """Re-encrypt each store's token; returns how many rows were rewritten."""
    db = Database(database_url, pool_size=1)
    rotated = 0
    try:
        async with db.read() as conn:
            hashes = [row.store_hash for row in await conn.execute(
                select(stores.c.store_hash).where(stores.c.access_token.is_not(None)))]
        for store_hash in hashes:
            async with db.unit_of_work() as uow:
                sealed = (await uow.conn.execute(
                    select(stores.c.access_token).where(stores.c.store_hash == store_hash))).scalar_one_or_none()
                if sealed is None:
                    continue
                await uow.conn.execute(update(stores).where(stores.c.store_hash == store_hash)
                                       .values(access_token=cipher.rotate(sealed)))
                await uow.commit()
                rotated += 1
    finally:
        await db.dispose()
    return rotated


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="backorder catalog_sync")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("rotate-token-key", help="re-encrypt stored BigCommerce tokens with the first key")
    args = parser.parse_args(argv)
    if args.command == "rotate-token-key":
        settings = ServiceSettings.from_env("catalog_sync")
        catalog = CatalogSettings.from_env()
        url = settings.database_url.reveal()
        migrations.upgrade("catalog_sync", url)
        try:
            cipher = TokenCipher.from_config(catalog.token_encryption_keys.reveal(), settings.data_dir)
            count = asyncio.run(rotate_token_key(url, cipher))
        except ValueError as exc:
            print(f"rotate-token-key failed: {exc}", file=sys.stderr)
            return 1
        print(f"re-encrypted {count} store token(s) with the first key")
        return 0
    return 2
