"""BillingService: proto <-> handlers. Domain errors are mapped by the shared interceptor
(services.common.errors.GRPC_STATUS_BY_CODE); billing's own codes (already_on_plan,
no_pending_change, subscription_not_active) are not in that table and so fall back to
FAILED_PRECONDITION, which is what they mean."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias, overload

import grpc
from backorder.billing.v1 import billing_pb2, billing_pb2_grpc
from google.protobuf import timestamp_pb2

from services.billing import domain
from services.billing.handlers import BillingHandlers, SubscriptionView
from services.billing.repository import StoredCharge

# The servicer reads nothing from its context (errors are raised and mapped by the interceptor).
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


@overload
def _stamp(moment: datetime) -> timestamp_pb2.Timestamp: ...
@overload
def _stamp(moment: None) -> None: ...
def _stamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _money(cents: int) -> billing_pb2.Money:
    return billing_pb2.Money(amount_cents=cents, currency=domain.CURRENCY)


def plan_message(plan: domain.PlanSpec) -> billing_pb2.Plan:
    return billing_pb2.Plan(code=plan.code, name=plan.name, max_assigned_products=plan.max_assigned_products or 0,
                            unlimited=plan.unlimited, price=_money(plan.price_cents), interval="month")


def _snapshot_message(handlers: BillingHandlers, snapshot: domain.PlanSnapshot) -> billing_pb2.Plan:
    configured = handlers.catalogue.find(snapshot.code)
    return billing_pb2.Plan(
        code=snapshot.code, name=configured.name if configured else snapshot.code.title(),
        max_assigned_products=snapshot.max_assigned_products or 0, unlimited=snapshot.unlimited,
        price=_money(snapshot.price_cents), interval="month",
    )


def charge_message(charge: StoredCharge) -> billing_pb2.Charge:
    return billing_pb2.Charge(
        id=charge.id, store_hash=charge.store_hash, kind=charge.kind, plan=charge.plan, from_plan=charge.from_plan,
        amount=billing_pb2.Money(amount_cents=charge.amount_cents, currency=charge.currency),
        cycle_start=_stamp(charge.cycle_start), cycle_end=_stamp(charge.cycle_end),
        days_charged=charge.days_charged, days_in_cycle=charge.days_in_cycle, description=charge.description,
        created_at=_stamp(charge.created_at), provider=charge.provider,
        provider_reference=charge.provider_reference, checkout_url=charge.checkout_url,
    )


def subscription_message(handlers: BillingHandlers, view: SubscriptionView) -> billing_pb2.Subscription:
    message = billing_pb2.Subscription(
        store_hash=view.store_hash, plan=_snapshot_message(handlers, view.plan), status=view.status,
        history=[billing_pb2.HistoryEntry(at=_stamp(note.at), kind=note.kind, from_plan=note.from_plan,
                                          to_plan=note.to_plan, message=note.message) for note in view.history],
    )
    if view.stored is not None:
        state = view.stored.state
        message.started_at.CopyFrom(_stamp(view.stored.started_at))
        if state.status == domain.ACTIVE:
            message.cycle_start.CopyFrom(_stamp(state.cycle_start))
            message.cycle_end.CopyFrom(_stamp(state.cycle_end))
            if state.pending is not None:
                message.pending_change.CopyFrom(billing_pb2.PendingChange(
                    plan=state.pending.code, effective_at=_stamp(state.cycle_end),
                    requested_at=_stamp(state.pending_requested_at)))
    if view.last_charge is not None:
        message.last_charge.CopyFrom(charge_message(view.last_charge))
    return message


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, handlers: BillingHandlers) -> None:
        self.handlers = handlers

    async def GetEntitlement(self, request: billing_pb2.GetEntitlementRequest, context: Context
                             ) -> billing_pb2.GetEntitlementResponse:
        plan = await self.handlers.entitlement(request.store_hash)
        return billing_pb2.GetEntitlementResponse(
            store_hash=request.store_hash, plan=plan.code, max_assigned_products=plan.max_assigned_products or 0,
            unlimited=plan.unlimited,
        )

    async def ListPlans(self, request: billing_pb2.ListPlansRequest, context: Context
                        ) -> billing_pb2.ListPlansResponse:
        return billing_pb2.ListPlansResponse(plans=[plan_message(plan) for plan in self.handlers.plans()])

    async def GetSubscription(self, request: billing_pb2.GetSubscriptionRequest, context: Context
                              ) -> billing_pb2.GetSubscriptionResponse:
        view = await self.handlers.subscription(request.store_hash)
        return billing_pb2.GetSubscriptionResponse(subscription=subscription_message(self.handlers, view))

    async def QuotePlanChange(self, request: billing_pb2.QuotePlanChangeRequest,
                              context: Context) -> billing_pb2.QuotePlanChangeResponse:
        quote = await self.handlers.quote(request.store_hash, request.plan)
        return billing_pb2.QuotePlanChangeResponse(
            kind=quote.kind, from_plan=quote.from_plan, to_plan=quote.to_plan, amount=_money(quote.amount_cents),
            effective_at=_stamp(quote.effective_at), cycle_start=_stamp(quote.cycle_start),
            cycle_end=_stamp(quote.cycle_end), days_charged=quote.days_charged, days_in_cycle=quote.days_in_cycle,
            explanation=quote.explanation,
        )

    async def ChangePlan(self, request: billing_pb2.ChangePlanRequest, context: Context
                         ) -> billing_pb2.ChangePlanResponse:
        result = await self.handlers.change_plan(request.store_hash, request.plan)
        response = billing_pb2.ChangePlanResponse(
            kind=result.quote.kind, amount=_money(result.quote.amount_cents),
            effective_at=_stamp(result.quote.effective_at),
            subscription=subscription_message(self.handlers, result.subscription),
        )
        if result.charge is not None:
            response.charge.CopyFrom(charge_message(result.charge))
        return response

    async def CancelPendingChange(self, request: billing_pb2.CancelPendingChangeRequest,
                                  context: Context) -> billing_pb2.CancelPendingChangeResponse:
        view = await self.handlers.cancel_pending(request.store_hash)
        return billing_pb2.CancelPendingChangeResponse(subscription=subscription_message(self.handlers, view))

    async def ListCharges(self, request: billing_pb2.ListChargesRequest, context: Context
                          ) -> billing_pb2.ListChargesResponse:
        charges = await self.handlers.charges(request.store_hash, limit=request.limit, before_id=request.before_id)
        return billing_pb2.ListChargesResponse(charges=[charge_message(charge) for charge in charges])

    async def StartSubscription(self, request: billing_pb2.StartSubscriptionRequest,
                                context: Context) -> billing_pb2.StartSubscriptionResponse:
        view, created = await self.handlers.start(request.store_hash, request.merchant_account_uuid)
        return billing_pb2.StartSubscriptionResponse(subscription=subscription_message(self.handlers, view),
                                                     created=created)

    async def EndSubscription(self, request: billing_pb2.EndSubscriptionRequest, context: Context
                              ) -> billing_pb2.EndSubscriptionResponse:
        view = await self.handlers.end(request.store_hash)
        return billing_pb2.EndSubscriptionResponse(subscription=subscription_message(self.handlers, view))
