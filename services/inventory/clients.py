"""Clients of peer services: the billing entitlement."""

from __future__ import annotations

import grpc
from backorder.billing.v1 import billing_pb2, billing_pb2_grpc

from services.common.errors import DomainError, Unavailable, error_from_rpc
from services.common.grpc_server import DeadlineStub, insecure_channel
from services.inventory.assignment import Entitlement


class BillingEntitlements:
    """Asks BillingService.GetEntitlement with a deadline. A billing that does not answer is
    UNAVAILABLE: assigning never proceeds without a known limit."""

    def __init__(self, address: str, timeout_s: float = 3.0) -> None:
        self.address = address
        self._channel = insecure_channel(address)
        self._stub = DeadlineStub(billing_pb2_grpc.BillingServiceStub(self._channel), timeout_s)

    async def get(self, store_hash: str) -> Entitlement:
        try:
            reply = await self._stub.GetEntitlement(billing_pb2.GetEntitlementRequest(store_hash=store_hash))
        except grpc.RpcError as exc:
            error = error_from_rpc(exc)
            if error.code in {"unavailable", "internal"}:
                raise Unavailable("billing is unavailable; cannot check the plan limit",
                                  details={"peer": "billing"}) from exc
            raise DomainError(error.message, code=error.code, details=error.details) from exc
        return Entitlement(plan=reply.plan or "free", limit=None if reply.unlimited else reply.max_assigned_products)

    async def close(self) -> None:
        await self._channel.close()
