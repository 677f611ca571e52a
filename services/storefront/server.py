"""The storefront service process: `backorder serve storefront` / `python -m services.storefront`."""

from __future__ import annotations

from backorder.storefront.v1 import storefront_pb2_grpc

from services.common.runtime import ServiceContext, run_service
from services.storefront.consumers import inventory_consumer
from services.storefront.handlers import StorefrontHandlers
from services.storefront.servicer import StorefrontServicer
from services.storefront.tables import inbox, outbox

SERVICE = "storefront"
FULL_NAME = "backorder.storefront.v1.StorefrontService"


async def setup(ctx: ServiceContext) -> None:
    handlers = StorefrontHandlers(ctx.db)
    ctx.add_grpc(storefront_pb2_grpc.add_StorefrontServiceServicer_to_server, StorefrontServicer(handlers), FULL_NAME)
    ctx.add_relay(outbox)
    ctx.add_consumer(inventory_consumer(handlers), inbox)
    ctx.state["handlers"] = handlers


def main() -> None:
    run_service(SERVICE, setup)
