"""Orders: applying order lines (through the group-commit batcher) and returning them.

Order lines go through `OrderBatcher`, which applies the ApplyOrder calls that arrive
while a transaction is in flight together in the next one (group commit): the locks and
checks of any stock change (products locked with SELECT … FOR UPDATE in primary-key
order, then the idempotency keys read), fewer round trips and commits per line. The
UNIQUE (store, key) constraint on the ledger is the last line of defence against a
double apply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from backorder.events.v1 import inventory_events_pb2 as events_pb
from sqlalchemy import delete
from sqlalchemy.exc import DBAPIError

from services.common.clock import utcnow
from services.common.db import UnitOfWork
from services.common.errors import DomainError, ValidationFailed
from services.inventory import domain, repository
from services.inventory.changes import ChangeSet, KeyRaced, Transactions, is_retryable
from services.inventory.store_settings import StoreSettings
from services.inventory.tables import backorder_report

# One outcome per call of a batch: its result, or the error that call alone raised.
Outcome: TypeAlias = "OrderResult | BaseException"


@dataclass(frozen=True)
class LineResult:
    line_id: str
    product_id: int
    applied: bool
    quantity: int
    backordered_qty: int = 0
    over_threshold: bool = False
    stock_before: int = 0
    stock_after: int = 0
    replayed: bool = False


@dataclass(frozen=True)
class OrderResult:
    order_id: str
    lines: tuple[LineResult, ...]


@dataclass(frozen=True)
class ReturnedLineResult:
    line_id: str
    product_id: int
    quantity: int
    stock_before: int
    stock_after: int
    replayed: bool


@dataclass(frozen=True)
class ReturnResult:
    order_id: str
    lines: tuple[ReturnedLineResult, ...]
    returned: bool


# ---------------------------------------------------------------- the batcher

class OrderBatcher:
    """Applies concurrent ApplyOrder calls together (group commit).

    Up to `workers` transactions run at a time. A call that arrives while they are all
    busy waits, and the next transaction takes every waiting call (up to `max_batch`).
    Calls on a product that a running transaction holds also wait for it, even with a
    transaction to spare: theirs would only wait for the row lock, so orders on one hot
    product go in a few large transactions instead of alternating large and tiny ones.
    Waiting calls are taken in arrival order, and a call that must wait holds back later
    calls on its products. Per-call outcomes are isolated: a call whose key conflicts
    gets its own error and writes nothing; the others are applied.
    """

    def __init__(self, apply_batch: Callable[[list[domain.OrderCommand]], Awaitable[list[Outcome]]], *,
                 workers: int = 4,
                 max_batch: int = 256) -> None:
        self._apply_batch = apply_batch
        self._workers = workers
        self._max_batch = max_batch
        self._waiting: list[_Call] = []
        self._busy_products: set[tuple[str, int]] = set()
        self._running: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def submit(self, command: domain.OrderCommand) -> OrderResult:
        call = _Call(command, {(command.store_hash, line.product_id) for line in command.lines},
                     asyncio.get_running_loop().create_future())
        self._waiting.append(call)
        if len(self._running) < self._workers and not call.products & self._busy_products:
            self._start_batches()
        return await call.future

    def _start_batches(self) -> None:
        while len(self._running) < self._workers and self._waiting and not self._stopping:
            batch: list[_Call] = []
            held_back: list[_Call] = []
            blocked = set(self._busy_products)
            for call in self._waiting:
                if call.future.done():
                    continue
                if len(batch) < self._max_batch and not call.products & blocked:
                    batch.append(call)
                else:
                    held_back.append(call)
                    blocked |= call.products
            self._waiting = held_back
            if not batch:
                return
            products = set().union(*(call.products for call in batch))
            self._busy_products |= products
            task = asyncio.create_task(self._run(batch, products), name="order-batch")
            self._running.add(task)

    async def _run(self, batch: list[_Call], products: set[tuple[str, int]]) -> None:
        try:
            outcomes: list[Outcome] = await self._apply_batch([call.command for call in batch])
        except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
            outcomes = [exc] * len(batch)
        finally:
            self._busy_products -= products
            task = asyncio.current_task()
            if task is not None:
                self._running.discard(task)
            self._start_batches()
        for call, outcome in zip(batch, outcomes, strict=True):
            if call.future.done():
                continue
            if isinstance(outcome, BaseException):
                call.future.set_exception(outcome)
            else:
                call.future.set_result(outcome)

    async def stop(self) -> None:
        self._stopping = True
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


@dataclass
class _Call:
    command: domain.OrderCommand
    products: set[tuple[str, int]]
    future: asyncio.Future[OrderResult]


class Orders:
    def __init__(self, tx: Transactions, store_settings: StoreSettings, *, batch_workers: int = 4) -> None:
        self.tx = tx
        self.store_settings = store_settings
        self.batcher = OrderBatcher(self.apply_batch, workers=batch_workers)

    async def apply_order(self, command: domain.OrderCommand) -> OrderResult:
        """Applies each line once per (order, line); see OrderBatcher and _apply_orders_in."""
        return await self.batcher.submit(command)

    async def apply_batch(self, commands: list[domain.OrderCommand]) -> list[Outcome]:
        """First optimistically (no key read: new lines are the common case), then, if a
        key turned out to exist, again reading the keys under the locks."""
        for optimistic in (True, False):

            async def body(uow: UnitOfWork, optimistic: bool = optimistic) -> list[Outcome]:
                return await self._apply_orders_in(uow, commands, optimistic=optimistic)

            try:
                return await self.tx.run(body, attempts=1 if optimistic else 3)
            except KeyRaced:
                continue
            except DBAPIError as exc:
                if not is_retryable(exc):
                    raise
        # Still racing (only possible across replicas): one call per transaction.
        results: list[Outcome] = []
        for command in commands:

            async def one(uow: UnitOfWork, command: domain.OrderCommand = command) -> list[Outcome]:
                return await self._apply_orders_in(uow, [command])

            try:
                results.extend(await self.tx.run(one))
            except DomainError as exc:
                results.append(exc)
        return results

    async def _apply_orders_in(self, uow: UnitOfWork, commands: list[domain.OrderCommand], *,
                               optimistic: bool = False) -> list[Outcome]:
        """Locks every product of every line (PK order), then reads the line keys (unless
        optimistic: then the ledger insert detects an existing key and raises KeyRaced), then
        applies each call's new lines in order. Returns one OrderResult or DomainError per call."""
        locked = await repository.lock_products_many(
            uow.conn, ((c.store_hash, line.product_id) for c in commands for line in c.lines))
        existing: dict[tuple[str, str], Any] = {}
        if not optimistic:
            keys = [(c.store_hash, domain.order_line_key(c.order_id, line.line_id))
                    for c in commands for line in c.lines]
            existing = await repository.ledger_by_keys(uow.conn, keys)
        settings = await self.store_settings.cached(uow.conn, {c.store_hash for c in commands})
        changes = ChangeSet(settings)
        applied_in_batch: dict[tuple[str, str], tuple[str, LineResult]] = {}
        outcomes: list[Outcome] = []
        for command in commands:
            conflict = None
            for line in command.lines:
                key = (command.store_hash, domain.order_line_key(command.order_id, line.line_id))
                earlier = existing.get(key)
                if earlier is not None and earlier.request_hash != line.fingerprint():
                    conflict = key[1]
                elif key in applied_in_batch and applied_in_batch[key][0] != line.fingerprint():
                    conflict = key[1]
                if conflict:
                    break
            if conflict:
                outcomes.append(domain.IdempotencyConflict(conflict, order_id=command.order_id))
                continue
            lines = []
            backordered_lines = []
            for line in command.lines:
                key = (command.store_hash, domain.order_line_key(command.order_id, line.line_id))
                if key in existing:
                    lines.append(_line_from_ledger(line, existing[key]))
                    continue
                if key in applied_in_batch:
                    lines.append(replace(applied_in_batch[key][1], replayed=True))
                    continue
                product = locked.get((command.store_hash, line.product_id))
                if product is None:
                    lines.append(LineResult(line.line_id, line.product_id, applied=False, quantity=line.quantity))
                    continue
                split = domain.split_line(product.stock, line.quantity, product.threshold)
                fingerprint = line.fingerprint()
                changes.record(
                    product, kind="order", new_stock=split.stock_after, source="order", actor="",
                    key=key[1], request_hash=fingerprint, order_id=command.order_id, line_id=line.line_id,
                    quantity=line.quantity, backordered_qty=split.backordered, over_threshold=split.over_threshold,
                )
                result = LineResult(line.line_id, line.product_id, True, line.quantity, split.backordered,
                                    split.over_threshold, split.stock_before, split.stock_after)
                applied_in_batch[key] = (fingerprint, result)
                lines.append(result)
                if split.backordered > 0:
                    backordered_lines.append(events_pb.BackorderedLine(
                        line_id=line.line_id, product_id=line.product_id, quantity=line.quantity,
                        backordered_qty=split.backordered, over_threshold=split.over_threshold,
                        name=line.name or product.name, sku=line.sku or product.sku))
                    changes.report_rows.append({
                        "store_hash": command.store_hash, "order_id": command.order_id, "line_id": line.line_id,
                        "product_id": line.product_id, "product_name": (line.name or product.name)[:255],
                        "sku": (line.sku or product.sku)[:255], "purchased_qty": line.quantity,
                        "backordered_qty": split.backordered, "order_email": command.order_email[:255],
                        "order_date": command.order_date,
                        "category_key": domain.category_key(line.category_ids) or product.category_key,
                        "brand_id": line.brand_id or product.brand_id, "created_at": utcnow(),
                    })
            if backordered_lines:
                order_event = events_pb.OrderBackordered(order_id=command.order_id, order_email=command.order_email,
                                                         lines=backordered_lines)
                order_event.order_date.FromDatetime(command.order_date)
                changes.events.append((command.store_hash, "order.backordered", order_event))
            outcomes.append(OrderResult(command.order_id, tuple(lines)))
        await changes.flush_small(uow, keys_checked=not optimistic)
        return outcomes

    async def return_order_lines(self, store_hash: str, order_id: str, reason: str,
                                 line_ids: Sequence[str] = ()) -> ReturnResult:
        """Returns each applied line of the order once (key return:<order>:<line>). Locks
        the products in PK order; lines of products no longer assigned are skipped."""
        domain.check_store_hash(store_hash)
        if not order_id:
            raise ValidationFailed("order_id: required", [domain.field_error(None, "order_id", "required", "required")])

        async def body(uow: UnitOfWork) -> ReturnResult:
            settings = await repository.get_settings(uow.conn, store_hash)
            if not settings.return_stock_on_cancel:
                return ReturnResult(order_id, (), False)
            entries = await repository.ledger_for_order(uow.conn, store_hash, order_id)
            order_lines = {e.line_id: e for e in entries if e.kind == "order"}
            wanted = list(line_ids) or list(order_lines)
            unknown = [line_id for line_id in wanted if line_id not in order_lines]
            if unknown:
                raise ValidationFailed(f"line_ids: line {unknown[0]} was not applied for order {order_id}", [
                    domain.field_error(None, "line_ids", "not_applied", f"line {u} was not applied") for u in unknown])
            locked = await repository.lock_products(uow.conn, store_hash,
                                                    [order_lines[line_id].product_id for line_id in wanted])
            keys = [(store_hash, domain.return_line_key(order_id, line_id)) for line_id in wanted]
            returned = await repository.ledger_by_keys(uow.conn, keys)
            changes = ChangeSet({store_hash: settings})
            results = []
            for line_id in wanted:
                line = order_lines[line_id]
                key = domain.return_line_key(order_id, line_id)
                if (store_hash, key) in returned:
                    earlier = returned[(store_hash, key)]
                    results.append(ReturnedLineResult(line_id, line.product_id, earlier.delta, earlier.stock_before,
                                                      earlier.stock_after, True))
                    continue
                product = locked.get(line.product_id)
                if product is None:
                    continue
                before = product.stock
                changes.record(product, kind="return", new_stock=domain.return_line(before, line.quantity),
                               source="order", actor=reason[:255], key=key, order_id=order_id, line_id=line_id,
                               quantity=line.quantity, note=f"returned: {reason}")
                results.append(ReturnedLineResult(line_id, line.product_id, line.quantity, before, product.stock,
                                                  False))
            fresh = [r.line_id for r in results if not r.replayed]
            if fresh:
                await uow.conn.execute(delete(backorder_report).where(
                    backorder_report.c.store_hash == store_hash, backorder_report.c.order_id == order_id,
                    backorder_report.c.line_id.in_(fresh)))
            await changes.flush(uow)
            return ReturnResult(order_id, tuple(results), True)

        return await self.tx.run(body)


def _line_from_ledger(line: domain.OrderLineCommand, entry: Any) -> LineResult:
    return LineResult(line.line_id, line.product_id, True, line.quantity, entry.backordered_qty,
                      bool(entry.over_threshold), entry.stock_before, entry.stock_after, replayed=True)

