"""`backorder billing <command>`:

    plans   print the plan catalogue in force (validates BACKORDER_BILLING_PLANS_JSON)
    renew   one renewal pass now: apply due downgrades and charge every missed cycle
            (what the service's scheduler does; safe to run beside it, e.g. as a CronJob).
            Events go to the outbox; the running service's relay publishes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from services.billing import domain
from services.billing.handlers import BillingHandlers
from services.billing.providers import NoChargeProvider
from services.billing.server import SERVICE
from services.billing.settings import catalogue_from_env, cli_log_level
from services.common import migrations
from services.common.db import Database
from services.common.logs import configure_logging
from services.common.settings import ServiceSettings


def _plans() -> int:
    catalogue = catalogue_from_env()
    print(json.dumps([{"code": p.code, "name": p.name, "max_assigned_products": p.max_assigned_products,
                       "price_cents": p.price_cents} for p in catalogue.plans], indent=2))
    return 0


async def _renew() -> int:
    settings = ServiceSettings.from_env(SERVICE)
    url = settings.database_url.reveal()
    await asyncio.to_thread(migrations.upgrade, SERVICE, url)
    db = Database(url)
    try:
        # Renewal never calls the provider, so the no-charge provider is enough here.
        handlers = BillingHandlers(db, catalogue_from_env(), NoChargeProvider())
        moved = await handlers.run_due()
    finally:
        await db.dispose()
    print(f"renewed {moved} subscription(s)")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="backorder billing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["plans", "renew"])
    args = parser.parse_args(argv)
    configure_logging(SERVICE, cli_log_level())
    try:
        if args.command == "plans":
            return _plans()
        return asyncio.run(_renew())
    except domain.InvalidPlanConfig as exc:
        print(str(exc))
        return 2
