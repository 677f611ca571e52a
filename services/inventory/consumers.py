"""What inventory consumes: billing's plan.changed, to carry out the over-limit policy of a
downgrade (reasons "downgrade" and "end"). Everything else drives inventory over gRPC
(catalog_sync, the gateway: ApplyOrder, SetStock, UnassignProducts, ...).

The handler runs in the consumer's transaction together with its inbox row, so a message
is applied once; the policy itself is deterministic (see domain.keep_earliest_assigned),
so even a replay under another event id unassigns nothing more.
"""

from __future__ import annotations

import logging

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
        if change.unlimited or not change.HasField("over_limit_policy"):
            return
        policy = change.over_limit_policy
        store_hash = change.store_hash or message.subject.split(".")[1]
        if policy.rule != domain.KEEP_EARLIEST_ASSIGNED or policy.keep < 0:
            raise PermanentError(f"plan.changed {message.message_id} for {store_hash}: unknown over-limit policy "
                                 f"rule={policy.rule!r} keep={policy.keep}")
        selection = await handlers.apply_over_limit_policy(
            uow, store_hash, keep=policy.keep, restore_tracking=policy.restore_tracking,
            reason=domain.downgrade_note(change.reason, change.new_plan, policy.keep),
            key_prefix=f"plan:{message.message_id}")
        if selection.unassigned:
            log.info("store %s: plan %s -> %s (%s), kept %d, unassigned %d", store_hash, change.old_plan,
                     change.new_plan, change.reason, len(selection.kept), len(selection.unassigned))

    return ConsumerSpec(durable=BILLING_DURABLE, stream=STREAM_EVENTS, subjects=PLAN_CHANGED_SUBJECTS, handler=handle)
