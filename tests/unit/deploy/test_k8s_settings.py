"""Every environment variable a service reads is provided to it, secrets from Secrets.

The variables are discovered from the code (tests/unit/deploy/code_facts.py walks each
service package and what it imports), so a new `env("BACKORDER_…")` fails this test until
the manifests provide it or ALLOWED_UNSET says, with a reason, why the default is right.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.deploy import code_facts
from tests.unit.deploy.code_facts import ALL_SERVICES, GRPC_SERVICES, settings_read_by
from tests.unit.deploy.conftest import OVERLAYS, Rendered
from tests.unit.deploy.kustomize_lite import pod_specs

TUNING = "a tuning knob whose code default is right in production (docs/operations.md)"

# Variables a service may read without the manifests setting them: (service or "*") -> reason.
ALLOWED_UNSET: dict[str, dict[str, str]] = {
    "*": {
        "BACKORDER_DATA_DIR": "only locates the embedded default's SQLite files; unused with BACKORDER_DATABASE_URL",
    },
    "gateway": {
        "BACKORDER_STOREFRONT_CACHE_TTL_S": TUNING,
        "BACKORDER_STOREFRONT_CACHE_MAX_ENTRIES": TUNING,
        "BACKORDER_STOREFRONT_RATE_LIMIT": "per store and gateway pod; the default holds for a few pods (docs/operations.md)",
        "BACKORDER_STOREFRONT_RATE_BURST": TUNING,
        "BACKORDER_STOREFRONT_MAX_AGE_S": "browser caching of storefront answers stays off unless chosen",
    },
    "inventory": {
        "BACKORDER_ERP_GRPC_HOST": "defaults to BACKORDER_GRPC_HOST (0.0.0.0 in the pods)",
        "BACKORDER_ORDER_BATCH_WORKERS": TUNING,
        "BACKORDER_RECEIPT_INTERVAL_S": TUNING,
        "BACKORDER_ERP_TOKEN_CACHE_S": TUNING,
    },
    "catalog_sync": {
        "BACKORDER_UNINSTALL_PURGE_AFTER_S": "the uninstall grace period (30 days) of DESIGN.md §4",
        "BACKORDER_UNINSTALL_PURGE_INTERVAL_S": TUNING,
        "BACKORDER_CATALOG_WEBHOOK_CONCURRENCY": TUNING,
        "BACKORDER_CATALOG_WEBHOOK_BATCH": TUNING,
        "BACKORDER_CATALOG_EVENT_CONCURRENCY": TUNING,
        "BACKORDER_CATALOG_ACK_WAIT_S": TUNING,
    },
    "billing": {
        "BACKORDER_BILLING_PLANS_JSON": "the built-in plan catalogue; set it only to change the plans",
        "BACKORDER_BILLING_SCHEDULER_INTERVAL_S": TUNING,
    },
}


def _billing_not_unified(config: dict[str, str]) -> bool:
    return config.get("BACKORDER_BILLING_PROVIDER", "none") != "unified"


# Read only in some configurations: unset is fine when the predicate holds for the ConfigMap.
CONDITIONAL: dict[str, Callable[[dict[str, str]], bool]] = {
    "BACKORDER_BC_APP_ID": _billing_not_unified,
    "BACKORDER_BC_PARTNER_ACCOUNT_UUID": _billing_not_unified,
}


def allowed_unset(service: str, variable: str, config: dict[str, str]) -> bool:
    if variable in ALLOWED_UNSET["*"] or variable in ALLOWED_UNSET.get(service, {}):
        return True
    return variable in CONDITIONAL and CONDITIONAL[variable](config)


def deployment_for(rendered: Rendered, service: str) -> dict[str, Any]:
    return rendered.get("Deployment", service.replace("_", "-"))


def provided(rendered: Rendered, service: str) -> dict[str, str]:
    """Variable -> where it comes from: 'value', 'secret' or 'configmap'."""
    (container,) = pod_specs(deployment_for(rendered, service))[0]["containers"]
    sources: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config_map = rendered.get("ConfigMap", source["configMapRef"]["name"])
            sources.update({k: "configmap" for k in config_map["data"]})
        if "secretRef" in source:
            secret = rendered.get("Secret", source["secretRef"]["name"])
            sources.update({k: "secret" for k in secret.get("data", {})})
    for var in container.get("env", []):
        if "value" in var:
            sources[var["name"]] = "value"
        elif "secretKeyRef" in var.get("valueFrom", {}):
            sources[var["name"]] = "secret"
        else:
            sources[var["name"]] = "other"
    return sources


def shared_config(rendered: Rendered) -> dict[str, str]:
    return rendered.get("ConfigMap", "backorder-config")["data"]


@pytest.fixture(scope="module")
def reads() -> dict[str, code_facts.SettingsRead]:
    """What each service reads; a variable read as a Secret anywhere is a secret everywhere
    (the gateway reads the webhook key as a plain string, catalog_sync as a Secret)."""
    found = {service: settings_read_by(service) for service in ALL_SERVICES}
    secrets = set().union(*(r.secrets for r in found.values()))
    for read in found.values():
        read.secrets = read.names & secrets
    return found


def test_the_scan_finds_the_settings_every_grpc_service_reads(reads: dict[str, code_facts.SettingsRead]):
    """Guards the scan itself: ServiceSettings' variables reach every gRPC service."""
    for service in GRPC_SERVICES:
        assert {"BACKORDER_DATABASE_URL", "BACKORDER_NATS_URL", "BACKORDER_GRPC_PORT"} <= reads[service].names
        assert "BACKORDER_DATABASE_URL" in reads[service].secrets
    assert {"BACKORDER_SESSION_SECRET", "BACKORDER_GATEWAY_PORT"} <= reads["gateway"].names
    # The gateway imports a constant from services/common/settings.py, not ServiceSettings.
    assert "BACKORDER_DATABASE_URL" not in reads["gateway"].names


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", ALL_SERVICES)
def test_every_variable_a_service_reads_is_provided(
        overlays: dict[str, Rendered], reads: dict[str, code_facts.SettingsRead], overlay: str, service: str):
    rendered = overlays[overlay]
    sources = provided(rendered, service)
    config = shared_config(rendered)
    read = reads[service]
    missing = sorted(v for v in read.names - set(sources) if not allowed_unset(service, v, config))
    assert not missing, (
        f"{service} reads settings the {overlay} overlay does not provide. Add each to "
        "deploy/k8s/base/config.env (shared), to the Deployment's env (per service; secrets as a "
        "secretKeyRef into backorder-app, plus the key in overlays/dev), or to ALLOWED_UNSET here "
        "with the reason the code default is right in production:\n"
        + "\n".join(f"  {v} (read in {', '.join(sorted(read.where[v]))})" for v in missing))


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", ALL_SERVICES)
def test_secrets_come_from_secret_references_only(
        overlays: dict[str, Rendered], reads: dict[str, code_facts.SettingsRead], overlay: str, service: str):
    sources = provided(overlays[overlay], service)
    for variable in reads[service].secrets & set(sources):
        assert sources[variable] == "secret", f"{service}: {variable} is read as a Secret but set from {sources[variable]}"
    for variable, source in sources.items():
        if source == "secret":
            assert variable in reads[service].names, f"{service} is given {variable} but never reads it"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", ALL_SERVICES)
def test_a_service_is_given_only_what_it_reads_besides_the_shared_config(
        overlays: dict[str, Rendered], reads: dict[str, code_facts.SettingsRead], overlay: str, service: str):
    sources = provided(overlays[overlay], service)
    own = {v for v, source in sources.items() if source != "configmap"}
    assert own - reads[service].names == set()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_shared_setting_is_read_by_some_service(
        overlays: dict[str, Rendered], reads: dict[str, code_facts.SettingsRead], overlay: str):
    read_anywhere = set().union(*(r.names for r in reads.values()))
    unread = set(shared_config(overlays[overlay])) - read_anywhere
    assert not unread, f"set but read by no service (typo or dead setting): {sorted(unread)}"


def test_the_allow_list_has_no_stale_or_secret_entries(reads: dict[str, code_facts.SettingsRead]):
    for service, entries in ALLOWED_UNSET.items():
        readers = ALL_SERVICES if service == "*" else (service,)
        for variable in entries:
            assert any(variable in reads[s].names for s in readers), f"{variable} is no longer read by {service}"
            assert not any(variable in reads[s].secrets for s in readers), f"{variable} is a secret"


def test_prod_references_exactly_the_secrets_and_keys_dev_generates(overlays: dict[str, Rendered]):
    """Prod's Secrets are created outside git; dev's generated ones are the contract."""

    def references(rendered: Rendered) -> set[tuple[str, str]]:
        found = set()
        for workload in rendered.workloads():
            for container in pod_specs(workload)[0]["containers"]:
                for var in container.get("env", []):
                    ref = var.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        found.add((ref["name"], ref["key"]))
        for role in rendered.get("Cluster", "backorder-pg")["spec"]["managed"]["roles"]:
            found.update({(role["passwordSecret"]["name"], "username"), (role["passwordSecret"]["name"], "password")})
        return found

    generated = {(s["metadata"]["name"], key) for s in overlays["dev"].of_kind("Secret") for key in s["data"]}
    assert references(overlays["dev"]) == generated
    assert references(overlays["prod"]) == generated
    assert not overlays["prod"].of_kind("Secret"), "no secret values in the prod overlay"


def test_scan_reads_env_calls_secret_casts_environ_and_peer_addresses(tmp_path):
    module = tmp_path / "sample.py"
    module.write_text(
        "import os\n"
        "PEERS = ('billing', 'storefront')\n"
        "a = env('BACKORDER_ALPHA', 1, int)\n"
        "b = env('BACKORDER_BETA', Secret('x'), Secret)\n"
        "c = env('BACKORDER_GAMMA', cast=Secret)\n"
        "d = os.environ['BACKORDER_DELTA']\n"
        "e = os.environ.get('BACKORDER_EPSILON')\n"
        "f = peer_address('inventory')\n"
        "g = {p: peer_address(p) for p in PEERS}\n"
        "STREAM = 'BACKORDER_NOT_A_SETTING'\n"
    )
    names, secrets = code_facts.settings_in_module(module)
    assert names == {
        "BACKORDER_ALPHA", "BACKORDER_BETA", "BACKORDER_GAMMA", "BACKORDER_DELTA", "BACKORDER_EPSILON",
        "BACKORDER_INVENTORY_GRPC_ADDR", "BACKORDER_BILLING_GRPC_ADDR", "BACKORDER_STOREFRONT_GRPC_ADDR",
    }
    assert secrets == {"BACKORDER_BETA", "BACKORDER_GAMMA"}
