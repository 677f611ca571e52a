"""/api/v1/billing/… and /api/v1/usage: plans, the store's subscription and its changes,
charges, and usage against the plan's limit (billing service)."""

from __future__ import annotations

from backorder.billing.v1 import billing_pb2
from starlette.requests import Request
from starlette.responses import Response

from services.gateway.admin.http import ApiRoutes, backend, int_param, json_body, ok
from services.gateway.admin.inputs import plan_code
from services.gateway.admin.mapping import charge_json, plan_change_json, quote_json, subscription_json
from services.gateway.admin.queries import query_plans, query_subscription, query_usage
from services.gateway.auth import Principal

DEFAULT_CHARGES = 50
MAX_CHARGES = 200

route = ApiRoutes()


@route("GET", "/billing/plans")
async def list_plans(request: Request, principal: Principal) -> Response:
    return ok(await query_plans(request))


@route("GET", "/billing/subscription")
async def get_subscription(request: Request, principal: Principal) -> Response:
    data = await query_subscription(request, principal.store_hash)
    data["usage"] = await query_usage(request, principal.store_hash)
    return ok(data)


@route("PUT", "/billing/subscription")
async def change_plan(request: Request, principal: Principal) -> Response:
    plan = plan_code(await json_body(request))
    reply = await backend(request, "billing").ChangePlan(billing_pb2.ChangePlanRequest(
        store_hash=principal.store_hash, plan=plan))
    return ok(plan_change_json(reply))


@route("GET", "/billing/quote")
async def quote_plan(request: Request, principal: Principal) -> Response:
    plan = plan_code({"plan": request.query_params.get("plan")})
    reply = await backend(request, "billing").QuotePlanChange(billing_pb2.QuotePlanChangeRequest(
        store_hash=principal.store_hash, plan=plan))
    return ok(quote_json(reply))


@route("DELETE", "/billing/subscription/pending-change")
async def cancel_pending_change(request: Request, principal: Principal) -> Response:
    reply = await backend(request, "billing").CancelPendingChange(billing_pb2.CancelPendingChangeRequest(
        store_hash=principal.store_hash))
    return ok(subscription_json(reply.subscription))


@route("GET", "/billing/charges")
async def list_charges(request: Request, principal: Principal) -> Response:
    limit = min(int_param(request.query_params, "limit", DEFAULT_CHARGES, minimum=1), MAX_CHARGES)
    before_id = int_param(request.query_params, "before_id", 0, minimum=0)
    reply = await backend(request, "billing").ListCharges(billing_pb2.ListChargesRequest(
        store_hash=principal.store_hash, limit=limit, before_id=before_id))
    return ok([charge_json(charge) for charge in reply.charges])


@route("GET", "/usage")
async def usage(request: Request, principal: Principal) -> Response:
    return ok(await query_usage(request, principal.store_hash))


routes = route.routes
