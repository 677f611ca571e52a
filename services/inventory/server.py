"""The inventory service process: InventoryService, ReportService and TokenService on the
internal port, ErpInventoryService (token-authenticated) on every port including the
partner listener BACKORDER_ERP_GRPC_PORT, the outbox relay, the receipt scheduler and the
consumer of billing's plan.changed (over-limit unassigns after a downgrade).

Settings read here (besides ServiceSettings): BACKORDER_ERP_GRPC_PORT (default 50055),
BACKORDER_ERP_GRPC_HOST (default BACKORDER_GRPC_HOST), BACKORDER_BILLING_GRPC_ADDR (via
peer_address), BACKORDER_RECEIPT_INTERVAL_S (default 60), BACKORDER_ERP_TOKEN_CACHE_S
(default 10), BACKORDER_ORDER_BATCH_WORKERS (default 2). Tests override them through
ServiceSettings.extra (erp_grpc_port, billing_addr, entitlements, today, ...).
"""

from __future__ import annotations

from backorder.inventory.v1 import inventory_pb2_grpc, report_pb2_grpc, token_pb2_grpc

from services.common.runtime import ServiceContext, run_service
from services.common.settings import DEFAULT_GRPC_PORTS, env, peer_address
from services.inventory.clients import BillingEntitlements
from services.inventory.consumers import billing_consumer
from services.inventory.handlers import InventoryHandlers
from services.inventory.servicer import (
    ERP_SERVICE,
    ErpAuthInterceptor,
    ErpServicer,
    InventoryServicer,
    ReportServicer,
    TokenServicer,
    add_erp_servicer_to_server,
)
from services.inventory.tables import inbox, outbox

SERVICE = "inventory"


async def setup(ctx: ServiceContext) -> None:
    extra = ctx.settings.extra
    entitlements = extra.get("entitlements")
    if entitlements is None:
        entitlements = BillingEntitlements(extra.get("billing_addr") or peer_address("billing"))
        ctx.on_shutdown(entitlements.close)
    handlers = InventoryHandlers(
        ctx.db, entitlements, today=extra.get("today"),
        batch_workers=extra.get("order_batch_workers", env("BACKORDER_ORDER_BATCH_WORKERS", 2, int)),
    )
    ctx.add_grpc(inventory_pb2_grpc.add_InventoryServiceServicer_to_server, InventoryServicer(handlers),
                 "backorder.inventory.v1.InventoryService")
    ctx.add_grpc(report_pb2_grpc.add_ReportServiceServicer_to_server, ReportServicer(handlers),
                 "backorder.inventory.v1.ReportService")
    ctx.add_grpc(token_pb2_grpc.add_TokenServiceServicer_to_server, TokenServicer(handlers),
                 "backorder.inventory.v1.TokenService")
    interceptor = ErpAuthInterceptor(handlers.verify_token,
                                     cache_s=extra.get("erp_token_cache_s", env("BACKORDER_ERP_TOKEN_CACHE_S", 10.0, float)))
    ctx.add_grpc(add_erp_servicer_to_server(interceptor),
                 ErpServicer(handlers, poll_interval_s=extra.get("erp_stream_poll_s", 1.0)), ERP_SERVICE)
    erp_port = extra.get("erp_grpc_port", env("BACKORDER_ERP_GRPC_PORT", DEFAULT_GRPC_PORTS["inventory_erp"], int))
    if erp_port is not None:
        ctx.extra_listeners.append((env("BACKORDER_ERP_GRPC_HOST", ctx.settings.grpc_host), erp_port))
    ctx.add_relay(outbox)
    ctx.add_consumer(billing_consumer(handlers), inbox)
    interval = extra.get("receipt_interval_s", env("BACKORDER_RECEIPT_INTERVAL_S", 60.0, float))
    ctx.add_task(lambda: handlers.run_receipts(interval))
    ctx.on_shutdown(handlers.batcher.stop)
    ctx.state["handlers"] = handlers
    ctx.state["erp_interceptor"] = interceptor


def main() -> None:
    run_service(SERVICE, setup)
