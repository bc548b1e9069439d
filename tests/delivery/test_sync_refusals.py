"""#31.1 with the real Argo CD: a commit cannot make delivery escalate. (Named to run after test_first_sync:
these tests sync staging again.) (constructs/kubechat_deploy/delivery/access.py).

Two layers. staging's project permits only the cluster-scoped objects its overlay renders, by name: a commit
that adds a ClusterRoleBinding to cluster-admin, or the Namespace kube-system, fails before anything is
applied (an ordinary object of the same commit stays absent). And staging's Application syncs as
`system:serviceaccount:argocd:kubechat-staging-deployer` (sync impersonation, argo-cd v3.5.1 controller/sync.go,
util/settings/impersonation.go) with the RBAC of dist/platform/deployers as rendered: a commit that widens one
of the environment's own, permitted ClusterRoles to everything is refused by the API server (Kubernetes' RBAC
escalation check: the deployer does not hold what it would grant), at that object's wave, so nothing of the
later waves is applied. After each, the commit under test syncs again (every other test of this tier is an
ordinary release synced the same way, as the deployer)."""
from __future__ import annotations

import shutil

import pytest
import yaml

from testbed.argocd import synced_healthy

from .conftest import publish_under_test

pytestmark = pytest.mark.delivery

ENV = "staging"
NAMESPACE = f"kubechat-{ENV}"
DEPLOYER = f"system:serviceaccount:argocd:kubechat-{ENV}-deployer"
PROBE = "kubechat-access-probe"


def commit_with(remote, extra: list[dict], message: str, patches: list[dict] | None = None) -> str:
    """overlays/staging as released, plus `extra` and `patches` (outside its transformers: a wrapper
    kustomization), and an ordinary ConfigMap (wave 0) that must not appear."""
    overlays = remote.work / "overlays"
    shutil.rmtree(overlays / f"{ENV}-release", ignore_errors=True)
    (overlays / ENV).rename(overlays / f"{ENV}-release")
    (overlays / ENV).mkdir()
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": PROBE, "namespace": NAMESPACE},
             "data": {"applied": "yes"}}
    (overlays / ENV / "extra.yaml").write_text(yaml.safe_dump_all([*extra, probe]))
    (overlays / ENV / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [f"../{ENV}-release", "extra.yaml"], **({"patches": patches} if patches else {})}))
    return remote._commit(message)


def failed_at(revision: str):
    def check(app: dict) -> bool:
        op = app.get("status", {}).get("operationState") or {}
        at = op.get("syncResult", {}).get("revision") == revision or \
            op.get("operation", {}).get("sync", {}).get("revision") == revision
        return at and (op.get("phase") in ("Failed", "Error") or op.get("retryCount", 0) >= 1)
    return check


def messages(app: dict) -> str:
    op = app.get("status", {}).get("operationState") or {}
    results = op.get("syncResult", {}).get("resources") or []
    return "\n".join([op.get("message", "")] + [f"{r.get('kind')}/{r.get('name')}: {r.get('message', '')}" for r in results])


@pytest.fixture
def staging_app(stack, delivery):
    app = next(a for a, env in delivery.items() if env == ENV)
    yield app
    good = publish_under_test(stack.remote, "the commit under test again")
    stack.refresh(app)
    stack.wait_app(app, synced_healthy(good), 420, f"Synced and Healthy at {good[:8]}")


def test_a_commit_binding_cluster_admin_is_refused_by_the_project_and_applies_nothing(stack, staging_app):
    name = f"kubechat-{ENV}-escalation-probe"
    bad = commit_with(stack.remote, [{
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "kubechat-api", "namespace": NAMESPACE}]}],
        "a release that binds cluster-admin")
    stack.refresh(staging_app)
    app = stack.wait_app(staging_app, failed_at(bad), 300, f"failed at {bad[:8]}")
    text = messages(app)
    assert name in text and "not permitted in project" in text, text
    assert stack.get("clusterrolebindings.rbac.authorization.k8s.io", name, None) is None
    assert stack.get("configmaps", PROBE, NAMESPACE) is None, "an object of the refused commit was applied"


def test_a_commit_widening_a_permitted_role_is_refused_by_the_api_server_as_the_deployer(stack, staging_app):
    role = f"kubechat-{ENV}-api-read-cluster"  # bound cluster-wide to the API's ServiceAccount
    before = stack.get("clusterroles.rbac.authorization.k8s.io", role, None)["rules"]
    bad = commit_with(stack.remote, [], "a release that gives the API everything", patches=[{
        "target": {"kind": "ClusterRole", "name": role},
        "patch": yaml.safe_dump([{"op": "add", "path": "/rules/-",
                                  "value": {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}}])}])
    stack.refresh(staging_app)
    app = stack.wait_app(staging_app, failed_at(bad), 300, f"failed at {bad[:8]}")
    text = messages(app)
    assert DEPLOYER in text and "not currently held" in text, f"not refused by the API server as the deployer:\n{text}"
    assert stack.get("clusterroles.rbac.authorization.k8s.io", role, None)["rules"] == before
    assert stack.get("configmaps", PROBE, NAMESPACE) is None, "an object of a later wave was applied"


def test_a_commit_adding_the_kube_system_namespace_is_refused_by_the_project_and_applies_nothing(stack, staging_app):
    bad = commit_with(stack.remote, [{"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": "kube-system", "labels": {"kubechat.io/adopted": "yes"}}}],
                      "a release that adopts kube-system")
    stack.refresh(staging_app)
    app = stack.wait_app(staging_app, failed_at(bad), 300, f"failed at {bad[:8]}")
    text = messages(app)
    assert "kube-system" in text and "not permitted in project" in text, text
    labels = stack.get("namespaces", "kube-system", None)["metadata"].get("labels", {})
    assert "kubechat.io/adopted" not in labels
    assert stack.get("configmaps", PROBE, NAMESPACE) is None, "an object of the refused commit was applied"


def test_a_commit_loosening_its_namespaces_pod_security_is_refused_by_the_deployers_admission_policy(stack, staging_app):
    """A privileged pod in its own namespace would be root on a node: the environment's Namespace must stay
    Pod Security restricted (kubechat-staging-deployer-scope, dist/platform/deployers)."""
    bad = commit_with(stack.remote, [], "a release that allows privileged pods", patches=[{
        "target": {"kind": "Namespace", "name": NAMESPACE},
        "patch": yaml.safe_dump([{"op": "replace", "path": "/metadata/labels/pod-security.kubernetes.io~1enforce",
                                  "value": "privileged"}])}])
    stack.refresh(staging_app)
    app = stack.wait_app(staging_app, failed_at(bad), 300, f"failed at {bad[:8]}")
    text = messages(app)
    assert f"kubechat-{ENV}-deployer-scope" in text and "Pod Security restricted" in text, text
    labels = stack.get("namespaces", NAMESPACE, None)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert stack.get("configmaps", PROBE, NAMESPACE) is None, "an object of a later wave was applied"
