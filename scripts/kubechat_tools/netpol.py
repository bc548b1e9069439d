"""Evaluate Kubernetes NetworkPolicies the way a conforming CNI does, for tests and docs:
may traffic from one endpoint reach another on a port?

A pod's egress is open unless some policy with policyType Egress selects it; then some egress rule
of those policies must admit the destination and port. Ingress likewise at the destination.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .manifests import _selects, pod_template

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    """A pod (labels, namespace, named ports) or, with ip set, an address outside the cluster's pods."""

    name: str
    namespace: str = ""
    labels: dict = field(default_factory=dict)
    ports: dict = field(default_factory=dict)  # port name -> number
    ip: str | None = None
    namespace_labels: dict = field(default_factory=dict)

    def ns_labels(self) -> dict:
        return {NAMESPACE_NAME_LABEL: self.namespace, **self.namespace_labels}


# Pods that operators create from custom resources: name suffix -> (labels, named ports), from the
# operator's code (CloudNativePG v1.30.0): instances (pkg/specs/pods.go: cnpg.io/podRole=instance), the
# Job pods of pkg/specs/jobs.go CreatePrimaryJob (cnpg.io/jobRole: import, initdb, pgbasebackup,
# full-recovery, join, snapshot-recovery) and of pkg/reconciler/majorupgrade/job.go (major-upgrade), and
# the pooler's (pkg/specs/pgbouncer/deployments.go: cnpg.io/poolerName, cnpg.io/podRole=pooler).
CNPG_JOB_ROLES = ("import", "initdb", "pgbasebackup", "full-recovery", "join", "snapshot-recovery", "major-upgrade")
OPERATOR_PODS = {
    "Cluster": lambda d: {
        "": ({"cnpg.io/cluster": d["metadata"]["name"], "cnpg.io/podRole": "instance"},
             {"postgresql": 5432, "metrics": 9187, "status": 8000}),
        **{f"-{role}": ({"cnpg.io/cluster": d["metadata"]["name"], "cnpg.io/jobRole": role,
                         "cnpg.io/instanceName": f"{d['metadata']['name']}-1"}, {}) for role in CNPG_JOB_ROLES}},
    "Pooler": lambda d: {"": ({"cnpg.io/poolerName": d["metadata"]["name"], "cnpg.io/podRole": "pooler"},
                              {"pgbouncer": 5432, "metrics": 9127})},
}


def pods_of(docs: list[dict]) -> dict[str, Endpoint]:
    """One Endpoint per workload of a render (operator-made pods included), keyed by object name."""
    pods = {}
    for doc in docs:
        if doc["kind"] in OPERATOR_PODS and doc["apiVersion"].startswith("postgresql.cnpg.io/"):
            for suffix, (labels, ports) in OPERATOR_PODS[doc["kind"]](doc).items():
                name = doc["metadata"]["name"] + suffix
                pods[name] = Endpoint(name=name, namespace=doc["metadata"]["namespace"], labels=labels, ports=ports)
        template = pod_template(doc)
        if template is None:
            continue
        ports = {}
        for container in template["spec"].get("containers", []):
            for port in container.get("ports", []) or []:
                if "name" in port:
                    ports[port["name"]] = port["containerPort"]
        pods[doc["metadata"]["name"]] = Endpoint(name=doc["metadata"]["name"], namespace=doc["metadata"]["namespace"],
                                                 labels=(template.get("metadata") or {}).get("labels") or {},
                                                 ports=ports)
    return pods


def _peer_matches(peer: dict, policy_ns: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        if other.ip is None:
            return False
        block = peer["ipBlock"]
        address = ipaddress.ip_address(other.ip)
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except", []))
    if other.ip is not None:
        return False
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], other.ns_labels()):
            return False
    elif other.namespace != policy_ns:
        return False
    if "podSelector" in peer:
        return _selects(peer["podSelector"], other.labels)
    return True


def _port_matches(rule_ports: list[dict] | None, target: Endpoint, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        value = p.get("port")
        if value is None:
            return True
        number = target.ports.get(value) if isinstance(value, str) else value
        end = p.get("endPort", number)
        if number is not None and number <= port <= end:
            return True
    return False


def _direction_allows(policies: list[dict], subject: Endpoint, other: Endpoint, port_owner: Endpoint,
                      port: int, protocol: str, direction: str) -> bool:
    if subject.ip is not None:
        return True  # outside the cluster's pods: no policy governs it
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    governing = [p for p in policies if p["metadata"].get("namespace") == subject.namespace
                 and direction in p["spec"].get("policyTypes", ["Ingress"])
                 and _selects(p["spec"].get("podSelector", {}), subject.labels)]
    if not governing:
        return True
    for policy in governing:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(peer, policy["metadata"]["namespace"], other) for peer in peers)
            if peer_ok and _port_matches(rule.get("ports"), port_owner, port, protocol):
                return True
    return False


def allowed(docs: list[dict], source: Endpoint, destination: Endpoint, port: int | str, protocol: str = "TCP") -> bool:
    """Whether `source` may open a connection to `destination` on `port` (a number or a named port)."""
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    number = destination.ports[port] if isinstance(port, str) else port
    return (_direction_allows(policies, source, destination, destination, number, protocol, "Egress")
            and _direction_allows(policies, destination, source, destination, number, protocol, "Ingress"))
