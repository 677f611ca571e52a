"""The inventory service process: InventoryService, ReportService and TokenService on the
internal port, ErpInventoryService (token-authenticated) on every port including the
partner listener BACKORDER_ERP_GRPC_PORT, the outbox relay, the receipt scheduler and the
consumer of billing's plan.changed (over-limit unassigns after a downgrade).

Settings: ServiceSettings and InventorySettings (settings.py: the ERP listener, the billing
address, the receipt interval, the token cache, the order batch workers), read once here.
Tests override them through ServiceSettings.extra (erp_grpc_port, billing_addr, ...) and
inject `entitlements` and `today` the same way.
"""

from __future__ import annotations

from backorder.inventory.v1 import inventory_pb2_grpc, report_pb2_grpc, token_pb2_grpc

from services.common.runtime import ServiceContext, run_service
from services.inventory.clients import BillingEntitlements
from services.inventory.consumers import billing_consumer
from services.inventory.erp import ERP_SERVICE, ErpAuth, ErpServicer, add_erp_servicer_to_server
from services.inventory.handlers import InventoryHandlers
from services.inventory.servicer import InventoryServicer, ReportServicer, TokenServicer
from services.inventory.settings import InventorySettings
from services.inventory.tables import inbox, outbox

SERVICE = "inventory"


async def setup(ctx: ServiceContext) -> None:
    settings = InventorySettings.for_service(ctx.settings)
    entitlements = ctx.settings.extra.get("entitlements")
    if entitlements is None:
        entitlements = BillingEntitlements(settings.billing_addr)
        ctx.on_shutdown(entitlements.close)
    handlers = InventoryHandlers(ctx.db, entitlements, today=ctx.settings.extra.get("today"),
                                 batch_workers=settings.order_batch_workers)
    ctx.add_grpc(inventory_pb2_grpc.add_InventoryServiceServicer_to_server, InventoryServicer(handlers),
                 "backorder.inventory.v1.InventoryService")
    ctx.add_grpc(report_pb2_grpc.add_ReportServiceServicer_to_server, ReportServicer(handlers),
                 "backorder.inventory.v1.ReportService")
    ctx.add_grpc(token_pb2_grpc.add_TokenServiceServicer_to_server, TokenServicer(handlers),
                 "backorder.inventory.v1.TokenService")
    auth = ErpAuth(handlers.tokens.verify, cache_s=settings.erp_token_cache_s)
    ctx.add_grpc(add_erp_servicer_to_server(auth), ErpServicer(handlers, poll_interval_s=settings.erp_stream_poll_s),
                 ERP_SERVICE)
    if settings.erp_grpc_port is not None:
        ctx.extra_listeners.append((settings.erp_grpc_host, settings.erp_grpc_port))
    ctx.add_relay(outbox)
    ctx.add_consumer(billing_consumer(handlers), inbox)
    ctx.add_task(lambda: handlers.receipts.run(settings.receipt_interval_s))
    ctx.on_shutdown(handlers.orders.batcher.stop)
    ctx.state["handlers"] = handlers


def main() -> None:
    run_service(SERVICE, setup)
