"""Network policies: deny-all, plus exactly the paths of DESIGN.md §1 and the
infrastructure's own, computed from the rendered policies as a graph of allowed connections.

A connection source -> destination:port is allowed when the source's egress and the
destination's ingress both allow it (a side no policy selects is open; a peer outside the
namespace counts only on our side). Outside peers are modelled as: the ingress controller,
cluster DNS, the CloudNativePG operator, Prometheus, the Kubernetes API (a private address)
and "internet" (a public address, e.g. BigCommerce).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.unit.deploy.conftest import OVERLAYS, Rendered
from tests.unit.deploy.kustomize_lite import pod_specs

APPS = ("gateway", "inventory", "catalog-sync", "storefront", "billing")
GRPC = {"inventory": 50051, "catalog-sync": 50052, "storefront": 50053, "billing": 50054}
METRICS = {"gateway": 8000, "inventory": 9151, "catalog-sync": 9152, "storefront": 9153, "billing": 9154}


@dataclass(frozen=True)
class Peer:
    name: str
    labels: tuple[tuple[str, str], ...]
    namespace_labels: tuple[tuple[str, str], ...] | None  # None: a pod of our namespace
    ports: tuple[int, ...]
    public_ip: bool = False
    private_ip: bool = False


@dataclass
class Graph:
    peers: list[Peer] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)


def _selected(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "matchExpressions are not modelled"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer_matches(rule_peer: dict[str, Any], peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        # Pods and cluster services have private addresses, which every ipBlock here excludes.
        return peer.public_ip
    if peer.public_ip or peer.private_ip:
        return False
    labels = dict(peer.labels)
    if "namespaceSelector" in rule_peer:
        if peer.namespace_labels is None:
            return False
        return _selected(rule_peer["namespaceSelector"], dict(peer.namespace_labels)) and \
            _selected(rule_peer.get("podSelector", {}), labels)
    return peer.namespace_labels is None and _selected(rule_peer["podSelector"], labels)


def _rule_allows(rule: dict[str, Any], peers_key: str, peer: Peer, port: int) -> bool:
    ports = rule.get("ports")
    if ports is not None and port not in {p["port"] for p in ports}:
        return False
    peers = rule.get(peers_key)
    return peers is None or any(_peer_matches(p, peer) for p in peers)


def ours(peer: Peer) -> bool:
    """A pod of our namespace (the policies govern only these)."""
    return peer.namespace_labels is None and not (peer.public_ip or peer.private_ip)


def _side_allows(graph: Graph, owner: Peer, direction: str, other: Peer, port: int) -> bool:
    if not ours(owner):
        return True  # not ours to police
    relevant = [p for p in graph.policies
                if direction.capitalize() in p["spec"]["policyTypes"]
                and _selected(p["spec"]["podSelector"], dict(owner.labels))]
    if not relevant:
        return True
    key = "to" if direction == "egress" else "from"
    return any(_rule_allows(rule, key, other, port) for p in relevant for rule in p["spec"].get(direction, []))


def allowed(graph: Graph) -> set[tuple[str, str, int]]:
    edges = set()
    for source in graph.peers:
        for destination in graph.peers:
            if not (ours(source) or ours(destination)):
                continue
            for port in destination.ports:
                if _side_allows(graph, source, "egress", destination, port) and \
                        _side_allows(graph, destination, "ingress", source, port):
                    edges.add((source.name, destination.name, port))
    return edges


def outside(name: str, namespace: str, labels: dict[str, str], ports: tuple[int, ...] = ()) -> Peer:
    return Peer(name, tuple(labels.items()), (("kubernetes.io/metadata.name", namespace),), ports)


def build(rendered: Rendered) -> Graph:
    graph = Graph(policies=rendered.of_kind("NetworkPolicy"))
    for workload in rendered.workloads():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        ports = tuple(p["containerPort"] for c in pod_specs(workload)[0]["containers"] for p in c.get("ports", []))
        graph.peers.append(Peer(labels["app"], tuple(labels.items()), None, ports))
    for cluster in rendered.of_kind("Cluster"):
        labels = {"cnpg.io/cluster": cluster["metadata"]["name"]}
        graph.peers.append(Peer("postgres", tuple(labels.items()), None, (5432, 8000)))
    graph.peers += [
        outside("ingress-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
        outside("dns", "kube-system", {"k8s-app": "kube-dns"}, (53,)),
        outside("cnpg-operator", "cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"}),
        outside("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
        Peer("kubernetes-api", (), None, (443, 6443), private_ip=True),
        Peer("internet", (), None, (443,), public_ip=True),
    ]
    return graph


def design_paths() -> set[tuple[str, str, int]]:
    """DESIGN.md §1, one line per arrow."""
    paths = {("ingress-controller", "gateway", 8000), ("ingress-controller", "inventory", 50055)}
    paths |= {("gateway", service, port) for service, port in GRPC.items()}
    paths |= {("catalog-sync", service, GRPC[service]) for service in ("inventory", "storefront", "billing")}
    paths |= {("inventory", "billing", GRPC["billing"])}
    paths |= {(app, "nats", 4222) for app in APPS}
    paths |= {(app, "postgres", 5432) for app in GRPC}
    paths |= {("catalog-sync", "internet", 443), ("billing", "internet", 443)}
    return paths


def infrastructure_paths(rendered: Rendered) -> set[tuple[str, str, int]]:
    pods = {w["spec"]["template"]["metadata"]["labels"]["app"] for w in rendered.workloads()} | {"postgres"}
    paths = {(pod, "dns", 53) for pod in pods}
    paths |= {("migrations", "postgres", 5432), ("nats-streams", "nats", 4222), ("nats", "nats", 6222)}
    paths |= {("postgres", "postgres", 5432), ("cnpg-operator", "postgres", 8000)}
    paths |= {("postgres", "kubernetes-api", 443), ("postgres", "kubernetes-api", 6443), ("postgres", "internet", 443)}
    return paths


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_designed_paths(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    expected = design_paths() | infrastructure_paths(rendered)
    if overlay == "prod":  # components/metrics-scraping
        expected |= {("prometheus", app, port) for app, port in METRICS.items()}
    actual = allowed(build(rendered))
    assert actual - expected == set(), "allowed but not designed"
    assert expected - actual == set(), "designed but blocked"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_is_denied_by_default(overlays: dict[str, Rendered], overlay: str):
    rendered = overlays[overlay]
    deny = rendered.get("NetworkPolicy", "default-deny-all")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_the_graph_model_sees_a_missing_deny_all(overlays: dict[str, Rendered]):
    """Guards the model: without deny-all and the per-app policies, everything is reachable."""
    rendered = overlays["dev"]
    graph = build(rendered)
    graph.policies = []
    assert ("storefront", "billing", GRPC["billing"]) in allowed(graph)
    assert ("storefront", "billing", GRPC["billing"]) not in allowed(build(rendered))


def test_the_designed_grpc_paths_are_the_peers_the_code_dials():
    """Each service's BACKORDER_<PEER>_GRPC_ADDR reads (from the code) are its allowed gRPC egress."""
    from tests.unit.deploy.code_facts import ALL_SERVICES, settings_read_by

    dialled = set()
    for service in ALL_SERVICES:
        for variable in settings_read_by(service).names:
            if variable.endswith("_GRPC_ADDR"):
                peer = variable.removeprefix("BACKORDER_").removesuffix("_GRPC_ADDR").lower().replace("_", "-")
                dialled.add((service.replace("_", "-"), peer, GRPC[peer]))
    designed = {(s, d, p) for s, d, p in design_paths() if d in GRPC and p == GRPC[d] and s in APPS}
    assert dialled == designed
