"""The plan catalogue: defaults and BACKORDER_BILLING_PLANS_JSON validation."""

from __future__ import annotations

import json

import pytest

from services.billing import domain
from services.billing import settings as server
from services.billing.domain import DEFAULT_PLANS, Catalogue, InvalidPlanConfig, parse_plans_json


def test_default_catalogue_is_free_plus_three_growing_paid_plans() -> None:
    catalogue = Catalogue(DEFAULT_PLANS)
    assert [(p.code, p.max_assigned_products, p.price_cents) for p in catalogue.plans] == [
        ("free", 1, 0), ("starter", 25, 999), ("growth", 250, 2999), ("unlimited", None, 7999)]
    assert catalogue.start_plan.code == "free"


def test_plans_json_overrides_the_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKORDER_BILLING_PLANS_JSON", json.dumps([
        {"code": "free", "name": "Free", "max_assigned_products": 3, "price_cents": 0},
        {"code": "pro", "name": "Pro", "max_assigned_products": None, "price_cents": 1500},
    ]))
    catalogue = server.catalogue_from_env()
    assert [p.code for p in catalogue.plans] == ["free", "pro"]
    assert catalogue.get("pro").unlimited


def _plans(**changes: object) -> str:
    plans: list[dict[str, object]] = [
        {"code": "free", "name": "Free", "max_assigned_products": 1, "price_cents": 0},
        {"code": "pro", "name": "Pro", "max_assigned_products": 10, "price_cents": 1000},
    ]
    plans[1].update(changes)
    return json.dumps(plans)


@pytest.mark.parametrize(
    ("raw", "plan", "field"),
    [
        ("{not json", "*", "json"),
        ('{"code": "free"}', "*", "json"),
        (_plans(price_cents="9.99"), "pro", "price_cents"),
        (_plans(price_cents=-1), "pro", "price_cents"),
        (_plans(price_cents=0), "pro", "price_cents"),
        (_plans(max_assigned_products=0), "pro", "max_assigned_products"),
        (_plans(max_assigned_products="many"), "pro", "max_assigned_products"),
        (_plans(code="free"), "free", "code"),
        (_plans(code="Has Space"), "Has Space", "code"),
        (_plans(name=" "), "pro", "name"),
        (_plans(colour="red"), "pro", "colour"),
        (json.dumps([{"code": "pro", "name": "Pro", "max_assigned_products": 5, "price_cents": 100}]), "pro", "code"),
        (json.dumps([{"code": "free", "name": "Free", "price_cents": 0}]), "free", "max_assigned_products"),
        ("[]", "*", "plans"),
    ],
)
def test_bad_plan_config_fails_naming_the_plan_and_field(raw: str, plan: str, field: str) -> None:
    with pytest.raises(InvalidPlanConfig) as caught:
        parse_plans_json(raw)
    assert (caught.value.plan, caught.value.field_name) == (plan, field)
    assert f"plan {plan!r}" in str(caught.value) and f"field {field!r}" in str(caught.value)


def test_only_the_dearest_plan_may_be_unlimited() -> None:
    raw = json.dumps([
        {"code": "free", "name": "Free", "max_assigned_products": 1, "price_cents": 0},
        {"code": "mid", "name": "Mid", "max_assigned_products": None, "price_cents": 500},
        {"code": "top", "name": "Top", "max_assigned_products": 100, "price_cents": 900},
    ])
    with pytest.raises(InvalidPlanConfig) as caught:
        parse_plans_json(raw)
    assert (caught.value.plan, caught.value.field_name) == ("mid", "max_assigned_products")


def test_unknown_plan_lookup_names_the_known_ones() -> None:
    with pytest.raises(domain.NotFound) as caught:
        Catalogue(DEFAULT_PLANS).get("gold")
    assert caught.value.details["known"] == ["free", "starter", "growth", "unlimited"]
