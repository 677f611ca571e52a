from __future__ import annotations

import grpc
import pytest

from services.common.errors import DomainError, ValidationFailed, error_metadata
from services.common.settings import (
    InvalidSetting,
    MissingSetting,
    Secret,
    ServiceSettings,
    env,
    peer_address,
)


def test_a_missing_required_setting_names_the_variable():
    with pytest.raises(MissingSetting, match="BACKORDER_SOMETHING"):
        env("BACKORDER_SOMETHING", environ={})


def test_a_bad_value_names_the_variable_and_hides_secrets():
    with pytest.raises(InvalidSetting, match="BACKORDER_GRPC_PORT='abc'"):
        env("BACKORDER_GRPC_PORT", 1, int, environ={"BACKORDER_GRPC_PORT": "abc"})
    with pytest.raises(InvalidSetting, match="BACKORDER_FLAG"):
        env("BACKORDER_FLAG", False, bool, environ={"BACKORDER_FLAG": "maybe"})


def test_secrets_never_print():
    settings = ServiceSettings.from_env("inventory", environ={
        "BACKORDER_DATABASE_URL": "postgresql://app:hunter2@db/inventory",
    })
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.database_url)
    assert settings.database_url.reveal() == "postgresql://app:hunter2@db/inventory"
    assert Secret("a") == Secret("a")


def test_embedded_defaults_and_peer_addresses():
    settings = ServiceSettings.from_env("billing", environ={"BACKORDER_DATA_DIR": "/tmp/x"})
    assert settings.grpc_port == 50054
    assert settings.nats_url == "nats://127.0.0.1:4322"
    assert settings.database_url.reveal() == "sqlite:////tmp/x/billing.db"
    assert peer_address("inventory", environ={}) == "127.0.0.1:50051"
    assert peer_address("inventory", environ={"BACKORDER_INVENTORY_GRPC_ADDR": "inventory:50051"}) == "inventory:50051"


def test_domain_errors_map_to_grpc_status_and_carry_details():
    error = ValidationFailed("bad", errors=[{"item": 2, "field": "threshold", "reason": "negative"}])
    assert error.grpc_status == grpc.StatusCode.INVALID_ARGUMENT
    assert DomainError("x", code="plan_limit_reached").grpc_status == grpc.StatusCode.RESOURCE_EXHAUSTED
    (key, value), = error_metadata(error)
    assert key == "backorder-error-bin"
    assert b'"field": "threshold"' in value
