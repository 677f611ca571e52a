"""The billing service: BillingService over gRPC, the outbox relay and the renewal scheduler.

Env (besides the common ones): BACKORDER_BILLING_PLANS_JSON (the plan catalogue, validated at
start), BACKORDER_BILLING_SCHEDULER_INTERVAL_S (default 60), BACKORDER_BILLING_PROVIDER and
the provider's settings (services.billing.providers.provider_from_env).
"""

from __future__ import annotations

from backorder.billing.v1 import billing_pb2_grpc

from services.billing import domain, tables
from services.billing.handlers import BillingHandlers, Clock, system_clock
from services.billing.providers import PaymentProvider, provider_from_env
from services.billing.servicer import BillingServicer
from services.common.runtime import ServiceContext, run_service
from services.common.settings import env

SERVICE = "billing"


def catalogue_from_env() -> domain.Catalogue:
    """The default catalogue, or BACKORDER_BILLING_PLANS_JSON (InvalidPlanConfig names plan and field)."""
    raw = env("BACKORDER_BILLING_PLANS_JSON", "")
    if not raw.strip():
        return domain.Catalogue(domain.DEFAULT_PLANS)
    return domain.parse_plans_json(raw)


async def setup(ctx: ServiceContext, *, clock: Clock = system_clock, provider: PaymentProvider | None = None,
                catalogue: domain.Catalogue | None = None, scheduler_interval_s: float | None = None) -> None:
    """Registers BillingService, the outbox relay and the scheduler. Tests pass a fake clock,
    provider or catalogue through functools.partial."""
    plans = catalogue or catalogue_from_env()
    payments = provider or provider_from_env()
    interval = scheduler_interval_s if scheduler_interval_s is not None else env(
        "BACKORDER_BILLING_SCHEDULER_INTERVAL_S", 60.0, float)
    handlers = BillingHandlers(ctx.db, plans, payments, clock=clock)
    ctx.add_grpc(billing_pb2_grpc.add_BillingServiceServicer_to_server, BillingServicer(handlers),
                 "backorder.billing.v1.BillingService")
    ctx.add_relay(tables.outbox)
    ctx.add_task(lambda: handlers.run_scheduler(interval))
    ctx.on_shutdown(payments.aclose)
    ctx.state["handlers"] = handlers


def main() -> None:
    run_service(SERVICE, setup)
