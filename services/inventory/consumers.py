"""What inventory consumes: billing's plan.changed, to carry out the over-limit policy of a
downgrade (reasons "downgrade" and "end"). Everything else drives inventory over gRPC
(catalog_sync, the gateway: ApplyOrder, SetStock, UnassignProducts, ...).

The handler runs in the consumer's transaction together with its inbox row, so a message
is applied once; the policy itself is deterministic (see domain.keep_earliest_assigned),
so even a replay under another event id unassigns nothing more. Every plan.changed is
recorded per store (store_plans) because events can be handled out of order: a downgrade
handled after a later upgrade applies the newer limit (see domain.over_limit_keep).
"""

from __future__ import annotations

import logging
from datetime import UTC

from backorder.events.v1 import billing_events_pb2

from services.common.bus import STREAM_EVENTS, ConsumerSpec, IncomingMessage, PermanentError
from services.common.db import UnitOfWork
from services.inventory import domain
from services.inventory.handlers import InventoryHandlers

log = logging.getLogger(__name__)

BILLING_DURABLE = "inventory-billing"
PLAN_CHANGED_SUBJECTS = ["backorder.*.billing.plan.changed"]


def billing_consumer(handlers: InventoryHandlers) -> ConsumerSpec:
    """The durable consumer of billing.plan.changed (the plan limit shrank: unassign the excess)."""

    async def handle(uow: UnitOfWork, message: IncomingMessage) -> None:
        change = message.unpack(billing_events_pb2.PlanChanged)
        assert isinstance(change, billing_events_pb2.PlanChanged)
        store_hash = change.store_hash or message.subject.split(".")[1]
        policy = change.over_limit_policy if change.HasField("over_limit_policy") else None
        if policy is not None and (policy.rule != domain.KEEP_EARLIEST_ASSIGNED or policy.keep < 0):
            raise PermanentError(f"plan.changed {message.message_id} for {store_hash}: unknown over-limit policy "
                                 f"rule={policy.rule!r} keep={policy.keep}")
        incoming = domain.PlanLimit(change.new_plan, None if change.unlimited else change.max_assigned_products,
                                    change.effective_at.ToDatetime(UTC))
        selection = await handlers.assignment.apply_plan_change(
            uow, store_hash, incoming, event_id=message.message_id,
            policy_keep=policy.keep if policy is not None and not change.unlimited else None,
            restore_tracking=policy.restore_tracking if policy is not None else False, reason=change.reason)
        if selection is not None and selection.unassigned:
            log.info("store %s: plan %s -> %s (%s), kept %d, unassigned %d", store_hash, change.old_plan,
                     change.new_plan, change.reason, len(selection.kept), len(selection.unassigned))

    return ConsumerSpec(durable=BILLING_DURABLE, stream=STREAM_EVENTS, subjects=PLAN_CHANGED_SUBJECTS, handler=handle)
