"""CSV imports: every row checked (format, then against the store and the plan), then all
rows applied set-based in one transaction, or none.

An import locks the store's settings row (the per-store mutex assigns take), so its
checks against the assigned products hold until it commits.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from backorder.events.v1 import inventory_events_pb2 as events_pb
from google.protobuf.message import Message
from sqlalchemy.exc import IntegrityError

from services.common.clock import utcnow
from services.common.db import UnitOfWork
from services.common.errors import ValidationFailed
from services.common.product_status import salable_qty
from services.inventory import bulk, domain, events, import_rules, repository
from services.inventory.assignment import Entitlements
from services.inventory.changes import SERVICE, Transactions
from services.inventory.repository import StoreSettingsRow
from services.inventory.tables import import_rows, outbox


@dataclass(frozen=True)
class ImportOutcome:
    rows: int
    applied: int
    errors: list[dict[str, Any]]
    dry_run: bool


class Imports:
    def __init__(self, tx: Transactions, entitlements: Entitlements) -> None:
        self.tx = tx
        self.entitlements = entitlements

    async def apply(self, store_hash: str, *, mode: str, overwrite: Sequence[str],
                    rows: Sequence[import_rules.ImportRowInput], dry_run: bool, actor: str = "",
                    import_id: str = "") -> ImportOutcome:
        """Validates every row (format, then against the store and the plan); applies all
        rows set-based in one transaction, or none if any row is bad. Locks the store row."""
        domain.check_store_hash(store_hash)
        if mode not in ("assign", "update"):
            raise ValidationFailed("mode: must be assign or update",
                                   [domain.field_error(None, "mode", "invalid", "must be assign or update")])
        bad = [o for o in overwrite if o not in import_rules.OVERWRITABLE]
        if bad:
            raise ValidationFailed(f"overwrite: unknown column {bad[0]!r}",
                                   [domain.field_error(None, "overwrite", "invalid", f"unknown column {bad[0]!r}")])
        domain.check_count(len(rows), import_rules.MAX_IMPORT_ROWS, "rows")
        overwrite = list(overwrite) or list(import_rules.OVERWRITABLE)
        parsed = import_rules.parse_import_rows(rows, mode=mode)
        entitlement = await self.entitlements.get(store_hash) if mode == "assign" else None
        import_id = import_id or str(uuid.uuid4())

        async def body(uow: UnitOfWork) -> ImportOutcome:
            settings = await repository.lock_store(uow.conn, uow.dialect, store_hash)
            assigned = await repository.assigned_ids(uow.conn, store_hash)
            errors = list(parsed.errors)
            for value in parsed.values:
                if mode == "assign" and value.product_id in assigned:
                    errors.append({"row": value.row, "column": "product_id", "code": "already_assigned",
                                   "message": f"product {value.product_id} is already assigned"})
                if mode == "update" and value.product_id not in assigned:
                    errors.append({"row": value.row, "column": "product_id", "code": "not_assigned",
                                   "message": f"product {value.product_id} is not assigned"})
            if mode == "assign" and entitlement is not None and entitlement.limit is not None:
                room = entitlement.limit - len(assigned)
                for value in parsed.values[max(room, 0):]:
                    errors.append({"row": value.row, "column": "product_id", "code": "plan_limit_reached",
                                   "message": f"over the {entitlement.plan!r} plan's limit of {entitlement.limit}"})
            errors.sort(key=lambda e: (e["row"], import_rules.IMPORT_COLUMNS.index(e["column"])
                                       if e["column"] in import_rules.IMPORT_COLUMNS else 99))
            if errors or dry_run:
                return ImportOutcome(len(rows), 0, errors, dry_run)
            if mode == "assign":
                await _import_assign(uow, settings, parsed.values, actor=actor, import_id=import_id)
            else:
                await _import_update(uow, settings, parsed.values, overwrite=overwrite, actor=actor,
                                     import_id=import_id)
            return ImportOutcome(len(rows), len(parsed.values), [], False)

        # One attempt: the store lock serialises imports and assigns, so a taken ledger key
        # is not a race to retry but this import id applied before (a retried call).
        try:
            return await self.tx.run(body, attempts=1)
        except IntegrityError as exc:
            async with self.tx.db.read() as conn:
                applied_before = await repository.ledger_key_prefix_used(conn, store_hash, f"import:{import_id}:")
            if applied_before:
                raise domain.ImportAlreadyApplied(import_id) from exc
            raise


async def _import_assign(uow: UnitOfWork, settings: StoreSettingsRow,
                         values: Sequence[import_rules.ImportRowValues], *, actor: str, import_id: str) -> None:
    """Insert every row's product and its assign ledger entry set-based (through the
    import_rows temporary table) and a product.assigned event per product, in row order.
    A product assigned meanwhile by another transaction fails the unique index
    (IntegrityError: the caller runs the whole import again and reports the row)."""
    now = utcnow()
    # Versions start at the assignment's microsecond, as for an admin assign.
    version = time.time_ns() // 1000
    store_hash, low_stock_level = settings.store_hash, settings.low_stock_level
    await bulk.fill_temporary(uow, import_rows, [
        (v.row, None, v.product_id, "assign", v.name, v.sku, 0, v.stock or 0, v.stock or 0, v.threshold,
         v.incoming_stock or 0, v.back_in_stock_date, domain.category_key(v.category_ids), v.brand_id, version, "")
        for v in values])
    await uow.conn.execute(repository.insert_imported_products(store_hash, now))
    await uow.conn.execute(repository.insert_import_ledger(store_hash, actor[:255], f"import:{import_id}:", now))
    await bulk.drop_temporary(uow, import_rows)
    await bulk.add_events_copy(uow, outbox, SERVICE, (
        (store_hash, "product.assigned", events_pb.ProductAssigned(product=events.state(
            v.product_id, v.stock or 0, v.threshold, v.incoming_stock or 0, v.back_in_stock_date, v.name, v.sku,
            version, low_stock_level), actor=actor))
        for v in values))


async def _import_update(uow: UnitOfWork, settings: StoreSettingsRow,
                         values: Sequence[import_rules.ImportRowValues], *, overwrite: Sequence[str], actor: str,
                         import_id: str) -> None:
    """Lock the store's products (primary-key order), work out each row's change
    (import_rules.import_update) and write the changed products and their ledger entries
    set-based (through the import_rows temporary table), then stock.changed and any sold-out /
    back-in-stock event per changed product, in row order."""
    store_hash, low_stock_level = settings.store_hash, settings.low_stock_level
    locked = await repository.lock_import_products(uow.conn, store_hash, [v.product_id for v in values])
    columns = frozenset(overwrite)
    now = utcnow()
    staged = []
    for v in values:
        product = locked[v.product_id]
        change = import_rules.import_update(product.stock, product.threshold, product.incoming_stock,
                                            product.back_in_stock_date, v, columns)
        if change is None:
            continue
        kind, stock, threshold, incoming, date, note = change
        staged.append((v.row, product.id, v.product_id, kind, product.name, product.sku, product.stock, stock,
                       stock if kind == "set" else None, threshold, incoming, date, "", 0, product.version + 1,
                       note))
    await bulk.fill_temporary(uow, import_rows, staged)
    await uow.conn.execute(repository.update_imported_products(now))
    prefix = f"import:{import_id}:"
    ledger_ids = dict((await uow.conn.execute(repository.insert_import_ledger(
        store_hash, actor[:255], prefix, now, returning=True))).all())
    await bulk.drop_temporary(uow, import_rows)

    def changed_events() -> Iterator[tuple[str, str, Message]]:
        for (file_row, _, product_id, kind, name, sku, before, stock, _, threshold, incoming, date, _, _, version,
             _) in staged:
            state = events.state(product_id, stock, threshold, incoming, date, name, sku, version, low_stock_level)
            key = prefix + str(file_row)
            yield store_hash, "stock.changed", events.stock_changed(
                state, before=before, after=stock, source="import", kind=kind, ledger_id=ledger_ids[key], key=key)
            old = locked[product_id]
            yield from events.availability_events(
                store_hash, state, salable_qty(stock, threshold),
                was_sellable=old.threshold is None or old.stock + old.threshold > 0)

    await bulk.add_events_copy(uow, outbox, SERVICE, changed_events())
