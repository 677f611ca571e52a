"""BigCommerce Unified Billing stand-in: `POST /accounts/{partner_account_uuid}/graphql`.

A self-contained list of Starlette routes (`routes`) for the sandbox app to mount. It answers
the three operations Backorder uses (shared/bigcommerce/REFERENCE.md §9) with in-memory state:
- `mutation { checkout { createCheckout(input: $checkout) … } }` → a PENDING checkout with a
  `checkoutUrl` (valid 24 h); with `subscriptionId` in the item it is a plan change;
- `query { account { subscriptions(first, after) … } }` (cursor pagination, 10 by default)
  and `query { account { checkout(id: $id) … } }`;
- `mutation { subscription { cancelSubscription(input: $subscription) … } }`: sandbox
  subscriptions are never invoiced, so (as on BigCommerce for not-yet-invoiced ones) the
  cancellation is immediate and the status becomes CANCELLED.

Sandbox controls (not BigCommerce API): `GET /_sandbox/unified-billing/checkouts/{uuid}` shows a
checkout (it is also the checkoutUrl), `POST /_sandbox/unified-billing/checkouts/{uuid}/complete`
plays the merchant confirming it (COMPLETE; creates or re-prices the ACTIVE subscription), and
`POST /_sandbox/unified-billing/reset` forgets everything. Requests without an X-Auth-Token get
401; when `STATE.expected_token` is set, any other token gets 401 too.
"""

from __future__ import annotations

import base64
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

INTERVALS = {"ANNUAL", "MONTH", "ONCE", "QUARTER", "SEMIANNUAL"}
INTERVAL_DAYS = {"ANNUAL": 365, "MONTH": 30, "ONCE": 0, "QUARTER": 91, "SEMIANNUAL": 182}
CHECKOUT_PREFIX = "bc/account/checkout/"
SUBSCRIPTION_PREFIX = "bc/account/subscription/"


class GraphQLError(Exception):
    pass


@dataclass
class UnifiedBillingState:
    """Every checkout and subscription, per partner account."""

    expected_token: str | None = None
    checkouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Which partner account each checkout/subscription belongs to.
    owners: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.checkouts.clear()
            self.subscriptions.clear()
            self.owners.clear()


STATE = UnifiedBillingState()


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(message: str) -> JSONResponse:
    return JSONResponse({"data": None, "errors": [{"message": message}]})


def _validated_item(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise GraphQLError("items[0] must be an object")
    product, scope, pricing = item.get("product") or {}, item.get("scope") or {}, item.get("pricingPlan") or {}
    product_id = product.get("id") or product.get("entityId")
    scope_id = scope.get("id") or scope.get("entityId")
    if not product_id or product.get("type") != "APPLICATION":
        raise GraphQLError("items[0].product must have an id and type APPLICATION")
    if not scope_id or scope.get("type") != "STORE":
        raise GraphQLError("items[0].scope must have an id and type STORE")
    if pricing.get("interval") not in INTERVALS:
        raise GraphQLError(f"items[0].pricingPlan.interval must be one of {sorted(INTERVALS)}")
    price = pricing.get("price") or {}
    if price.get("currencyCode") != "USD":
        raise GraphQLError("items[0].pricingPlan.price.currencyCode must be USD")
    try:
        value = Decimal(str(price.get("value")))
    except InvalidOperation as exc:
        raise GraphQLError("items[0].pricingPlan.price.value must be a number") from exc
    if value < 0:
        raise GraphQLError("items[0].pricingPlan.price.value must not be negative")
    return {
        "subscriptionId": item.get("subscriptionId"),
        "status": "PENDING",
        "product": {"id": product_id, "type": "APPLICATION", "productLevel": product.get("productLevel", "")},
        "scope": {"id": scope_id, "type": "STORE"},
        "pricingPlan": {"interval": pricing["interval"],
                        "price": {"value": float(value), "currencyCode": "USD"},
                        "trialDays": int(pricing.get("trialDays") or 0)},
        "redirectUrl": item.get("redirectUrl", ""),
        "description": item.get("description", ""),
    }


def _public_checkout(checkout: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": checkout["id"], "accountId": checkout["accountId"], "status": checkout["status"],
        "checkoutUrl": checkout["checkoutUrl"],
        "items": {"edges": [{"node": dict(item)} for item in checkout["items"]]},
    }


def _create_checkout(account: str, variables: dict[str, Any], base_url: str) -> dict[str, Any]:
    data = variables.get("checkout")
    if not isinstance(data, dict):
        raise GraphQLError("variable $checkout (CreateCheckoutInput!) is required")
    account_id = data.get("accountId") or ""
    if not isinstance(account_id, str) or not account_id.startswith("bc/account/account/"):
        raise GraphQLError("checkout.accountId must look like bc/account/account/{uuid}")
    items = data.get("items")
    if not isinstance(items, list) or len(items) != 1:
        raise GraphQLError("checkout.items must hold exactly one item")
    item = _validated_item(items[0])
    with STATE.lock:
        if item["subscriptionId"]:
            existing = STATE.subscriptions.get(item["subscriptionId"])
            if existing is None or STATE.owners.get(item["subscriptionId"]) != account:
                raise GraphQLError(f"subscription {item['subscriptionId']} not found")
            if existing["scope"]["id"] != item["scope"]["id"] or existing["product"]["id"] != item["product"]["id"]:
                raise GraphQLError("scope and product can't be changed on a subscription: cancel and create a new one")
        checkout_uuid = str(uuid.uuid4())
        checkout: dict[str, Any] = {
            "id": CHECKOUT_PREFIX + checkout_uuid, "uuid": checkout_uuid, "accountId": account_id,
            "status": "PENDING", "items": [item], "createdAt": _now(),
            "expiresAt": datetime.now(UTC) + timedelta(hours=24),
            "checkoutUrl": f"{base_url.rstrip('/')}/_sandbox/unified-billing/checkouts/{checkout_uuid}",
        }
        STATE.checkouts[checkout["id"]] = checkout
        STATE.owners[checkout["id"]] = account
        return {"checkout": {"createCheckout": {"checkout": _public_checkout(checkout)}}}


def _decode_cursor(cursor: Any) -> int:
    if cursor in (None, ""):
        return 0
    try:
        return int(base64.b64decode(str(cursor)).decode().removeprefix("offset:")) + 1
    except ValueError as exc:
        raise GraphQLError("after: invalid cursor") from exc


def _subscriptions(account: str, variables: dict[str, Any]) -> dict[str, Any]:
    first = variables.get("first") or 10
    if not isinstance(first, int) or not 1 <= first <= 50:
        raise GraphQLError("first must be between 1 and 50")
    start = _decode_cursor(variables.get("after"))
    with STATE.lock:
        owned = [sub for sub_id, sub in STATE.subscriptions.items() if STATE.owners.get(sub_id) == account]
    page = owned[start:start + first]
    edges = [{"cursor": base64.b64encode(f"offset:{start + n}".encode()).decode(), "node": dict(node)}
             for n, node in enumerate(page)]
    return {"account": {"subscriptions": {
        "pageInfo": {"hasNextPage": start + first < len(owned), "hasPreviousPage": start > 0,
                     "startCursor": edges[0]["cursor"] if edges else None,
                     "endCursor": edges[-1]["cursor"] if edges else None},
        "edges": edges,
    }}}


def _checkout_query(account: str, variables: dict[str, Any]) -> dict[str, Any]:
    checkout_id = variables.get("checkoutId") or variables.get("id")
    with STATE.lock:
        checkout = STATE.checkouts.get(str(checkout_id))
        if checkout is None or STATE.owners.get(checkout["id"]) != account:
            return {"account": {"checkout": None}}
        return {"account": {"checkout": _public_checkout(checkout)}}


def _cancel(account: str, variables: dict[str, Any]) -> dict[str, Any]:
    subscription_id = (variables.get("subscription") or {}).get("id")
    with STATE.lock:
        subscription = STATE.subscriptions.get(str(subscription_id))
        if subscription is None or STATE.owners.get(str(subscription_id)) != account:
            raise GraphQLError(f"subscription {subscription_id} not found")
        if subscription["status"] != "CANCELLED":
            subscription["status"] = "CANCELLED"
            subscription["cancelledAt"] = _now()
            subscription["updatedAt"] = subscription["cancelledAt"]
        return {"subscription": {"cancelSubscription": {"subscriptionId": subscription["id"],
                                                        "cancelledAt": subscription["cancelledAt"]}}}


async def graphql(request: Request) -> JSONResponse:
    token = request.headers.get("x-auth-token", "")
    if not token or (STATE.expected_token is not None and token != STATE.expected_token):
        return JSONResponse({"errors": [{"message": "unauthorized"}]}, status_code=401)
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"errors": [{"message": "body must be JSON"}]}, status_code=400)
    query = body.get("query") if isinstance(body, dict) else None
    variables = body.get("variables") or {} if isinstance(body, dict) else {}
    if not isinstance(query, str) or not isinstance(variables, dict):
        return JSONResponse({"errors": [{"message": "expected {query, variables}"}]}, status_code=400)
    account = request.path_params["account_uuid"]
    try:
        if "createCheckout" in query:
            data = _create_checkout(account, variables, str(request.base_url))
        elif "cancelSubscription" in query:
            data = _cancel(account, variables)
        elif "subscriptions" in query:
            data = _subscriptions(account, variables)
        elif "checkout" in query:
            data = _checkout_query(account, variables)
        else:
            raise GraphQLError("this sandbox answers createCheckout, subscriptions, checkout and cancelSubscription")
    except GraphQLError as exc:
        return _error(str(exc))
    return JSONResponse({"data": data})


def _find_checkout(checkout_uuid: str) -> dict[str, Any] | None:
    return STATE.checkouts.get(CHECKOUT_PREFIX + checkout_uuid)


async def show_checkout(request: Request) -> JSONResponse:
    with STATE.lock:
        checkout = _find_checkout(request.path_params["checkout_uuid"])
        if checkout is None:
            return JSONResponse({"error": "checkout not found"}, status_code=404)
        return JSONResponse(_public_checkout(checkout))


async def complete_checkout(request: Request) -> JSONResponse:
    """The merchant confirms: COMPLETE, and the subscription is created or re-priced."""
    with STATE.lock:
        checkout = _find_checkout(request.path_params["checkout_uuid"])
        if checkout is None:
            return JSONResponse({"error": "checkout not found"}, status_code=404)
        if checkout["status"] == "PENDING" and datetime.now(UTC) > checkout["expiresAt"]:
            return JSONResponse({"error": "checkout expired"}, status_code=409)
        item = checkout["items"][0]
        if checkout["status"] == "PENDING":
            now = _now()
            subscription_id = item["subscriptionId"] or SUBSCRIPTION_PREFIX + str(uuid.uuid4())
            interval = item["pricingPlan"]["interval"]
            subscription = STATE.subscriptions.get(subscription_id) or {
                "id": subscription_id, "accountId": checkout["accountId"], "activationDate": now, "createdAt": now,
                "scope": item["scope"], "product": item["product"],
            }
            subscription.update({
                "status": "ACTIVE", "billingInterval": interval,
                "pricePerInterval": item["pricingPlan"]["price"], "updatedAt": now,
                "currentPeriodEnd": (datetime.now(UTC) + timedelta(days=INTERVAL_DAYS[interval])).isoformat(),
            })
            subscription["product"] = item["product"]
            STATE.subscriptions[subscription_id] = subscription
            STATE.owners[subscription_id] = STATE.owners[checkout["id"]]
            item["subscriptionId"] = subscription_id
            item["status"] = "COMPLETE"
            checkout["status"] = "COMPLETE"
        return JSONResponse(_public_checkout(checkout))


async def reset(request: Request) -> JSONResponse:
    STATE.reset()
    return JSONResponse({"ok": True})


routes: list[Route] = [
    Route("/accounts/{account_uuid}/graphql", graphql, methods=["POST"]),
    Route("/_sandbox/unified-billing/checkouts/{checkout_uuid}", show_checkout, methods=["GET"]),
    Route("/_sandbox/unified-billing/checkouts/{checkout_uuid}/complete", complete_checkout, methods=["POST"]),
    Route("/_sandbox/unified-billing/reset", reset, methods=["POST"]),
]
