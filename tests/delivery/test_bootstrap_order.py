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
            "spec": {"project": "platform", "source": {"repoURL": repo, "path": path, "targetRevision": "main"},
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


def test_the_documented_bootstrap_keeps_the_install_keys_of_argocd_cm(stack, tmp_path):
    """docs/install.md applies dist/platform/bootstrap server-side with a field manager of its own: the keys
    Argo CD's install wrote into argocd-cm (with kubectl's default manager) stay. With the default manager
    they would be removed (shown first, on a copy)."""
    from kubechat_tools.paths import DIST

    plane = stack.plane
    rendered = DIST / "platform" / "bootstrap" / "configmap-argocd-cm.yaml"
    install_keys = {"resource.exclusions": "- apiGroups: [discovery.k8s.io]\n  kinds: [EndpointSlice]\n  clusters: ['*']\n",
                    "timeout.reconciliation": "180s"}

    def install(name: str) -> None:
        doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "argocd",
                                                                       "labels": {"app.kubernetes.io/part-of": "argocd"}},
               "data": install_keys}
        plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(doc))  # the install: default manager

    def bootstrap(name: str, *flags: str) -> dict:
        doc = yaml.safe_load(rendered.read_text())
        doc["metadata"]["name"] = name
        plane.kubectl("apply", "--server-side", *flags, "-f", "-", input=yaml.safe_dump(doc))
        return stack.get("configmaps", name)["data"]

    install("argocd-cm-default-manager")
    lost = bootstrap("argocd-cm-default-manager")
    assert "resource.exclusions" not in lost, "control: the default manager should have dropped the install's keys"

    install("argocd-cm-documented")
    kept = bootstrap("argocd-cm-documented", "--field-manager=kubechat-platform")
    assert all(kept.get(k) == v for k, v in install_keys.items()), kept.keys()
    assert "resource.customizations.health.argoproj.io_Application" in kept
    plane.kubectl("delete", "configmap", "argocd-cm-default-manager", "argocd-cm-documented", "-n", "argocd")
    docs = (DIST.parent / "docs" / "install.md").read_text()
    assert "kubectl apply --server-side --field-manager=kubechat-platform -k dist/platform/bootstrap" in docs
