"""`backorder inventory …` commands (routed here by services/cli.py).

create-token: mint a per-store API token (for partner ERPs and scripts) until the admin
UI does; prints the plaintext once. Opens the service's own database
(ServiceSettings.from_env("inventory")), migrating it first.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.common import migrations
from services.common.db import Database
from services.common.errors import DomainError
from services.common.settings import ServiceSettings
from services.inventory.assignment import Entitlement
from services.inventory.handlers import InventoryHandlers


class _NoEntitlements:
    async def get(self, store_hash: str) -> Entitlement:
        raise RuntimeError("the CLI does not assign products")


async def _create_token(store_hash: str, name: str) -> tuple[str, str]:
    settings = ServiceSettings.from_env("inventory")
    url = settings.database_url.reveal()
    await asyncio.to_thread(migrations.upgrade, "inventory", url)
    db = Database(url, pool_size=1)
    try:
        row, plaintext = await InventoryHandlers(db, _NoEntitlements()).tokens.create(store_hash, name)
        return row.id, plaintext
    finally:
        await db.dispose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="backorder inventory")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-token", help="create a store API token (printed once)")
    create.add_argument("--store", required=True, help="store hash")
    create.add_argument("--name", required=True, help="what the token is for, e.g. erp")
    options = parser.parse_args(argv)
    if options.command == "create-token":
        try:
            token_id, plaintext = asyncio.run(_create_token(options.store, options.name))
        except DomainError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        print(f"id: {token_id}")
        print(f"token: {plaintext}")
        print("Store the token now: it is not shown again.", file=sys.stderr)
        return 0
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
