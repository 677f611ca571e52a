"""The payment provider port and its adapters.

- `NoChargeProvider` (embedded default): records nothing outside our own ledger.
- `UnifiedBillingProvider`: BigCommerce Unified Billing's GraphQL Account API
  (`POST {api_base}/accounts/{partner_account_uuid}/graphql`, `X-Auth-Token`), with the
  createCheckout mutation, the subscriptions query and the cancelSubscription mutation
  (shared/bigcommerce/REFERENCE.md §9). BigCommerce invoices the merchant; our charges ledger
  records what we computed and the checkout the merchant has to confirm.

Selected by BACKORDER_BILLING_PROVIDER=none|unified (see services.billing.settings.ProviderSettings).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import httpx

from services.billing.settings import ProviderSettings
from services.common.errors import DomainError, Unavailable
from services.common.settings import Secret

log = logging.getLogger(__name__)

CREATE_CHECKOUT = """
mutation ($checkout: CreateCheckoutInput!) { checkout { createCheckout(input: $checkout) { checkout {
  id accountId status checkoutUrl
  items(first: 1) { edges { node { subscriptionId status product { id type productLevel } scope { id type }
    pricingPlan { interval price { value currencyCode } trialDays } redirectUrl description } } } } } } }
"""

SUBSCRIPTIONS = """
query ($first: Int, $after: String) { account { subscriptions(first: $first, after: $after) {
  pageInfo { hasNextPage endCursor }
  edges { node { id accountId activationDate billingInterval status pricePerInterval { value currencyCode }
    scope { type id } product { id type productLevel } createdAt currentPeriodEnd updatedAt } } } } }
"""

CANCEL_SUBSCRIPTION = """
mutation ($subscription: CancelSubscriptionInput!) { subscription {
  cancelSubscription(input: $subscription) { subscriptionId cancelledAt } } }
"""


@dataclass(frozen=True)
class CheckoutRequest:
    store_hash: str
    merchant_account_uuid: str
    plan_code: str
    plan_name: str
    # The plan's recurring monthly price (what the provider bills from now on).
    monthly_price_cents: int
    description: str
    # The provider's current subscription, for a plan change; "" for a first checkout.
    subscription_id: str = ""


@dataclass(frozen=True)
class ProviderCharge:
    """What the provider made of a charge: its reference and the checkout the merchant confirms."""

    provider: str
    reference: str = ""
    checkout_url: str = ""


@dataclass(frozen=True)
class ProviderSubscription:
    id: str
    status: str
    price_cents: int
    scope_id: str
    current_period_end: str


class PaymentProvider(Protocol):
    name: str

    async def create_checkout(self, request: CheckoutRequest) -> ProviderCharge:
        """Ask the provider to bill the plan; raises Unavailable when it cannot be reached."""

    async def find_subscription(self, store_hash: str) -> ProviderSubscription | None:
        """The store's ACTIVE provider subscription, if any."""

    async def cancel_subscription(self, subscription_id: str) -> str:
        """Cancel at the end of the provider's cycle; returns when it is cancelled (ISO)."""

    async def aclose(self) -> None: ...


class NoChargeProvider:
    """The embedded default: charges live only in our ledger."""

    name = "none"

    async def create_checkout(self, request: CheckoutRequest) -> ProviderCharge:
        return ProviderCharge(self.name)

    async def find_subscription(self, store_hash: str) -> ProviderSubscription | None:
        return None

    async def cancel_subscription(self, subscription_id: str) -> str:
        return ""

    async def aclose(self) -> None:
        return None


def _cents_to_value(cents: int) -> float:
    # The API takes a JSON number of dollars; Decimal keeps 9.99 from becoming 9.990000000001.
    return float(Decimal(cents) / 100)


def _value_to_cents(value: Any) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


class UnifiedBillingProvider:
    """BigCommerce Unified Billing over its GraphQL Account API."""

    name = "unified"

    def __init__(self, *, api_base: str, partner_account_uuid: str, account_token: Secret, app_id: str,
                 client: httpx.AsyncClient | None = None, timeout_s: float = 10.0, page_size: int = 50) -> None:
        self.url = f"{api_base.rstrip('/')}/accounts/{partner_account_uuid}/graphql"
        self.account_token = account_token
        self.app_id = app_id
        self.page_size = page_size
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None

    async def _call(self, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        try:
            response = await self._client.post(
                self.url,
                json={"query": query, "variables": dict(variables)},
                headers={"X-Auth-Token": self.account_token.reveal(), "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise Unavailable("the billing provider is unreachable",
                              details={"provider": self.name, "reason": type(exc).__name__}) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise Unavailable("the billing provider is unavailable",
                              details={"provider": self.name, "status": response.status_code})
        if response.status_code >= 400:
            raise DomainError("the billing provider refused the request", code="failed_precondition",
                              details={"provider": self.name, "status": response.status_code,
                                       "body": response.text[:500]})
        body = response.json()
        if body.get("errors"):
            raise DomainError("the billing provider refused the request", code="failed_precondition",
                              details={"provider": self.name,
                                       "errors": [e.get("message", "") for e in body["errors"]][:5]})
        return body.get("data") or {}

    async def create_checkout(self, request: CheckoutRequest) -> ProviderCharge:
        if not request.merchant_account_uuid:
            raise DomainError("the merchant's BigCommerce account is unknown; reinstall the app",
                              code="failed_precondition",
                              details={"store_hash": request.store_hash, "field": "merchant_account_uuid"})
        item: dict[str, Any] = {
            "product": {"id": f"bc/account/product/{self.app_id}", "type": "APPLICATION",
                        "productLevel": request.plan_name},
            "scope": {"id": f"bc/account/scope/{request.store_hash}", "type": "STORE"},
            "pricingPlan": {"interval": "MONTH",
                            "price": {"value": _cents_to_value(request.monthly_price_cents), "currencyCode": "USD"},
                            "trialDays": 0},
            "description": request.description[:250],
            "redirectUrl": f"https://store-{request.store_hash}.mybigcommerce.com/manage/app/{self.app_id}",
        }
        if request.subscription_id:
            item["subscriptionId"] = request.subscription_id
        data = await self._call(CREATE_CHECKOUT, {"checkout": {
            "accountId": f"bc/account/account/{request.merchant_account_uuid}", "items": [item]}})
        checkout = data["checkout"]["createCheckout"]["checkout"]
        return ProviderCharge(self.name, checkout["id"], checkout.get("checkoutUrl") or "")

    async def find_subscription(self, store_hash: str) -> ProviderSubscription | None:
        scope_id = f"bc/account/scope/{store_hash}"
        after: str | None = None
        while True:
            data = await self._call(SUBSCRIPTIONS, {"first": self.page_size, "after": after})
            page = data["account"]["subscriptions"]
            for edge in page["edges"]:
                node = edge["node"]
                if node["scope"]["id"] == scope_id and node["status"] == "ACTIVE":
                    return ProviderSubscription(node["id"], node["status"],
                                                _value_to_cents(node["pricePerInterval"]["value"]),
                                                scope_id, node.get("currentPeriodEnd") or "")
            if not page["pageInfo"]["hasNextPage"]:
                return None
            after = page["pageInfo"]["endCursor"]

    async def cancel_subscription(self, subscription_id: str) -> str:
        data = await self._call(CANCEL_SUBSCRIPTION, {"subscription": {"id": subscription_id}})
        return data["subscription"]["cancelSubscription"].get("cancelledAt") or ""

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def build_provider(settings: ProviderSettings) -> PaymentProvider:
    """The provider `settings` name (its HTTP client is created here, at start-up)."""
    if settings.kind == "none":
        return NoChargeProvider()
    return UnifiedBillingProvider(api_base=settings.api_base, partner_account_uuid=settings.partner_account_uuid,
                                  account_token=settings.account_token, app_id=settings.app_id)


def provider_from_env(environ: Mapping[str, str] | None = None) -> PaymentProvider:
    """The provider BACKORDER_BILLING_PROVIDER and its settings choose (see ProviderSettings)."""
    return build_provider(ProviderSettings.from_env(environ))
