"""The billing service: BillingService over gRPC, the outbox relay and the renewal scheduler.

Its settings beyond the common ones: services.billing.settings.BillingSettings.
"""

from __future__ import annotations

from backorder.billing.v1 import billing_pb2_grpc

from services.billing import domain, tables
from services.billing.handlers import BillingHandlers, Clock, system_clock
from services.billing.providers import PaymentProvider, build_provider
from services.billing.servicer import BillingServicer
from services.billing.settings import BillingSettings
from services.common.runtime import ServiceContext, run_service

SERVICE = "billing"


async def setup(ctx: ServiceContext, *, clock: Clock = system_clock, provider: PaymentProvider | None = None,
                catalogue: domain.Catalogue | None = None, scheduler_interval_s: float | None = None) -> None:
    """Registers BillingService, the outbox relay and the scheduler. Tests pass a fake clock,
    provider or catalogue through functools.partial."""
    settings = BillingSettings.for_service(ctx.settings)
    plans = catalogue or settings.catalogue
    payments = provider or build_provider(settings.provider)
    interval = scheduler_interval_s if scheduler_interval_s is not None else settings.scheduler_interval_s
    handlers = BillingHandlers(ctx.db, plans, payments, clock=clock)
    ctx.add_grpc(billing_pb2_grpc.add_BillingServiceServicer_to_server, BillingServicer(handlers),
                 "backorder.billing.v1.BillingService")
    ctx.add_relay(tables.outbox)
    ctx.add_task(lambda: handlers.run_scheduler(interval))
    ctx.on_shutdown(payments.aclose)
    ctx.state["handlers"] = handlers


def main() -> None:
    run_service(SERVICE, setup)
