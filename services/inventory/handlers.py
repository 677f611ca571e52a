"""Inventory's use cases, composed: each runs in one unit of work and writes its ledger
entries and outbox events in the same transaction as the change.

One module per thing a user does: assignment (assign, edit, unassign, plan downgrades),
orders (with the group-commit batcher), stock (stock commands and receipts), imports,
reports, tokens and store_settings; changes.py holds what a stock-changing transaction
writes (ChangeSet, ledger rows) and events.py the product state events carry.

Locking: store-wide operations (assign, import, a plan change) lock the store's settings
row first; stock changes lock the affected product rows with SELECT … FOR UPDATE in
primary-key order, then check idempotency keys, compute with domain.py, and write back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from services.common.db import Database
from services.inventory.assignment import Assignment, Entitlements
from services.inventory.changes import Transactions
from services.inventory.imports import Imports
from services.inventory.orders import Orders
from services.inventory.reports import Reports
from services.inventory.stock import Receipts, Stock
from services.inventory.store_settings import StoreSettings
from services.inventory.tokens import Tokens


class InventoryHandlers:
    """The use cases of one inventory process, sharing its database and transaction runner."""

    def __init__(self, db: Database, entitlements: Entitlements, *,
                 today: Callable[[str], dt.date] | None = None, batch_workers: int = 4) -> None:
        self.db = db
        self.tx = Transactions(db)
        self.store_settings = StoreSettings(self.tx)
        self.assignment = Assignment(self.tx, entitlements)
        self.orders = Orders(self.tx, self.store_settings, batch_workers=batch_workers)
        self.stock = Stock(self.tx)
        self.receipts = Receipts(self.tx, today=today)
        self.imports = Imports(self.tx, entitlements)
        self.reports = Reports(self.tx)
        self.tokens = Tokens(self.tx)
