"""Every workload is deployable the way Online Boutique deploys: probes, requests and limits,
non-root with a hardened security context, a ServiceAccount of its own, a disruption budget,
and autoscaling where the service is stateless and hot."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.deploy.conftest import OVERLAYS, Rendered
from tests.unit.deploy.kustomize_lite import pod_specs

SERVICES = ("inventory", "catalog-sync", "storefront", "billing", "gateway")
AUTOSCALED = {"gateway", "storefront", "inventory"}


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_specs(obj)[0]
    return spec.get("initContainers", []) + spec["containers"]


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_a_deployment_a_service_and_a_service_account(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    assert sorted(d["metadata"]["name"] for d in rendered.of_kind("Deployment")) == sorted(SERVICES)
    for name in SERVICES:
        deployment = rendered.get("Deployment", name)
        account = rendered.get("ServiceAccount", name)
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == name
        assert account["automountServiceAccountToken"] is False
        service = rendered.get("Service", name)
        port_names = {p["name"] for p in service["spec"]["ports"]}
        assert ("http" if name == "gateway" else "grpc") in port_names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_probes_on_its_serving_port(overlays: dict[str, Rendered], overlay: str):
    for deployment in overlays[overlay].of_kind("Deployment"):
        (container,) = pod_specs(deployment)[0]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert probe in container, f"{deployment['metadata']['name']}: no {probe}"
        readiness, liveness = container["readinessProbe"], container["livenessProbe"]
        if "grpc" in ports:
            # Native gRPC probes against grpc.health.v1 on the service port.
            assert readiness["grpc"]["port"] == ports["grpc"]
            assert liveness["grpc"]["port"] == ports["grpc"]
            assert readiness["grpc"].get("service", "") == "", "readiness is the overall health"
            assert liveness["grpc"]["service"] != "", "liveness must not follow the database or NATS"
        else:
            for probe in (readiness, liveness):
                assert probe["httpGet"]["port"] in ("http", ports["http"])
                assert probe["httpGet"]["path"] != "/healthz", "/healthz follows the backends"
        # Liveness gives a stuck process a minute before a restart, never less than readiness.
        assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60
        assert liveness["periodSeconds"] * liveness["failureThreshold"] >= \
            readiness["periodSeconds"] * readiness["failureThreshold"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlays: dict[str, Rendered], overlay: str):
    for workload in overlays[overlay].workloads():
        for container in containers(workload):
            resources = container.get("resources", {})
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(section, {})), \
                    f"{workload['metadata']['name']}/{container['name']}: {section}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_as_non_root_with_a_hardened_security_context(overlays: dict[str, Rendered], overlay: str):
    for workload in overlays[overlay].workloads():
        name = workload["metadata"]["name"]
        pod = pod_specs(workload)[0]
        pod_context = pod["securityContext"]
        assert pod_context["runAsNonRoot"] is True, name
        assert pod_context["runAsUser"] > 0, name
        assert pod_context["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in context["capabilities"], name
            assert context.get("privileged", False) is False, name
            assert context.get("runAsUser", pod_context["runAsUser"]) > 0, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_backorder_pods_run_as_the_image_user(overlays: dict[str, Rendered], overlay: str):
    """The Dockerfile's USER 10001; a mismatch would leave files unreadable or root-owned."""
    for workload in overlays[overlay].workloads():
        if any(c["image"].rsplit("/", 1)[-1].startswith("backorder") for c in containers(workload)):
            assert pod_specs(workload)[0]["securityContext"]["runAsUser"] == 10001


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_and_statefulset_has_a_disruption_budget(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    budgets = rendered.of_kind("PodDisruptionBudget")
    for workload in rendered.of_kind("Deployment") + rendered.of_kind("StatefulSet"):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        matching = [b for b in budgets if labels_match(b["spec"]["selector"]["matchLabels"], labels)]
        assert len(matching) == 1, workload["metadata"]["name"]
        # maxUnavailable keeps a one-replica deployment drainable; 1 keeps the NATS quorum.
        assert matching[0]["spec"] == {**matching[0]["spec"], "maxUnavailable": 1}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_storefront_and_inventory_autoscale(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    autoscalers = {h["spec"]["scaleTargetRef"]["name"]: h for h in rendered.of_kind("HorizontalPodAutoscaler")}
    assert set(autoscalers) == AUTOSCALED
    for name, autoscaler in autoscalers.items():
        assert autoscaler["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert 1 <= autoscaler["spec"]["minReplicas"] < autoscaler["spec"]["maxReplicas"]
        # A replicas field would fight the autoscaler on every apply.
        assert "replicas" not in rendered.get("Deployment", name)["spec"]
        (metric,) = autoscaler["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
    if overlay == "prod":
        assert all(a["spec"]["minReplicas"] >= 3 for a in autoscalers.values())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_select_pods_and_target_named_container_ports(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    for service in rendered.of_kind("Service"):
        selected = [w for w in rendered.workloads()
                    if labels_match(service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])]
        assert len(selected) == 1, service["metadata"]["name"]
        container_ports = {p["name"]: p["containerPort"] for c in containers(selected[0]) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, (service["metadata"]["name"], port)
            assert port["port"] == container_ports[port["targetPort"]], "same port inside and out"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingresses_serve_the_gateway_and_the_erp_port_over_tls(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    backends = {}
    for ingress in rendered.of_kind("Ingress"):
        (rule,) = ingress["spec"]["rules"]
        (tls,) = ingress["spec"]["tls"]
        assert tls["hosts"] == [rule["host"]] and tls["secretName"]
        (path,) = rule["http"]["paths"]
        service = path["backend"]["service"]
        backends[(service["name"], service["port"]["name"])] = ingress
    assert set(backends) == {("gateway", "http"), ("inventory", "grpc-erp")}
    erp = backends[("inventory", "grpc-erp")]
    assert erp["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migrations_job_is_the_only_migrator(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    config = rendered.get("ConfigMap", "backorder-config")["data"]
    assert config["BACKORDER_MIGRATE_ON_START"] == "false"
    for deployment in rendered.of_kind("Deployment"):
        (container,) = pod_specs(deployment)[0]["containers"]
        assert "BACKORDER_MIGRATE_ON_START" not in {v["name"] for v in container.get("env", [])}
        refs = [s["configMapRef"]["name"] for s in container["envFrom"]]
        assert refs == [rendered.get("ConfigMap", "backorder-config")["metadata"]["name"]]
    job = rendered.get("Job", "migrations")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    (container,) = pod_specs(job)[0]["containers"]
    assert container["command"] == ["backorder", "migrate"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_postgres_accepts_every_pool_at_maximum_scale(overlays: dict[str, Rendered], overlay: str):
    """max_connections covers each database client at its largest replica count."""
    from services.common.db import DEFAULT_POOL_SIZE

    rendered = overlays[overlay]
    config = rendered.get("ConfigMap", "backorder-config")["data"]
    # services/common/db.py: BACKORDER_DB_POOL_SIZE connections plus as many overflow ones.
    per_process = 2 * int(config.get("BACKORDER_DB_POOL_SIZE", DEFAULT_POOL_SIZE))
    autoscalers = {h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
                   for h in rendered.of_kind("HorizontalPodAutoscaler")}
    clients = 1  # the migrations Job
    for deployment in rendered.of_kind("Deployment"):
        (container,) = pod_specs(deployment)[0]["containers"]
        if any(v["name"] == "BACKORDER_DATABASE_URL" for v in container.get("env", [])):
            name = deployment["metadata"]["name"]
            clients += autoscalers.get(name, deployment["spec"].get("replicas", 1))
    parameters = rendered.get("Cluster", "backorder-pg")["spec"]["postgresql"]["parameters"]
    reserved = 10  # superuser_reserved_connections and the operator's own
    assert clients * per_process + reserved <= int(parameters["max_connections"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pre_rollout_selection_holds_everything_the_migrations_job_needs(
        overlays: dict[str, Rendered], overlay: str):
    """docs/operations.md applies `-l backorder.io/phase=pre-rollout` before a rollout."""
    rendered = overlays[overlay]
    selected = {(o["kind"], o["metadata"]["name"]) for o in rendered.objects
                if o["metadata"].get("labels", {}).get("backorder.io/phase") == "pre-rollout"}
    job = rendered.get("Job", "migrations")
    pod = pod_specs(job)[0]
    (container,) = pod["containers"]
    needed = {("Job", "migrations"), ("ServiceAccount", pod["serviceAccountName"])}
    needed |= {("ConfigMap", source["configMapRef"]["name"]) for source in container["envFrom"]}
    assert selected == needed
