"""A small, offline renderer for the subset of kustomize that deploy/k8s uses.

kubectl and kustomize are not installable from the registries our machines and CI reach, so
the manifest tests render the overlays with this module instead. It implements exactly what
deploy/k8s/ uses and fails loudly on any other kustomization field, so an overlay cannot
quietly grow past what the tests understand:

- `resources` (files, or folders holding a kustomization.yaml) and `components`
  (folders whose kustomization.yaml is `kind: Component`);
- `namespace`, `labels` (pairs, includeSelectors=false, includeTemplates) and `images`
  (newName / newTag / digest);
- `configMapGenerator` / `secretGenerator` (envs, literals, files; behavior create/merge/replace;
  type; options disableNameSuffixHash and labels) with `generatorOptions`; a generated ConfigMap or Secret gets a
  content-hash suffix (the same idea as kustomize's, not the same digits) and the references
  to it in pod templates are renamed;
- `patches` (file or inline): strategic merge (maps merge; containers, env, ports, volumes
  and volumeMounts merge by their keys; other lists are replaced; a null deletes a key) and
  JSON 6902 operations add / replace / remove with a `target`.

The order follows kustomize: resources, then components, then generators, then patches,
namespace, labels and images, then the hash suffixes and the references to them.
The output was compared with `kubectl kustomize` (kustomize v5.5.0) for both overlays when
this was written: identical objects except for the digits of the hash suffixes (see
docs/operations.md). The tests do not need kubectl.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

KNOWN_FIELDS = {
    "apiVersion", "kind", "resources", "components", "namespace", "labels", "images",
    "configMapGenerator", "secretGenerator", "generatorOptions", "patches",
}

# Kinds that are not namespaced (the namespace transformer leaves them alone).
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass",
    "PersistentVolume", "PriorityClass", "IngressClass", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}

# Kinds whose pod template lives at spec.template (CronJob: spec.jobTemplate.spec.template).
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

# Strategic-merge keys of the Kubernetes lists deploy/k8s patches (from the API's
# x-kubernetes-patch-merge-key); any other list is replaced whole, as for CRDs.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
}


class KustomizeError(ValueError):
    pass


def render(path: str | Path) -> list[Obj]:
    """Render the kustomization in folder `path` into a list of objects."""
    objects, generated = _build(Path(path), is_component=False, inherited=[])
    _apply_name_suffixes(objects, generated)
    return objects


def key_of(obj: Obj) -> tuple[str, str, str]:
    meta = obj.get("metadata", {})
    return obj["kind"], meta.get("namespace", ""), meta["name"]


# ---------------------------------------------------------------- building

def _load_kustomization(folder: Path) -> Obj:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        candidate = folder / name
        if candidate.is_file():
            data = yaml.safe_load(candidate.read_text()) or {}
            unknown = set(data) - KNOWN_FIELDS
            if unknown:
                raise KustomizeError(f"{candidate}: fields this renderer does not implement: {sorted(unknown)}")
            return data
    raise KustomizeError(f"no kustomization in {folder}")


def _read_objects(file: Path) -> list[Obj]:
    docs = [d for d in yaml.safe_load_all(file.read_text()) if d]
    for doc in docs:
        if "kind" not in doc or "metadata" not in doc or "name" not in doc["metadata"]:
            raise KustomizeError(f"{file}: every document needs kind and metadata.name")
    return docs


def _build(folder: Path, *, is_component: bool, inherited: list[Obj]) -> tuple[list[Obj], dict[tuple, Obj]]:
    """Returns the objects and, per generated object key, its generator options."""
    kustomization = _load_kustomization(folder)
    kind = kustomization.get("kind", "Kustomization")
    if is_component != (kind == "Component"):
        raise KustomizeError(f"{folder}: kind {kind} used as {'component' if is_component else 'resource'}")

    objects = inherited
    generated: dict[tuple, Obj] = {}
    for entry in kustomization.get("resources", []):
        target = folder / entry
        if target.is_dir():
            sub_objects, sub_generated = _build(target, is_component=False, inherited=[])
            objects.extend(sub_objects)
            generated.update(sub_generated)
        else:
            objects.extend(_read_objects(target))
    for entry in kustomization.get("components", []):
        objects, sub_generated = _build(folder / entry, is_component=True, inherited=objects)
        generated.update(sub_generated)
    _check_unique(objects, folder)

    options = kustomization.get("generatorOptions", {})
    for generator in kustomization.get("configMapGenerator", []):
        _generate(objects, generated, folder, generator, "ConfigMap", options)
    for generator in kustomization.get("secretGenerator", []):
        _generate(objects, generated, folder, generator, "Secret", options)

    for patch in kustomization.get("patches", []):
        _apply_patch(objects, folder, patch)
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
        generated = {(k[0], kustomization["namespace"], k[2]): v for k, v in generated.items()}
    for label_set in kustomization.get("labels", []):
        _apply_labels(objects, label_set)
    for image in kustomization.get("images", []):
        _apply_image(objects, image)
    _check_unique(objects, folder)
    return objects, generated


def _check_unique(objects: list[Obj], folder: Path) -> None:
    seen: set[tuple] = set()
    for obj in objects:
        key = key_of(obj)
        if key in seen:
            raise KustomizeError(f"{folder}: {key} defined twice")
        seen.add(key)


# ---------------------------------------------------------------- generators

def _parse_env_file(file: Path) -> dict[str, str]:
    data: dict[str, str] = {}
    for raw in file.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise KustomizeError(f"{file}: not KEY=VALUE: {raw!r}")
        key, value = line.split("=", 1)
        data[key] = value
    return data


def _generator_data(folder: Path, generator: Obj) -> dict[str, str]:
    data: dict[str, str] = {}
    for env_file in generator.get("envs", []):
        data.update(_parse_env_file(folder / env_file))
    for literal in generator.get("literals", []):
        key, value = literal.split("=", 1)
        data[key] = value
    for entry in generator.get("files", []):
        key, _, file = entry.partition("=") if "=" in entry else (Path(entry).name, "", entry)
        data[key] = (folder / file).read_text()
    return data


def _generate(objects: list[Obj], generated: dict[tuple, Obj], folder: Path, generator: Obj,
              kind: str, options: Obj) -> None:
    unknown = set(generator) - {"name", "behavior", "envs", "literals", "files", "type", "options"}
    if unknown:
        raise KustomizeError(f"{folder}: generator fields not implemented: {sorted(unknown)}")
    name = generator["name"]
    data = _generator_data(folder, generator)
    behavior = generator.get("behavior", "create")
    existing = next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)
    merged_options = {**options, **generator.get("options", {})}
    if behavior == "create":
        if existing is not None:
            raise KustomizeError(f"{folder}: {kind} {name} already exists (use behavior: merge)")
        obj: Obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}
        if kind == "Secret":
            obj["type"] = generator.get("type", "Opaque")
        objects.append(obj)
        generated[(kind, "", name)] = dict(merged_options)
    else:
        if existing is None:
            raise KustomizeError(f"{folder}: {kind} {name} to {behavior} does not exist")
        obj = existing
        if behavior == "replace":
            obj.pop("data", None)
        if "options" in generator:
            generated.setdefault((kind, obj["metadata"].get("namespace", ""), name), {}).update(
                generator["options"])
    unknown_options = set(generator.get("options", {})) - {"disableNameSuffixHash", "labels"}
    if unknown_options:
        raise KustomizeError(f"{folder}: generator options not implemented: {sorted(unknown_options)}")
    labels = generator.get("options", {}).get("labels") if behavior != "create" else merged_options.get("labels")
    if labels:
        obj["metadata"].setdefault("labels", {}).update(labels)
    if kind == "Secret":
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        obj["data"] = {**obj.get("data", {}), **encoded}
    else:
        obj["data"] = {**obj.get("data", {}), **data}


def _content_hash(obj: Obj) -> str:
    """A name suffix that changes with the content (sha256 of canonical JSON, kustomize's alphabet)."""
    if obj["kind"] == "ConfigMap":
        canonical: Obj = {"kind": "ConfigMap", "name": obj["metadata"]["name"], "data": obj.get("data", {})}
    else:
        canonical = {"kind": "Secret", "type": obj.get("type", "Opaque"), "name": obj["metadata"]["name"],
                     "data": obj.get("data", {})}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"}))


def _apply_name_suffixes(objects: list[Obj], generated: dict[tuple, Obj]) -> None:
    renames: dict[tuple[str, str, str], str] = {}
    for obj in objects:
        options = generated.get(key_of(obj))
        if options is None or options.get("disableNameSuffixHash"):
            continue
        old = obj["metadata"]["name"]
        new = f"{old}-{_content_hash(obj)}"
        obj["metadata"]["name"] = new
        renames[(obj["kind"], obj["metadata"].get("namespace", ""), old)] = new
    if not renames:
        return
    for obj in objects:
        for pod_spec in pod_specs(obj):
            _rename_pod_refs(pod_spec, obj["metadata"].get("namespace", ""), renames)


def _rename_pod_refs(pod_spec: Obj, namespace: str, renames: dict[tuple[str, str, str], str]) -> None:
    def renamed(kind: str, name: str) -> str:
        return renames.get((kind, namespace, name), name)

    for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                source["configMapRef"]["name"] = renamed("ConfigMap", source["configMapRef"]["name"])
            if "secretRef" in source:
                source["secretRef"]["name"] = renamed("Secret", source["secretRef"]["name"])
        for var in container.get("env", []):
            value_from = var.get("valueFrom", {})
            if "configMapKeyRef" in value_from:
                ref = value_from["configMapKeyRef"]
                ref["name"] = renamed("ConfigMap", ref["name"])
            if "secretKeyRef" in value_from:
                ref = value_from["secretKeyRef"]
                ref["name"] = renamed("Secret", ref["name"])
    for volume in pod_spec.get("volumes", []):
        if "configMap" in volume:
            volume["configMap"]["name"] = renamed("ConfigMap", volume["configMap"]["name"])
        if "secret" in volume:
            volume["secret"]["secretName"] = renamed("Secret", volume["secret"]["secretName"])


# ---------------------------------------------------------------- transformers

def pod_specs(obj: Obj) -> list[Obj]:
    """The pod spec(s) of a workload object (empty for anything else)."""
    if obj["kind"] in WORKLOADS:
        return [obj["spec"]["template"]["spec"]]
    if obj["kind"] == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    if obj["kind"] == "Pod":
        return [obj["spec"]]
    return []


def _apply_labels(objects: list[Obj], label_set: Obj) -> None:
    unknown = set(label_set) - {"pairs", "includeSelectors", "includeTemplates"}
    if unknown:
        raise KustomizeError(f"labels fields not implemented: {sorted(unknown)}")
    if label_set.get("includeSelectors"):
        raise KustomizeError("labels.includeSelectors is not implemented (selectors are immutable anyway)")
    pairs = label_set["pairs"]
    for obj in objects:
        obj["metadata"].setdefault("labels", {}).update(pairs)
        if label_set.get("includeTemplates") and obj["kind"] in WORKLOADS:
            template_meta = obj["spec"]["template"].setdefault("metadata", {})
            template_meta.setdefault("labels", {}).update(pairs)


def _split_image(image: str) -> tuple[str, str]:
    """('name', '@sha256:…' or ':tag' or '') — a registry port's colon is not a tag."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = image.rsplit(":", 1)
        return name, ":" + tag
    return image, ""


def _apply_image(objects: list[Obj], rule: Obj) -> None:
    unknown = set(rule) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"image fields not implemented: {sorted(unknown)}")
    for obj in objects:
        for pod_spec in pod_specs(obj):
            for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
                name, suffix = _split_image(container["image"])
                if name != rule["name"]:
                    continue
                new_name = rule.get("newName", name)
                if "digest" in rule:
                    suffix = "@" + rule["digest"]
                elif "newTag" in rule:
                    suffix = ":" + rule["newTag"]
                container["image"] = new_name + suffix


def _matches(obj: Obj, target: Obj) -> bool:
    unknown = set(target) - {"kind", "name", "group", "version"}
    if unknown:
        raise KustomizeError(f"patch target fields not implemented: {sorted(unknown)}")
    if "kind" in target and obj["kind"] != target["kind"]:
        return False
    if "name" in target and obj["metadata"]["name"] != target["name"]:
        return False
    api = obj.get("apiVersion", "")
    group, _, version = api.rpartition("/")
    if "group" in target and group != target["group"]:
        return False
    return "version" not in target or version == target["version"]


def _apply_patch(objects: list[Obj], folder: Path, entry: Obj) -> None:
    unknown = set(entry) - {"path", "patch", "target"}
    if unknown:
        raise KustomizeError(f"{folder}: patch fields not implemented: {sorted(unknown)}")
    text = (folder / entry["path"]).read_text() if "path" in entry else entry["patch"]
    documents = [d for d in yaml.safe_load_all(text) if d is not None]
    if len(documents) > 1:
        if "target" in entry:
            raise KustomizeError(f"{folder}: a multi-document patch cannot have a target")
        for document in documents:
            _apply_patch(objects, folder, {"patch": yaml.safe_dump(document)})
        return
    body = documents[0]
    if isinstance(body, list):
        if "target" not in entry:
            raise KustomizeError(f"{folder}: a JSON 6902 patch needs a target")
        hits = [o for o in objects if _matches(o, entry["target"])]
        if not hits:
            raise KustomizeError(f"{folder}: patch target {entry['target']} matches nothing")
        for obj in hits:
            for operation in body:
                _json6902(obj, operation)
        return
    target = entry.get("target") or {"kind": body["kind"], "name": body["metadata"]["name"]}
    hits = [o for o in objects if _matches(o, target)]
    if not hits:
        raise KustomizeError(f"{folder}: patch for {target} matches nothing")
    for obj in hits:
        patch = copy.deepcopy(body)
        patch.get("metadata", {}).pop("name", None)
        merged = strategic_merge(obj, patch)
        obj.clear()
        obj.update(merged)


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        result = dict(base)
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            elif key in result:
                result[key] = strategic_merge(result[key], value, key)
            else:
                result[key] = copy.deepcopy(value)
        return result
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        # Like kustomize (kyaml): the patch's items first, in the patch's order (merged with
        # the base item of the same key), then the base items the patch does not name.
        merge_key = MERGE_KEYS[field]
        base_by_key = {item.get(merge_key): item for item in base}
        patched_keys = {item.get(merge_key) for item in patch}
        result = []
        for item in patch:
            if item.get("$patch") == "delete":
                continue
            old = base_by_key.get(item.get(merge_key))
            result.append(copy.deepcopy(item) if old is None else strategic_merge(old, item, field))
        result.extend(copy.deepcopy(item) for item in base if item.get(merge_key) not in patched_keys)
        return result
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer must start with /: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _json6902(obj: Obj, operation: Obj) -> None:
    op = operation["op"]
    if op not in {"add", "replace", "remove"}:
        raise KustomizeError(f"JSON 6902 op {op!r} not implemented")
    *parents, last = _pointer(operation["path"])
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if op == "add":
            node.insert(index, copy.deepcopy(operation["value"]))
        elif op == "replace":
            node[index] = copy.deepcopy(operation["value"])
        else:
            node.pop(index)
        return
    if op in {"replace", "remove"} and last not in node:
        raise KustomizeError(f"JSON 6902 {op}: {operation['path']} does not exist")
    if op == "remove":
        del node[last]
    else:
        node[last] = copy.deepcopy(operation["value"])
