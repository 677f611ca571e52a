"""Billing use cases: each runs in one unit of work that locks the store's subscription row,
catches the subscription up to `now` (renewals and due downgrades), applies the change and
writes charges, history and events (outbox) in the same transaction.

The clock is injected (`Clock`), so tests move time without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from backorder.events.v1 import billing_events_pb2
from google.protobuf import timestamp_pb2

from services.billing import domain, repository, tables
from services.billing.domain import Catalogue, Outcome, PlanSnapshot, Quote, SubscriptionState
from services.billing.providers import CheckoutRequest, PaymentProvider, ProviderCharge
from services.billing.repository import StoredCharge, StoredSubscription
from services.common.bus import add_event
from services.common.clock import as_utc, utcnow
from services.common.db import Database, UnitOfWork
from services.common.errors import ValidationFailed

log = logging.getLogger(__name__)

SERVICE = "billing"
Clock = Callable[[], datetime]
HISTORY_SHOWN = 50
system_clock: Clock = utcnow


@dataclass(frozen=True)
class SubscriptionView:
    store_hash: str
    # None when the store never started a subscription.
    stored: StoredSubscription | None
    plan: PlanSnapshot
    last_charge: StoredCharge | None
    history: list[domain.HistoryNote]

    @property
    def status(self) -> str:
        return domain.NONE if self.stored is None else self.stored.state.status


@dataclass(frozen=True)
class ChangeResult:
    quote: Quote
    charge: StoredCharge | None
    subscription: SubscriptionView


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


class BillingHandlers:
    def __init__(self, db: Database, catalogue: Catalogue, provider: PaymentProvider, *,
                 clock: Clock = system_clock) -> None:
        self.db = db
        self.catalogue = catalogue
        self.provider = provider
        self.clock = clock

    def now(self) -> datetime:
        return as_utc(self.clock())

    # ------------------------------------------------------------ reads

    async def entitlement(self, store_hash: str) -> PlanSnapshot:
        """The plan that governs the store now (what inventory enforces when assigning products).
        One primary-key read; a due downgrade counts at once even before the scheduler ran."""
        domain.validate_store_hash(store_hash)
        async with self.db.read() as conn:
            stored = await repository.load_subscription(conn, store_hash)
        state = stored.state if stored else None
        return domain.effective_plan(state, self.catalogue, self.now())

    def plans(self) -> list[domain.PlanSpec]:
        return list(self.catalogue.plans)

    async def subscription(self, store_hash: str) -> SubscriptionView:
        domain.validate_store_hash(store_hash)
        view = await self._view(store_hash)
        if view.stored is not None and view.stored.state.status == domain.ACTIVE \
                and view.stored.state.cycle_end <= self.now():
            await self.catch_up(store_hash)
            view = await self._view(store_hash)
        return view

    async def _view(self, store_hash: str) -> SubscriptionView:
        async with self.db.read() as conn:
            stored = await repository.load_subscription(conn, store_hash)
            charges = await repository.list_charges(conn, store_hash, limit=1)
            history = await repository.list_history(conn, store_hash, limit=HISTORY_SHOWN)
        state = stored.state if stored else None
        plan = domain.effective_plan(state, self.catalogue, self.now())
        return SubscriptionView(store_hash, stored, plan, charges[0] if charges else None, history)

    async def charges(self, store_hash: str, *, limit: int, before_id: int) -> list[StoredCharge]:
        domain.validate_store_hash(store_hash)
        if limit == 0:
            limit = 50
        if not 1 <= limit <= 200:
            raise ValidationFailed("limit must be between 1 and 200",
                                          errors=[{"field": "limit", "reason": "out_of_range", "value": limit}])
        if before_id < 0:
            raise ValidationFailed("before_id must not be negative",
                                          errors=[{"field": "before_id", "reason": "out_of_range"}])
        async with self.db.read() as conn:
            return await repository.list_charges(conn, store_hash, limit=limit, before_id=before_id)

    async def quote(self, store_hash: str, plan: str) -> Quote:
        domain.validate_store_hash(store_hash)
        domain.validate_plan_code(self.catalogue, plan)
        now = self.now()
        async with self.db.read() as conn:
            stored = await repository.load_subscription(conn, store_hash)
        state = self._require_active(store_hash, stored)
        current = domain.advance(state, self.catalogue, now).state
        return domain.quote_change(current, self.catalogue, plan, now)

    # ------------------------------------------------------------ writes

    def _require_active(self, store_hash: str, stored: StoredSubscription | None) -> SubscriptionState:
        if stored is None or stored.state.status != domain.ACTIVE:
            raise domain.SubscriptionNotActive(
                "the store has no active subscription (install the app first)",
                details={"store_hash": store_hash, "status": stored.state.status if stored else domain.NONE},
            )
        return stored.state

    async def _record(self, uow: UnitOfWork, store_hash: str, outcome: Outcome, now: datetime, *,
                      provider_charge: ProviderCharge | None = None) -> list[int]:
        """Charges (once per idempotency key), history and events of `outcome`, in `uow`."""
        charge_ids: list[int] = []
        for draft in outcome.charges:
            charge = provider_charge if draft.kind == "proration" and provider_charge else ProviderCharge(
                self.provider.name)
            charge_id = await repository.insert_charge(
                uow.conn, store_hash, draft, provider=charge.provider, provider_reference=charge.reference,
                checkout_url=charge.checkout_url, now=now,
            )
            if charge_id is None:
                continue
            charge_ids.append(charge_id)
            await add_event(uow, tables.outbox, store_hash=store_hash, service=SERVICE, event_type="charge.recorded",
                            payload=billing_events_pb2.ChargeRecorded(
                                store_hash=store_hash, charge_id=charge_id, kind=draft.kind, plan=draft.plan,
                                amount_cents=draft.amount_cents, currency=domain.CURRENCY,
                                cycle_start=_stamp(draft.cycle_start)))
        await repository.insert_history(uow.conn, store_hash, outcome.history)
        for change in outcome.changes:
            payload = billing_events_pb2.PlanChanged(
                store_hash=store_hash, old_plan=change.old_plan, new_plan=change.new_plan.code,
                max_assigned_products=change.new_plan.max_assigned_products or 0,
                unlimited=change.new_plan.unlimited, effective_at=_stamp(change.effective_at),
                reason=change.reason, cycle_start=_stamp(change.cycle_start), cycle_end=_stamp(change.cycle_end),
            )
            if change.over_limit is not None:
                payload.over_limit_policy.CopyFrom(billing_events_pb2.OverLimitPolicy(
                    rule=change.over_limit.rule, keep=change.over_limit.keep,
                    restore_tracking=change.over_limit.restore_tracking, note=change.over_limit.note))
            await add_event(uow, tables.outbox, store_hash=store_hash, service=SERVICE, event_type="plan.changed",
                            payload=payload)
        return charge_ids

    async def _locked_current(self, uow: UnitOfWork, store_hash: str, now: datetime
                              ) -> tuple[StoredSubscription | None, Outcome | None]:
        """Lock the subscription row and catch it up to `now` (written in `uow`)."""
        stored = await repository.load_subscription(uow.conn, store_hash, for_update=True)
        if stored is None or stored.state.status != domain.ACTIVE:
            return stored, None
        caught_up = domain.advance(stored.state, self.catalogue, now)
        if caught_up.state != stored.state:
            await repository.update_subscription(uow.conn, caught_up.state, now)
            await self._record(uow, store_hash, caught_up, now)
        return stored, caught_up

    async def start(self, store_hash: str, merchant_account_uuid: str = "") -> tuple[SubscriptionView, bool]:
        """Start on the start plan; idempotent. Locks the store's row; publishes plan.changed (start)."""
        domain.validate_store_hash(store_hash)
        if len(merchant_account_uuid) > 64:
            raise ValidationFailed("merchant_account_uuid is too long",
                                          errors=[{"field": "merchant_account_uuid", "reason": "too_long"}])
        now = self.now()
        created = False
        async with self.db.unit_of_work() as uow:
            stored, _ = await self._locked_current(uow, store_hash, now)
            if stored is None or stored.state.status != domain.ACTIVE:
                outcome = domain.start_subscription(store_hash, self.catalogue.start_plan, now)
                if stored is None:
                    created = await repository.insert_subscription(uow.conn, outcome.state, merchant_account_uuid,
                                                                   now)
                else:
                    await repository.update_subscription(uow.conn, outcome.state, now, restarted=True,
                                                         merchant_account_uuid=merchant_account_uuid)
                    created = True
                if created:
                    await self._record(uow, store_hash, outcome, now)
            elif merchant_account_uuid and merchant_account_uuid != stored.merchant_account_uuid:
                await repository.update_subscription(uow.conn, stored.state, now,
                                                     merchant_account_uuid=merchant_account_uuid)
            await uow.commit()
        return await self._view(store_hash), created

    async def change_plan(self, store_hash: str, plan: str) -> ChangeResult:
        """Upgrade at once (prorated charge) or schedule a downgrade for the cycle end.

        With a real provider the checkout is created before the transaction (no row lock is held
        across HTTP); the transaction then re-quotes under the row lock and raises ChangeConflict
        if the subscription changed in between. Publishes plan.changed on upgrades."""
        domain.validate_store_hash(store_hash)
        domain.validate_plan_code(self.catalogue, plan)
        provider_charge: ProviderCharge | None = None
        expected: Quote | None = None
        if self.provider.name != "none":
            expected = await self.quote(store_hash, plan)
            if expected.kind == domain.UPGRADE:
                provider_charge = await self._checkout(store_hash, expected)
        now = self.now()
        async with self.db.unit_of_work() as uow:
            stored, caught_up = await self._locked_current(uow, store_hash, now)
            state = self._require_active(store_hash, stored)
            current = caught_up.state if caught_up else state
            quote = domain.quote_change(current, self.catalogue, plan, now)
            if expected is not None and (expected.kind, expected.from_plan, expected.amount_cents) != (
                    quote.kind, quote.from_plan, quote.amount_cents):
                raise domain.ChangeConflict("the subscription changed meanwhile; quote again and retry",
                                            details={"store_hash": store_hash, "plan": plan})
            outcome = domain.apply_change(current, self.catalogue, quote, now,
                                          charge_key=f"proration:{uuid.uuid4()}")
            await repository.update_subscription(uow.conn, outcome.state, now)
            charge_ids = await self._record(uow, store_hash, outcome, now, provider_charge=provider_charge)
            await uow.commit()
        charge = None
        if charge_ids:
            async with self.db.read() as conn:
                charges = await repository.list_charges(conn, store_hash, limit=1, before_id=charge_ids[-1] + 1)
            charge = charges[0] if charges else None
        return ChangeResult(quote, charge, await self._view(store_hash))

    async def _checkout(self, store_hash: str, quote: Quote) -> ProviderCharge:
        async with self.db.read() as conn:
            stored = await repository.load_subscription(conn, store_hash)
        target = self.catalogue.get(quote.to_plan)
        subscription = await self.provider.find_subscription(store_hash)
        return await self.provider.create_checkout(CheckoutRequest(
            store_hash=store_hash,
            merchant_account_uuid=stored.merchant_account_uuid if stored else "",
            plan_code=target.code, plan_name=target.name, monthly_price_cents=target.price_cents,
            description=f"Backorder {target.name} plan; upgrade proration {domain.format_cents(quote.amount_cents)}",
            subscription_id=subscription.id if subscription else "",
        ))

    async def cancel_pending(self, store_hash: str) -> SubscriptionView:
        """Cancel a scheduled downgrade (NoPendingChange when none). Locks the store's row."""
        domain.validate_store_hash(store_hash)
        now = self.now()
        async with self.db.unit_of_work() as uow:
            stored, caught_up = await self._locked_current(uow, store_hash, now)
            state = self._require_active(store_hash, stored)
            current = caught_up.state if caught_up else state
            outcome = domain.cancel_pending(current, now)
            await repository.update_subscription(uow.conn, outcome.state, now)
            await self._record(uow, store_hash, outcome, now)
            await uow.commit()
        return await self._view(store_hash)

    async def end(self, store_hash: str) -> SubscriptionView:
        """End the subscription (uninstall); idempotent. Cancels the provider's subscription after
        the commit, best effort (logged): the app is gone either way. Publishes plan.changed (end)."""
        domain.validate_store_hash(store_hash)
        now = self.now()
        ended = False
        async with self.db.unit_of_work() as uow:
            stored, caught_up = await self._locked_current(uow, store_hash, now)
            if stored is not None and caught_up is not None:
                outcome = domain.end_subscription(caught_up.state, self.catalogue, now)
                await repository.update_subscription(uow.conn, outcome.state, now)
                await self._record(uow, store_hash, outcome, now)
                ended = True
            await uow.commit()
        if ended and self.provider.name != "none":
            await self._cancel_provider_subscription(store_hash)
        return await self._view(store_hash)

    async def catch_up(self, store_hash: str) -> bool:
        """Apply every renewal and due downgrade of one store; True when something changed.
        A downgrade to a free plan then cancels the provider's subscription (best effort)."""
        now = self.now()
        async with self.db.unit_of_work() as uow:
            stored, caught_up = await self._locked_current(uow, store_hash, now)
            await uow.commit()
        if stored is None or caught_up is None or caught_up.state == stored.state:
            return False
        downgrades = [change for change in caught_up.changes if change.reason == "downgrade"]
        if downgrades and downgrades[-1].new_plan.price_cents == 0 and self.provider.name != "none":
            await self._cancel_provider_subscription(store_hash)
        return True

    async def _cancel_provider_subscription(self, store_hash: str) -> None:
        try:
            subscription = await self.provider.find_subscription(store_hash)
            if subscription is not None:
                await self.provider.cancel_subscription(subscription.id)
        except Exception:  # noqa: BLE001 - our change stands; an operator can cancel by hand
            log.exception("could not cancel the provider subscription of %s", store_hash)

    async def run_due(self, *, batch: int = 200) -> int:
        """One scheduler pass: catch up every store whose cycle has ended; returns how many moved.
        Safe to run concurrently with itself and with requests (each store is locked and re-read)."""
        moved = 0
        while True:
            async with self.db.read() as conn:
                due = await repository.due_store_hashes(conn, self.now(), limit=batch)
            if not due:
                return moved
            progressed = 0
            for store_hash in due:
                if await self.catch_up(store_hash):
                    progressed += 1
            moved += progressed
            if progressed == 0 or len(due) < batch:
                return moved

    async def run_scheduler(self, interval_s: float, stop: asyncio.Event | None = None) -> None:
        """The background loop: a pass every `interval_s`; errors are logged and retried next pass."""
        while stop is None or not stop.is_set():
            try:
                await self.run_due()
            except Exception:  # noqa: BLE001 - the loop must survive a database blip
                log.exception("billing scheduler pass failed")
            await asyncio.sleep(interval_s)
