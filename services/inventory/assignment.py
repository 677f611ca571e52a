"""Assigning products to backorder management, editing them, unassigning them (by the
merchant, or by billing's over-limit policy after a downgrade), and reading them.

Store-wide changes (assign, a plan change) lock the store's settings row first, the
per-store mutex imports take too; edits and unassigns lock the product rows in
primary-key order.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from backorder.events.v1 import inventory_events_pb2 as events_pb
from google.protobuf.message import Message
from sqlalchemy import delete

from services.common.bus import add_events
from services.common.clock import utcnow
from services.common.db import UnitOfWork
from services.common.errors import NotFound
from services.inventory import bulk, domain, events, repository
from services.inventory.changes import SERVICE, ChangeSet, KeyRaced, Transactions, ledger_row, source_name
from services.inventory.repository import ProductRow, StoreSettingsRow
from services.inventory.tables import assigned_products, outbox, stock_ledger


@dataclass(frozen=True)
class Entitlement:
    plan: str
    limit: int | None  # None = unlimited


class Entitlements(Protocol):
    async def get(self, store_hash: str) -> Entitlement: ...


def require_assigned(commands: Sequence[domain.UpdateCommand], locked: dict[int, ProductRow]) -> None:
    errors = [domain.field_error(i, "product_id", "not_assigned", f"product {c.product_id} is not assigned",
                                 product_id=c.product_id)
              for i, c in enumerate(commands) if c.product_id not in locked]
    domain.raise_if_errors(errors)


class Assignment:
    def __init__(self, tx: Transactions, entitlements: Entitlements) -> None:
        self.tx = tx
        self.entitlements = entitlements

    async def assign(self, store_hash: str, raw_items: Sequence[dict[str, Any]], *, actor: str = "",
                     source: str = "admin") -> list[ProductRow]:
        """All or nothing. Asks billing for the entitlement first (UNAVAILABLE if it does not
        answer), then locks the store row so concurrent assigns are counted one at a time.
        Raises ValidationFailed, AlreadyAssigned, PlanLimitReached."""
        domain.check_store_hash(store_hash)
        commands = domain.validate_assign_items(raw_items)
        entitlement = await self.entitlements.get(store_hash)
        source = source_name(source, "admin")

        async def body(uow: UnitOfWork) -> list[ProductRow]:
            settings = await repository.lock_store(uow.conn, uow.dialect, store_hash)
            existing = await repository.load_products(uow.conn, store_hash, [c.product_id for c in commands])
            if existing:
                errors = [domain.field_error(i, "product_id", "already_assigned",
                                             f"product {c.product_id} is already assigned", product_id=c.product_id)
                          for i, c in enumerate(commands) if c.product_id in existing]
                raise domain.AlreadyAssigned(f"items[{errors[0]['item']}].product_id: {errors[0]['message']}",
                                             details={"errors": errors})
            assigned = await repository.count_assigned(uow.conn, store_hash)
            if entitlement.limit is not None and assigned + len(commands) > entitlement.limit:
                raise domain.PlanLimitReached(limit=entitlement.limit, assigned=assigned, requested=len(commands),
                                              plan=entitlement.plan)
            return await _insert_assigned(uow, settings, commands, actor=actor, source=source,
                                          key_prefix=f"assign:{uuid.uuid4()}")

        return await self.tx.run(body)

    async def update(self, store_hash: str, raw_items: Sequence[dict[str, Any]], *, actor: str = "",
                     source: str = "admin") -> list[ProductRow]:
        """All or nothing. Locks the products in primary-key order. Unknown products are
        ValidationFailed naming the item."""
        domain.check_store_hash(store_hash)
        commands = domain.validate_update_items(raw_items)
        source = source_name(source, "admin")

        async def body(uow: UnitOfWork) -> list[ProductRow]:
            locked = await repository.lock_products(uow.conn, store_hash, [c.product_id for c in commands])
            require_assigned(commands, locked)
            settings = await repository.get_settings(uow.conn, store_hash)
            changes = ChangeSet({store_hash: settings})
            for command in commands:
                _apply_update(changes, locked[command.product_id], command, actor=actor, source=source)
            await changes.flush(uow)
            return [locked[c.product_id] for c in commands]

        return await self.tx.run(body)

    async def unassign(self, store_hash: str, product_ids: Sequence[int], *, restore_tracking: bool,
                       disable_product: bool, actor: str = "") -> list[ProductRow]:
        """All or nothing: every id must be assigned. Locks the rows, deletes them, writes an
        unassign ledger entry and product.unassigned (with the write-back options and stock)."""
        domain.check_store_hash(store_hash)
        domain.check_count(len(product_ids), domain.MAX_BULK_ITEMS, "product_ids")
        errors: list[dict[str, Any]] = []
        for index, product_id in enumerate(product_ids):
            domain.check_product_id(errors, index, product_id)
        domain.check_duplicates(errors, list(product_ids))
        domain.raise_if_errors(errors)

        async def body(uow: UnitOfWork) -> list[ProductRow]:
            locked = await repository.lock_products(uow.conn, store_hash, product_ids)
            require_assigned([domain.UpdateCommand(product_id=p) for p in product_ids], locked)
            settings = await repository.get_settings(uow.conn, store_hash)
            products = [locked[p] for p in product_ids]
            await _unassign_locked(uow, settings, products, restore_tracking=restore_tracking,
                                   disable_product=disable_product, actor=actor)
            return products

        return await self.tx.run(body)

    async def apply_plan_change(self, uow: UnitOfWork, store_hash: str, incoming: domain.PlanLimit, *,
                                event_id: str, policy_keep: int | None, restore_tracking: bool,
                                reason: str) -> domain.OverLimitSelection | None:
        """Handle one billing.plan.changed in the caller's transaction (the consumer's, with
        its inbox row); returns what the over-limit policy kept and unassigned, if it ran.

        Locks the store's settings row first, the same per-store mutex assigns and imports
        take, so no assign slips in between the count and the unassigns. Records the newest
        plan change of the store (store_plans); with a policy (`policy_keep`, rule
        keep_earliest_assigned) locks every product row of the store in primary-key order
        and unassigns those beyond the limit through the same path as UnassignProducts
        (actor and source "billing", the product never disabled). The limit is the newest
        known plan's, so a downgrade handled after a later upgrade unassigns nothing the
        upgrade allows; a store within the limit is left untouched, so a replay changes
        nothing."""
        settings = await repository.lock_store(uow.conn, uow.dialect, store_hash)
        known = await repository.get_store_plan(uow.conn, store_hash)
        newest = domain.newest_plan_limit(known, incoming)
        if newest is incoming:
            await repository.save_store_plan(uow.conn, store_hash, incoming, event_id, exists=known is not None)
        if policy_keep is None:
            return None
        keep = domain.over_limit_keep(policy_keep, incoming, newest)
        if keep is None:
            return None
        products = await repository.lock_store_products(uow.conn, store_hash)
        selection = domain.keep_earliest_assigned([(p.product_id, p.assigned_at) for p in products], keep)
        by_id = {p.product_id: p for p in products}
        await _unassign_locked(uow, settings, [by_id[p] for p in selection.unassigned],
                               restore_tracking=restore_tracking, disable_product=False, actor="billing",
                               source="billing", reason=domain.downgrade_note(reason, newest.plan, keep),
                               key_prefix=f"plan:{event_id}")
        return selection

    async def get_product(self, store_hash: str, product_id: int, ledger_limit: int = 20
                          ) -> tuple[ProductRow, list[Any], StoreSettingsRow]:
        domain.check_store_hash(store_hash)
        async with self.tx.db.read() as conn:
            found = await repository.load_products(conn, store_hash, [product_id])
            if product_id not in found:
                raise NotFound(f"product {product_id} is not assigned", details={"product_id": product_id})
            entries, _ = await repository.list_ledger(conn, store_hash, product_id, 0,
                                                      min(max(ledger_limit or 20, 1), 200))
            settings = await repository.get_settings(conn, store_hash)
        return found[product_id], entries, settings

    async def list_products(self, store_hash: str, *, q: str = "", status: str | None = None, page: int = 1,
                            limit: int = 50, product_ids: Sequence[int] = ()
                            ) -> tuple[list[ProductRow], int, StoreSettingsRow, int, int]:
        domain.check_store_hash(store_hash)
        page, limit = domain.paging(page, limit, 250)
        async with self.tx.db.read() as conn:
            settings = await repository.get_settings(conn, store_hash)
            products, total = await repository.list_products(
                conn, store_hash, q=q, status=status, low_stock_level=settings.low_stock_level,
                product_ids=product_ids, offset=(page - 1) * limit, limit=limit)
        return products, total, settings, page, limit


async def _insert_assigned(uow: UnitOfWork, settings: StoreSettingsRow, commands: Sequence[domain.AssignCommand], *,
                           actor: str, source: str, key_prefix: str) -> list[ProductRow]:
    now = utcnow()
    # Versions start at the assignment's microsecond and grow by 1 per change, so a
    # re-assigned product's views are newer than those of its previous assignment.
    first_version = time.time_ns() // 1000
    products = [ProductRow(0, settings.store_hash, c.product_id, c.name, c.sku, c.stock, c.threshold,
                           c.incoming_stock, c.back_in_stock_date, domain.category_key(c.category_ids), c.brand_id,
                           first_version, now, now) for c in commands]
    rows = [{
        "store_hash": p.store_hash, "product_id": p.product_id, "variant_id": None, "location_id": None,
        "name": p.name, "sku": p.sku, "stock": p.stock, "threshold": p.threshold, "incoming_stock": p.incoming_stock,
        "back_in_stock_date": p.back_in_stock_date, "category_key": p.category_key, "brand_id": p.brand_id,
        "version": p.version, "assigned_at": now, "updated_at": now,
    } for p in products]
    allocated = await bulk.allocate_ids(uow, assigned_products, len(rows))
    if allocated is not None:
        for row, product, product_row_id in zip(rows, products, allocated, strict=True):
            row["id"] = product.id = product_row_id
        try:
            await bulk.copy_rows(uow, assigned_products, rows)
        except bulk.DuplicateKey as exc:
            raise KeyRaced() from exc
    else:
        result = await uow.conn.execute(
            assigned_products.insert().returning(assigned_products.c.id, sort_by_parameter_order=True), rows)
        for product, inserted in zip(products, result, strict=True):
            product.id = inserted.id
    ledger_rows = []
    assigned_events: list[tuple[str, str, Message]] = []
    for product in products:
        ledger_rows.append(ledger_row(
            product.store_hash, product.product_id, kind="assign", stock_before=0, stock_after=product.stock,
            absolute=product.stock, source=source, actor=actor, key=f"{key_prefix}:{product.product_id}",
            created_at=now))
        assigned_events.append((product.store_hash, "product.assigned", events_pb.ProductAssigned(
            product=events.product_state(product, settings), actor=actor)))
    await bulk.copy_rows(uow, stock_ledger, ledger_rows)
    await bulk.add_events_copy(uow, outbox, SERVICE, assigned_events)
    return products


def _apply_update(changes: ChangeSet, product: ProductRow, command: domain.UpdateCommand, *, actor: str,
                  source: str) -> None:
    values = command.changes()
    sellable_before = product.salable is None or product.salable > 0
    edited: list[str] = []
    for name in ("threshold", "incoming_stock", "back_in_stock_date", "name", "sku", "brand_id"):
        if name in values and getattr(product, name) != values[name]:
            setattr(product, name, values[name])
            edited.append(name)
    if "category_ids" in values:
        new_key = domain.category_key(values["category_ids"])
        if new_key != product.category_key:
            product.category_key = new_key
            edited.append("category_ids")
    if "stock" in values:
        changes.record(product, kind="set", new_stock=values["stock"], absolute=values["stock"], source=source,
                       actor=actor, key="", sellable_before=sellable_before,
                       note=("edited: " + ", ".join(edited)) if edited else "")
    elif edited:
        changes.record(product, kind="edit", new_stock=product.stock, source=source, actor=actor, key="",
                       sellable_before=sellable_before, note="edited: " + ", ".join(edited))


async def _unassign_locked(uow: UnitOfWork, settings: StoreSettingsRow, products: Sequence[ProductRow], *,
                           restore_tracking: bool, disable_product: bool, actor: str, source: str = "admin",
                           reason: str = "", key_prefix: str = "") -> None:
    """Unassign product rows the caller has locked: delete them, write one unassign ledger
    entry each (`reason` leads its note; keys `<key_prefix>:<product_id>`, random without a
    prefix) and product.unassigned (with the write-back options and stock), in the caller's
    transaction."""
    if not products:
        return
    store_hash = settings.store_hash
    now = utcnow()
    options = f"restore_tracking={restore_tracking} disable_product={disable_product}"
    for product in products:
        product.version += 1
    for start in range(0, len(products), 500):  # SQLite caps bound parameters
        chunk = products[start:start + 500]
        await uow.conn.execute(delete(assigned_products).where(assigned_products.c.id.in_([p.id for p in chunk])))
    await uow.conn.execute(stock_ledger.insert(), [ledger_row(
        store_hash, p.product_id, kind="unassign", stock_before=p.stock, stock_after=p.stock, source=source,
        actor=actor, key=f"{key_prefix}:{p.product_id}" if key_prefix else f"unassign:{uuid.uuid4()}",
        created_at=now, note=f"{reason} ({options})" if reason else options,
    ) for p in products])
    await add_events(uow, outbox, SERVICE, [
        (store_hash, "product.unassigned", events_pb.ProductUnassigned(
            product=events.product_state(p, settings, assigned=False), restore_tracking=restore_tracking,
            disable_product=disable_product, stock=p.stock, actor=actor))
        for p in products
    ])
