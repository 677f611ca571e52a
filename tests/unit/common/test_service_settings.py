"""Each service reads its configuration once, into one frozen settings object, from documented variables."""

from __future__ import annotations

import dataclasses

import pytest

from services.billing.settings import BillingSettings
from services.common.settings import InvalidSetting, ServiceSettings
from services.gateway.settings import GatewaySettings
from services.inventory.settings import InventorySettings


def service(name: str, **extra: object) -> ServiceSettings:
    return dataclasses.replace(ServiceSettings.from_env(name, environ={}), extra=extra)


def test_inventory_reads_its_variables_and_defaults() -> None:
    defaults = InventorySettings.from_env({})
    assert (defaults.erp_grpc_port, defaults.erp_token_cache_s, defaults.receipt_interval_s,
            defaults.order_batch_workers) == (50055, 10.0, 60.0, 2)
    read = InventorySettings.from_env({"BACKORDER_ERP_GRPC_PORT": "6000", "BACKORDER_ERP_TOKEN_CACHE_S": "2.5",
                                       "BACKORDER_RECEIPT_INTERVAL_S": "5", "BACKORDER_ORDER_BATCH_WORKERS": "4",
                                       "BACKORDER_BILLING_GRPC_ADDR": "billing:50054"})
    assert (read.erp_grpc_port, read.erp_token_cache_s, read.receipt_interval_s, read.order_batch_workers,
            read.billing_addr) == (6000, 2.5, 5.0, 4, "billing:50054")
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.order_batch_workers = 1  # type: ignore[misc]


def test_inventory_overrides_come_from_extra_and_the_erp_host_follows_the_grpc_host() -> None:
    merged = InventorySettings.for_service(service("inventory", order_batch_workers=7, unknown_key=1), environ={})
    assert merged.order_batch_workers == 7
    assert merged.erp_grpc_host == ServiceSettings.from_env("inventory", environ={}).grpc_host


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(InvalidSetting, match="BACKORDER_ORDER_BATCH_WORKERS"):
        InventorySettings.from_env({"BACKORDER_ORDER_BATCH_WORKERS": "many"})
    with pytest.raises(InvalidSetting, match="BACKORDER_BILLING_PROVIDER"):
        BillingSettings.from_env({"BACKORDER_BILLING_PROVIDER": "paypal"})


def test_billing_reads_its_variables_and_takes_overrides_from_extra() -> None:
    read = BillingSettings.from_env({"BACKORDER_BILLING_SCHEDULER_INTERVAL_S": "15"})
    assert read.scheduler_interval_s == 15.0 and read.provider.kind == "none"
    merged = BillingSettings.for_service(service("billing", scheduler_interval_s=1.0), environ={})
    assert merged.scheduler_interval_s == 1.0


def test_gateway_reads_its_variables_once() -> None:
    read = GatewaySettings.from_env({"BACKORDER_GATEWAY_PORT": "9000", "BACKORDER_STOREFRONT_RATE_LIMIT": "0"})
    assert read.port == 9000
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.port = 1  # type: ignore[misc]
