"""16.5 and 16.11 with the real Argo CD and this project's argocd-cm: an app of apps (the platform root's
pattern) creates its second wave only after the first child Application is Healthy (the Application
health check), and a child whose CloudNativePG Cluster has no status yet is Progressing, not a sync
error (the Cluster health check): the child syncs through it."""
from __future__ import annotations

import time

import pytest
import yaml

pytestmark = pytest.mark.delivery

NAMESPACE = "bootstrap-order"


def application(name: str, wave: int, path: str, repo: str) -> dict:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd", "annotations": {"argocd.argoproj.io/sync-wave": str(wave)}},
            "spec": {"project": "default", "source": {"repoURL": repo, "path": path, "targetRevision": "main"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": NAMESPACE},
                     "syncPolicy": {"automated": {"prune": True}, "syncOptions": ["CreateNamespace=true"]}}}


def test_child_applications_wait_for_the_previous_wave_to_be_healthy(stack, delivery):
    work, repo = stack.remote.work, stack.remote.url
    files = {
        "bootstrap-test/parent/children.yaml": [application("order-operators", -1, "bootstrap-test/operators", repo),
                                                application("order-workloads", 0, "bootstrap-test/workloads", repo)],
        # Stands for an operator's piece: a Cluster, which has no status until "its operator" reconciles.
        "bootstrap-test/operators/cluster.yaml": [{
            "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "metadata": {"name": "order-db", "namespace": NAMESPACE},
            "spec": {"instances": 1, "storage": {"size": "1Gi"}}}],
        "bootstrap-test/workloads/configmap.yaml": [{
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "order-second", "namespace": NAMESPACE},
            "data": {"wave": "0"}}],
    }
    for relative, docs in files.items():
        (work / relative).parent.mkdir(parents=True, exist_ok=True)
        (work / relative).write_text(yaml.safe_dump_all(docs))
    stack.remote._commit("bootstrap order fixture")
    parent = application("order-root", 0, "bootstrap-test/parent", repo)
    parent["metadata"]["namespace"] = "argocd"
    parent["spec"]["destination"]["namespace"] = "argocd"
    stack.plane.apply_docs([parent])

    def healthy(app: dict) -> bool:
        status = app.get("status", {})
        return status.get("health", {}).get("status") == "Healthy" and status.get("sync", {}).get("status") == "Synced"

    stack.wait_app("order-root", healthy, 240, "Synced and Healthy")
    operators = stack.wait_app("order-operators", healthy, 60, "Synced and Healthy")
    assert (operators["status"].get("operationState") or {}).get("phase") == "Succeeded", operators["status"]
    assert not [c for c in operators["status"].get("conditions") or [] if "Error" in c["type"]], \
        "a Cluster without status broke the child's sync"
    workloads = stack.get("applications.argoproj.io", "order-workloads")
    cluster = stack.get("clusters.postgresql.cnpg.io", "order-db", NAMESPACE)
    ready = next(c["lastTransitionTime"] for c in cluster["status"]["conditions"] if c["type"] == "Ready")
    assert workloads["metadata"]["creationTimestamp"] >= ready, \
        "the second wave's Application was created before the first wave's was Healthy"
    for name in ("order-root", "order-operators", "order-workloads"):
        stack.plane.kubectl("delete", "applications.argoproj.io", name, "-n", "argocd", "--wait=false")
    time.sleep(1)
