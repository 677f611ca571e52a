"""Every overlay renders, and every object is valid Kubernetes (schemas of a pinned version).

Rendering uses tests/unit/deploy/kustomize_lite.py (kubectl/kustomize are not installable
here); its own behaviour is pinned by the tests at the bottom of this file. Objects of the
CloudNativePG CRDs are not in the Kubernetes schemas and are checked field by field.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.unit.deploy.conftest import K8S, OVERLAYS, Rendered
from tests.unit.deploy.kustomize_lite import CLUSTER_SCOPED, KustomizeError, render

# The oldest Kubernetes minor we support: native gRPC probes are GA since 1.27, the preStop
# sleep action is on by default since 1.30.
KUBERNETES_VERSION = "1.31.0"
CRD_GROUPS = {"postgresql.cnpg.io"}


def test_there_are_dev_and_prod_overlays():
    assert OVERLAYS == ["dev", "prod"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_against_the_kubernetes_schemas(overlays: dict[str, Rendered], overlay: str):
    failures = []
    for obj in overlays[overlay].objects:
        if obj["apiVersion"].split("/")[0] in CRD_GROUPS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
            failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_namespaced_object_lands_in_the_overlay_namespace(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    (namespace,) = rendered.of_kind("Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in rendered.objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == rendered.namespace, obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_cloudnativepg_objects_have_their_required_fields(overlays: dict[str, Rendered], overlay: str):
    """Structural checks for the CRDs (postgresql.cnpg.io/v1), which no bundled schema covers."""
    rendered = overlays[overlay]
    clusters = rendered.of_kind("Cluster")
    assert [c["apiVersion"] for c in clusters] == ["postgresql.cnpg.io/v1"]
    cluster = clusters[0]
    spec = cluster["spec"]
    assert isinstance(spec["instances"], int) and spec["instances"] >= 1
    assert spec["imageName"].startswith("ghcr.io/cloudnative-pg/postgresql:")
    assert spec["storage"]["size"]
    assert set(spec) <= {
        "instances", "imageName", "primaryUpdateStrategy", "postgresql", "managed", "storage",
        "walStorage", "resources", "affinity", "backup", "bootstrap", "monitoring",
    }, "unexpected Cluster field (typo?)"
    for role in spec["managed"]["roles"]:
        assert set(role) == {"name", "ensure", "login", "passwordSecret"}
        assert role["ensure"] == "present" and role["login"] is True
        rendered_secret_names = {s["metadata"]["name"] for s in rendered.of_kind("Secret")}
        if overlay == "dev":
            assert role["passwordSecret"]["name"] in rendered_secret_names
    synchronous = spec["postgresql"].get("synchronous")
    if spec["instances"] > 1:
        assert synchronous == {"method": "any", "number": 1, "dataDurability": "required"}
    else:
        assert synchronous is None, "a single instance has no standby to wait for"
    databases = rendered.of_kind("Database")
    assert databases
    role_names = {r["name"] for r in spec["managed"]["roles"]}
    for database in databases:
        assert database["apiVersion"] == "postgresql.cnpg.io/v1"
        assert database["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
        assert database["spec"]["owner"] in role_names
        assert database["spec"]["ensure"] == "present"
    for backup in rendered.of_kind("ScheduledBackup"):
        assert backup["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
        assert len(backup["spec"]["schedule"].split()) == 6, "CNPG schedules have a seconds field"
        assert spec["backup"]["barmanObjectStore"]["destinationPath"].startswith("s3://")


def test_prod_backs_up_postgres_and_dev_does_not(overlays: dict[str, Rendered]):
    assert overlays["prod"].of_kind("ScheduledBackup")
    assert "backup" in overlays["prod"].get("Cluster", "backorder-pg")["spec"]
    assert not overlays["dev"].of_kind("ScheduledBackup")
    assert "backup" not in overlays["dev"].get("Cluster", "backorder-pg")["spec"]


def test_every_kustomization_in_the_tree_is_reachable_from_an_overlay():
    used: set[Path] = set()

    def walk(folder: Path) -> None:
        used.add(folder.resolve())
        data = yaml.safe_load((folder / "kustomization.yaml").read_text())
        for entry in data.get("resources", []) + data.get("components", []):
            target = folder / entry
            if target.is_dir():
                walk(target)

    for overlay in OVERLAYS:
        walk(K8S / "overlays" / overlay)
    every = {p.parent.resolve() for p in K8S.rglob("kustomization.yaml")}
    assert every - used == set()


# ---------------------------------------------------------------- the renderer itself

def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


DEPLOYMENT = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
            - name: app
              image: web
              env:
                - {name: A, value: "1"}
                - {name: B, value: "2"}
              envFrom:
                - configMapRef: {name: settings}
"""


def test_renderer_merges_patches_by_key_and_applies_json6902(tmp_path: Path):
    write(tmp_path, {
        "base/kustomization.yaml": "resources: [web.yaml]\n",
        "base/web.yaml": DEPLOYMENT,
        "over/kustomization.yaml": """\
            namespace: shop
            resources: [../base]
            images:
              - {name: web, newName: registry.example/web, newTag: "1.2"}
            patches:
              - patch: |-
                  apiVersion: apps/v1
                  kind: Deployment
                  metadata: {name: web}
                  spec:
                    template:
                      spec:
                        containers:
                          - name: app
                            env:
                              - {name: B, value: "3"}
                              - {name: C, value: "4"}
              - target: {kind: Deployment, name: web}
                patch: |-
                  - {op: add, path: /spec/replicas, value: 2}
        """,
    })
    (web,) = render(tmp_path / "over")
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert {v["name"]: v["value"] for v in container["env"]} == {"A": "1", "B": "3", "C": "4"}
    assert container["image"] == "registry.example/web:1.2"
    assert web["spec"]["replicas"] == 2
    assert web["metadata"]["namespace"] == "shop"


def test_renderer_suffixes_generated_config_by_content_and_renames_references(tmp_path: Path):
    def rendered_with(value: str) -> tuple[str, str]:
        folder = tmp_path / value
        write(folder, {
            "kustomization.yaml": f"""\
                resources: [web.yaml]
                configMapGenerator:
                  - name: settings
                    literals: [LEVEL={value}]
                secretGenerator:
                  - name: keys
                    options: {{disableNameSuffixHash: true}}
                    literals: [TOKEN=x]
            """,
            "web.yaml": DEPLOYMENT,
        })
        objects = {o["kind"]: o for o in render(folder)}
        reference = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]
        assert objects["Secret"]["metadata"]["name"] == "keys"
        return objects["ConfigMap"]["metadata"]["name"], reference["configMapRef"]["name"]

    first_name, first_ref = rendered_with("info")
    second_name, second_ref = rendered_with("debug")
    assert first_name.startswith("settings-") and first_name == first_ref
    assert second_name == second_ref and second_name != first_name


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Path):
    write(tmp_path, {"kustomization.yaml": "resources: []\nreplacements: []\n"})
    with pytest.raises(KustomizeError, match="replacements"):
        render(tmp_path)


def test_renderer_refuses_a_patch_that_matches_nothing(tmp_path: Path):
    write(tmp_path, {
        "kustomization.yaml": """\
            resources: [web.yaml]
            patches:
              - target: {kind: Deployment, name: api}
                patch: "- {op: add, path: /spec/replicas, value: 2}"
        """,
        "web.yaml": DEPLOYMENT,
    })
    with pytest.raises(KustomizeError, match="matches nothing"):
        render(tmp_path)


def test_schema_validation_is_strict_about_unknown_fields(overlays: dict[str, Rendered]):
    import copy

    deployment = copy.deepcopy(overlays["prod"].get("Deployment", "inventory"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
