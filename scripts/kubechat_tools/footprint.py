"""What an environment requests from the cluster at its minimum scale (the laptop-fit budget)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .manifests import pod_template

UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
         "m": 10**-3}


def quantity(value) -> float:
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    if not match or match.group(2) not in UNITS:
        raise ValueError(f"cannot read quantity {value!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


@dataclass
class Footprint:
    cpu_millis: int = 0
    memory_bytes: int = 0
    items: list = field(default_factory=list)


def min_replicas(doc: dict, docs: list[dict]) -> int:
    # An HPA scales the workload itself, or the Argo Rollout that took it over (workloadRef).
    owners = {(doc["kind"], doc["metadata"]["name"])}
    for rollout in docs:
        ref = (rollout.get("spec") or {}).get("workloadRef") if rollout["kind"] == "Rollout" else None
        if ref and ref.get("kind") == doc["kind"] and ref.get("name") == doc["metadata"]["name"]:
            owners.add(("Rollout", rollout["metadata"]["name"]))
    for hpa in docs:
        if hpa["kind"] == "HorizontalPodAutoscaler":
            ref = hpa["spec"]["scaleTargetRef"]
            if (ref["kind"], ref["name"]) in owners:
                return hpa["spec"].get("minReplicas", 1)
    if doc["kind"] in ("Job", "CronJob"):
        return 1
    return (doc.get("spec") or {}).get("replicas", doc.get("spec", {}).get("instances", 1))


def _operator_pods(doc: dict) -> tuple[int, dict] | None:
    """(pods, requests) of what an operator runs for a custom resource (CloudNativePG)."""
    if not doc.get("apiVersion", "").startswith("postgresql.cnpg.io/"):
        return None
    spec = doc.get("spec") or {}
    if doc["kind"] == "Cluster":
        return spec.get("instances", 1), (spec.get("resources") or {}).get("requests") or {}
    if doc["kind"] == "Pooler":
        containers = (((spec.get("template") or {}).get("spec") or {}).get("containers")) or [{}]
        return spec.get("instances", 1), (containers[0].get("resources") or {}).get("requests") or {}
    return None


def footprint(docs: list[dict]) -> Footprint:
    """Sum of container requests times minimum replicas, over every long-running workload and the
    pods operators run for our custom resources. Jobs and CronJobs count once (they do not run all
    the time, but they must fit when they do)."""
    total = Footprint()
    for doc in docs:
        operator = _operator_pods(doc)
        if operator:
            replicas, requests = operator
            cpu, memory = quantity(requests.get("cpu", 0)) * 1000, quantity(requests.get("memory", 0))
            total.cpu_millis += int(round(cpu * replicas))
            total.memory_bytes += int(memory * replicas)
            total.items.append((f"{doc['kind']}/{doc['metadata']['name']}", replicas, int(round(cpu)), int(memory)))
            continue
        template = pod_template(doc)
        if template is None:
            continue
        cpu = memory = 0.0
        for container in template["spec"].get("containers", []):
            requests = (container.get("resources") or {}).get("requests") or {}
            cpu += quantity(requests.get("cpu", 0)) * 1000
            memory += quantity(requests.get("memory", 0))
        replicas = min_replicas(doc, docs)
        total.cpu_millis += int(round(cpu * replicas))
        total.memory_bytes += int(memory * replicas)
        total.items.append((f"{doc['kind']}/{doc['metadata']['name']}", replicas, int(round(cpu)), int(memory)))
    return total
