"""Queries on billing's tables. One lock only: the store's subscription row (`FOR UPDATE` on
PostgreSQL; SQLite's writers are serialised by BEGIN IMMEDIATE)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import tables
from services.billing.domain import (
    CURRENCY,
    ChargeDraft,
    HistoryNote,
    PlanSnapshot,
    SubscriptionState,
)
from services.common.clock import as_utc
from services.common.db import insert_ignore


@dataclass(frozen=True)
class StoredSubscription:
    state: SubscriptionState
    merchant_account_uuid: str
    started_at: datetime


@dataclass(frozen=True)
class StoredCharge:
    id: int
    store_hash: str
    kind: str
    plan: str
    from_plan: str
    amount_cents: int
    currency: str
    cycle_start: datetime
    cycle_end: datetime
    days_charged: int
    days_in_cycle: int
    description: str
    created_at: datetime
    provider: str
    provider_reference: str
    checkout_url: str


def _state_from_row(row: Any) -> StoredSubscription:
    pending = None
    if row.pending_plan is not None:
        pending = PlanSnapshot(row.pending_plan, row.pending_max_assigned_products, row.pending_price_cents)
    state = SubscriptionState(
        store_hash=row.store_hash,
        status=row.status,
        plan=PlanSnapshot(row.plan, row.max_assigned_products, row.price_cents),
        anchor_at=as_utc(row.anchor_at),
        cycle_index=row.cycle_index,
        pending=pending,
        pending_requested_at=as_utc(row.pending_requested_at),
    )
    return StoredSubscription(state, row.merchant_account_uuid, as_utc(row.started_at))


async def load_subscription(conn: AsyncConnection, store_hash: str, *, for_update: bool = False
                            ) -> StoredSubscription | None:
    """The store's subscription; with `for_update` it locks the row until the transaction ends."""
    query = select(tables.subscriptions).where(tables.subscriptions.c.store_hash == store_hash)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else _state_from_row(row)


def _state_values(state: SubscriptionState, now: datetime) -> dict[str, Any]:
    pending = state.pending
    return {
        "status": state.status,
        "plan": state.plan.code,
        "max_assigned_products": state.plan.max_assigned_products,
        "price_cents": state.plan.price_cents,
        "anchor_at": state.anchor_at,
        "cycle_index": state.cycle_index,
        "cycle_start": state.cycle_start,
        "cycle_end": state.cycle_end,
        "pending_plan": pending.code if pending else None,
        "pending_max_assigned_products": pending.max_assigned_products if pending else None,
        "pending_price_cents": pending.price_cents if pending else None,
        "pending_requested_at": state.pending_requested_at if pending else None,
        "updated_at": now,
    }


async def insert_subscription(conn: AsyncConnection, state: SubscriptionState, merchant_account_uuid: str,
                              now: datetime) -> bool:
    """Insert unless the store already has a row (then False: a concurrent start won)."""
    statement = insert_ignore(conn.dialect.name, tables.subscriptions, ["store_hash"]).values(
        store_hash=state.store_hash, merchant_account_uuid=merchant_account_uuid, started_at=state.anchor_at,
        **_state_values(state, now),
    )
    return (await conn.execute(statement)).first() is not None


async def update_subscription(conn: AsyncConnection, state: SubscriptionState, now: datetime, *,
                              restarted: bool = False, merchant_account_uuid: str | None = None) -> None:
    values = _state_values(state, now)
    if restarted:
        values["started_at"] = state.anchor_at
    if merchant_account_uuid is not None:
        values["merchant_account_uuid"] = merchant_account_uuid
    await conn.execute(
        tables.subscriptions.update().where(tables.subscriptions.c.store_hash == state.store_hash).values(**values)
    )


async def insert_charge(conn: AsyncConnection, store_hash: str, draft: ChargeDraft, *, provider: str,
                        provider_reference: str, checkout_url: str, now: datetime) -> int | None:
    """Record a charge once per (store, idempotency key); None when it was already recorded."""
    statement = insert_ignore(conn.dialect.name, tables.charges, ["store_hash", "idempotency_key"]).values(
        store_hash=store_hash, kind=draft.kind, plan=draft.plan, from_plan=draft.from_plan,
        amount_cents=draft.amount_cents, currency=CURRENCY, cycle_start=draft.cycle_start,
        cycle_end=draft.cycle_end, days_charged=draft.days_charged, days_in_cycle=draft.days_in_cycle,
        description=draft.description[:1000], idempotency_key=draft.idempotency_key, provider=provider,
        provider_reference=provider_reference, checkout_url=checkout_url, created_at=now,
    ).returning(tables.charges.c.id)
    row = (await conn.execute(statement)).first()
    return None if row is None else int(row.id)


async def insert_history(conn: AsyncConnection, store_hash: str, notes: list[HistoryNote]) -> None:
    if not notes:
        return
    await conn.execute(tables.history.insert(), [
        {"store_hash": store_hash, "at": note.at, "kind": note.kind, "from_plan": note.from_plan,
         "to_plan": note.to_plan, "message": note.message[:2000]}
        for note in notes
    ])


def _charge_from_row(row: Any) -> StoredCharge:
    return StoredCharge(
        id=row.id, store_hash=row.store_hash, kind=row.kind, plan=row.plan, from_plan=row.from_plan,
        amount_cents=row.amount_cents, currency=row.currency, cycle_start=as_utc(row.cycle_start),
        cycle_end=as_utc(row.cycle_end), days_charged=row.days_charged, days_in_cycle=row.days_in_cycle,
        description=row.description, created_at=as_utc(row.created_at), provider=row.provider,
        provider_reference=row.provider_reference, checkout_url=row.checkout_url,
    )


async def list_charges(conn: AsyncConnection, store_hash: str, *, limit: int, before_id: int = 0
                       ) -> list[StoredCharge]:
    query = select(tables.charges).where(tables.charges.c.store_hash == store_hash)
    if before_id > 0:
        query = query.where(tables.charges.c.id < before_id)
    rows = (await conn.execute(query.order_by(tables.charges.c.id.desc()).limit(limit))).all()
    return [_charge_from_row(row) for row in rows]


async def list_history(conn: AsyncConnection, store_hash: str, *, limit: int) -> list[HistoryNote]:
    query = (select(tables.history).where(tables.history.c.store_hash == store_hash)
             .order_by(tables.history.c.id.desc()).limit(limit))
    return [HistoryNote(as_utc(row.at), row.kind, row.from_plan, row.to_plan, row.message)
            for row in (await conn.execute(query)).all()]


async def due_store_hashes(conn: AsyncConnection, now: datetime, *, limit: int) -> list[str]:
    """Active subscriptions whose cycle ended by `now` (index ix_subscriptions_due)."""
    query = (select(tables.subscriptions.c.store_hash)
             .where(tables.subscriptions.c.status == "active", tables.subscriptions.c.cycle_end <= now)
             .order_by(tables.subscriptions.c.cycle_end).limit(limit))
    return [row[0] for row in (await conn.execute(query)).all()]
