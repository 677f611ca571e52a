"""UnifiedBillingProvider against the sandbox's Unified Billing routes over real HTTP (uvicorn),
alone and inside the billing service."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn
from backorder.billing.v1 import billing_pb2
from starlette.applications import Starlette

from sandbox.bigcommerce import unified_billing
from services.billing.providers import CheckoutRequest, UnifiedBillingProvider, provider_from_env
from services.common.errors import DomainError, Unavailable
from services.common.settings import MissingSetting, Secret
from tests.integration.billing.conftest import FakeClock, wait_for
from tests.plugins.services import free_port

PARTNER = "0b6f4a39-5c2e-4d1a-9f0e-partner00001"
TOKEN = "account-token-for-tests"


@pytest.fixture
async def sandbox_url() -> AsyncIterator[str]:
    unified_billing.STATE.expected_token = TOKEN
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=unified_billing.routes), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 10
    while not server.started:
        if task.done() or asyncio.get_running_loop().time() > deadline:
            raise AssertionError("uvicorn did not start")
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    unified_billing.STATE.expected_token = None


def provider(base: str, token: str = TOKEN, page_size: int = 50) -> UnifiedBillingProvider:
    return UnifiedBillingProvider(api_base=base, partner_account_uuid=PARTNER, account_token=Secret(token),
                                  app_id="12345", page_size=page_size)


def checkout_request(store_hash: str, cents: int, subscription_id: str = "") -> CheckoutRequest:
    return CheckoutRequest(store_hash=store_hash, merchant_account_uuid="merchant-uuid-1", plan_code="starter",
                           plan_name="Starter", monthly_price_cents=cents, description="Backorder Starter plan",
                           subscription_id=subscription_id)


async def complete(base: str, checkout_url: str) -> dict:
    async with httpx.AsyncClient() as client:
        assert checkout_url.startswith(base)
        response = await client.post(checkout_url + "/complete")
        response.raise_for_status()
        return response.json()


async def test_checkout_subscription_plan_change_and_cancel_round_trip(sandbox_url: str) -> None:
    store = f"s{uuid.uuid4().hex[:8]}"
    unified = provider(sandbox_url)
    try:
        assert await unified.find_subscription(store) is None
        charge = await unified.create_checkout(checkout_request(store, 999))
        assert charge.provider == "unified" and charge.reference.startswith("bc/account/checkout/")
        assert await unified.find_subscription(store) is None  # PENDING until the merchant confirms
        completed = await complete(sandbox_url, charge.checkout_url)
        assert completed["status"] == "COMPLETE"
        subscription = await unified.find_subscription(store)
        assert subscription is not None and subscription.price_cents == 999
        assert subscription.scope_id == f"bc/account/scope/{store}"

        change = await unified.create_checkout(checkout_request(store, 2999, subscription.id))
        await complete(sandbox_url, change.checkout_url)
        changed = await unified.find_subscription(store)
        assert changed is not None and (changed.id, changed.price_cents) == (subscription.id, 2999)

        assert await unified.cancel_subscription(subscription.id)
        assert await unified.find_subscription(store) is None
    finally:
        await unified.aclose()


async def test_find_subscription_follows_the_cursor_pages(sandbox_url: str) -> None:
    unified = provider(sandbox_url, page_size=2)
    unified_billing.STATE.reset()
    stores = [f"s{uuid.uuid4().hex[:8]}" for _ in range(5)]
    try:
        for store in stores:
            charge = await unified.create_checkout(checkout_request(store, 999))
            await complete(sandbox_url, charge.checkout_url)
        found = await unified.find_subscription(stores[-1])  # on the third page of 2
        assert found is not None and found.scope_id.endswith(stores[-1])
    finally:
        await unified.aclose()


async def test_provider_errors_are_domain_errors(sandbox_url: str) -> None:
    store = f"s{uuid.uuid4().hex[:8]}"
    wrong_token = provider(sandbox_url, token="not-the-token")
    graphql_error = provider(sandbox_url)
    unreachable = provider(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(DomainError) as refused:
            await wrong_token.find_subscription(store)
        assert refused.value.details["status"] == 401
        with pytest.raises(DomainError) as invalid:
            await graphql_error.cancel_subscription("bc/account/subscription/unknown")
        assert "not found" in invalid.value.details["errors"][0]
        with pytest.raises(DomainError) as no_merchant:
            await graphql_error.create_checkout(CheckoutRequest(store, "", "starter", "Starter", 999, "x"))
        assert no_merchant.value.details["field"] == "merchant_account_uuid"
        with pytest.raises(Unavailable):
            await unreachable.find_subscription(store)
    finally:
        for client in (wrong_token, graphql_error, unreachable):
            await client.aclose()


def test_provider_is_chosen_by_env_and_unified_needs_its_settings() -> None:
    assert provider_from_env({}).name == "none"
    with pytest.raises(MissingSetting) as missing:
        provider_from_env({"BACKORDER_BILLING_PROVIDER": "unified"})
    assert missing.value.name == "BACKORDER_BC_PARTNER_ACCOUNT_UUID"
    chosen = provider_from_env({"BACKORDER_BILLING_PROVIDER": "unified", "BACKORDER_BC_PARTNER_ACCOUNT_UUID": PARTNER,
                                "BACKORDER_BC_ACCOUNT_TOKEN": TOKEN, "BACKORDER_BC_APP_ID": "1"})
    assert isinstance(chosen, UnifiedBillingProvider)
    assert chosen.url == f"https://api.bigcommerce.com/accounts/{PARTNER}/graphql"
    assert TOKEN not in repr(vars(chosen))


async def test_the_billing_service_upgrades_through_a_unified_billing_checkout(
        sandbox_url: str, billing_factory, sqlite_database_url) -> None:
    store = f"s{uuid.uuid4().hex[:8]}"
    billing = await billing_factory(sqlite_database_url(), clock=FakeClock(datetime(2026, 4, 1, tzinfo=UTC)),
                                    provider=provider(sandbox_url))
    await billing.stub.StartSubscription(billing_pb2.StartSubscriptionRequest(
        store_hash=store, merchant_account_uuid="merchant-uuid-1"))
    reply = await billing.change(store, "starter")
    assert (reply.kind, reply.amount.amount_cents) == ("upgrade", 999)
    assert reply.charge.provider == "unified" and reply.charge.provider_reference.startswith("bc/account/checkout/")
    assert reply.charge.checkout_url.startswith(sandbox_url)
    await complete(sandbox_url, reply.charge.checkout_url)
    unified = provider(sandbox_url)
    try:
        assert (await unified.find_subscription(store)).price_cents == 999
        await billing.stub.EndSubscription(billing_pb2.EndSubscriptionRequest(store_hash=store))
        assert await unified.find_subscription(store) is None
    finally:
        await unified.aclose()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pricingPlan": {"interval": "WEEK", "price": {"value": 1, "currencyCode": "USD"}}}, "interval"),
        ({"pricingPlan": {"interval": "MONTH", "price": {"value": 1, "currencyCode": "EUR"}}}, "currencyCode"),
        ({"pricingPlan": {"interval": "MONTH", "price": {"value": -1, "currencyCode": "USD"}}}, "negative"),
        ({"scope": {"id": "bc/account/scope/x", "type": "CHANNEL"}}, "scope"),
        ({"subscriptionId": "bc/account/subscription/nope"}, "not found"),
    ],
)
async def test_the_sandbox_refuses_bad_checkouts_like_graphql_does(sandbox_url: str, change: dict,
                                                                   message: str) -> None:
    item = {"product": {"id": "bc/account/product/1", "type": "APPLICATION", "productLevel": "Starter"},
            "scope": {"id": "bc/account/scope/s1", "type": "STORE"},
            "pricingPlan": {"interval": "MONTH", "price": {"value": 9.99, "currencyCode": "USD"}, "trialDays": 0},
            "description": "x", "redirectUrl": "https://example.invalid"}
    item.update(change)
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{sandbox_url}/accounts/{PARTNER}/graphql", headers={"X-Auth-Token": TOKEN},
            json={"query": "mutation ($checkout: CreateCheckoutInput!) { checkout { createCheckout(input: $checkout) "
                           "{ checkout { id } } } }",
                  "variables": {"checkout": {"accountId": "bc/account/account/m1", "items": [item]}}})
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None and message in body["errors"][0]["message"]
        missing_token = await client.post(f"{sandbox_url}/accounts/{PARTNER}/graphql", json={"query": "{}"})
        assert missing_token.status_code == 401


async def test_a_downgrade_to_free_cancels_the_provider_subscription_at_the_cycle_end(
        sandbox_url: str, billing_factory, sqlite_database_url) -> None:
    store = f"s{uuid.uuid4().hex[:8]}"
    clock = FakeClock(datetime(2026, 4, 1, tzinfo=UTC))
    billing = await billing_factory(sqlite_database_url(), clock=clock, provider=provider(sandbox_url))
    await billing.stub.StartSubscription(billing_pb2.StartSubscriptionRequest(
        store_hash=store, merchant_account_uuid="merchant-uuid-1"))
    reply = await billing.change(store, "growth")
    await complete(sandbox_url, reply.charge.checkout_url)
    await billing.change(store, "free")
    unified = provider(sandbox_url)
    try:
        clock.set(datetime(2026, 4, 20, tzinfo=UTC))
        assert await billing.handlers.run_due() == 0
        assert await unified.find_subscription(store) is not None  # still growth until May 1
        clock.set(datetime(2026, 5, 1, 0, 0, 1, tzinfo=UTC))

        async def cancelled() -> bool:
            return await unified.find_subscription(store) is None

        await wait_for(cancelled, what="the provider subscription to be cancelled")
        assert await billing.entitlement(store) == ("free", 1, False)
    finally:
        await unified.aclose()
