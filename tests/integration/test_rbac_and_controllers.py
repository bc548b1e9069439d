"""GIVEN every environment applied to a real control plane, THEN the API server's own authorizer grants
exactly what docs/security.md says (SubjectAccessReviews), and with the controller-manager, scheduler and
kwok's fake nodes the Deployments reach their replicas and the Jobs create pods."""
from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest
import yaml

from kubechat_tools.manifests import load_all_text
from kubechat_tools.paths import ENVIRONMENTS, ROOT

pytestmark = pytest.mark.integration


def allowed(cluster, env: str, service_account: str, verb: str, resource: str, namespace: str = "",
            group: str = "", subresource: str = "") -> bool:
    """A SubjectAccessReview for a ServiceAccount, as the API server would authorize its requests."""
    ns = f"kubechat-{env}"
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
        "user": f"system:serviceaccount:{ns}:{service_account}",
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
        "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "subresource": subresource,
                               "namespace": namespace}}}
    result = cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review))
    return json.loads(result.stdout)["status"].get("allowed", False)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_api_reads_the_namespaces_its_environment_lists_and_nothing_secret(applied, cluster, env):
    own = f"kubechat-{env}"
    assert allowed(cluster, env, "kubechat-api", "watch", "pods", own)
    assert allowed(cluster, env, "kubechat-api", "get", "pods", own, subresource="log")
    assert allowed(cluster, env, "kubechat-api", "list", "configmaps", own)
    assert allowed(cluster, env, "kubechat-api", "list", "namespaces") and allowed(cluster, env, "kubechat-api", "list", "nodes")
    # Everywhere else only where the environment opts in to cluster-wide read (dev, the laptop).
    cluster_wide = env == "dev"
    assert allowed(cluster, env, "kubechat-api", "list", "pods") is cluster_wide  # all namespaces
    assert allowed(cluster, env, "kubechat-api", "watch", "pods", "kube-system") is cluster_wide
    assert allowed(cluster, env, "kubechat-api", "get", "pods", "default", subresource="log") is cluster_wide
    assert allowed(cluster, env, "kubechat-api", "list", "configmaps", "kube-system") is cluster_wide
    assert allowed(cluster, env, "kubechat-api", "list", "deployments", "default", group="apps") is cluster_wide
    for namespace in ("", "default", f"kubechat-{env}"):
        assert not allowed(cluster, env, "kubechat-api", "get", "secrets", namespace)
        assert not allowed(cluster, env, "kubechat-api", "list", "secrets", namespace)
    assert not allowed(cluster, env, "kubechat-api", "create", "rolebindings", "default", group="rbac.authorization.k8s.io")
    assert not allowed(cluster, env, "kubechat-api", "create", "clusterrolebindings", group="rbac.authorization.k8s.io")
    assert not allowed(cluster, env, "kubechat-api", "escalate", "clusterroles", group="rbac.authorization.k8s.io")
    assert not allowed(cluster, env, "kubechat-api", "bind", "clusterroles", group="rbac.authorization.k8s.io")
    assert not allowed(cluster, env, "kubechat-api", "impersonate", "users")
    assert not allowed(cluster, env, "kubechat-api", "create", "pods", "default", subresource="exec")
    assert not allowed(cluster, env, "kubechat-api", "delete", "pods", "default")  # write access is opt-in


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_web_front_end_can_do_nothing(applied, cluster, env):
    for verb, resource, group, namespace in [("get", "pods", "", f"kubechat-{env}"), ("list", "pods", "", ""),
                                             ("get", "configmaps", "", f"kubechat-{env}"),
                                             ("get", "secrets", "", f"kubechat-{env}"),
                                             ("list", "deployments", "apps", "default"),
                                             ("create", "pods", "", f"kubechat-{env}")]:
        assert not allowed(cluster, env, "kubechat-web", verb, resource, namespace, group=group), (verb, resource)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_grafana_reads_the_environments_configmaps_and_no_secret(applied, cluster, env):
    """#31.5 on the real API server: the environment's RoleBinding gives Grafana's ServiceAccount (the
    platform's, in monitoring) its ConfigMaps and nothing else."""
    ns = f"kubechat-{env}"

    def grafana_may(verb: str, resource: str, namespace: str) -> bool:
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
            "user": "system:serviceaccount:monitoring:kube-prometheus-stack-grafana",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:monitoring", "system:authenticated"],
            "resourceAttributes": {"verb": verb, "resource": resource, "namespace": namespace}}}
        result = cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review))
        return json.loads(result.stdout)["status"].get("allowed", False)

    assert grafana_may("list", "configmaps", ns) and grafana_may("watch", "configmaps", ns)
    assert not grafana_may("list", "secrets", ns) and not grafana_may("get", "secrets", ns)
    assert not grafana_may("list", "configmaps", "kube-system") and not grafana_may("list", "configmaps", "")


def test_the_opt_in_write_grant_works_only_in_its_namespace(applied, cluster, tmp_path):
    # GIVEN the dev overlay with the api-write-access component enabled for namespace team-a
    shutil.copytree(ROOT / "overlays", tmp_path / "overlays")
    (tmp_path / "dist").symlink_to(ROOT / "dist")
    kustomization = tmp_path / "overlays" / "dev" / "kustomization.yaml"
    data = yaml.safe_load(kustomization.read_text())
    data["components"].append("../components/api-write-access")
    data["patches"].append({"target": {"kind": "RoleBinding", "name": "kubechat-api-write"},
                            "patch": '[{"op": "replace", "path": "/metadata/namespace", "value": "team-a"}]'})
    kustomization.write_text(yaml.safe_dump(data))
    built = subprocess.run([str(ROOT / "bin" / "kustomize"), "build", str(kustomization.parent)],
                           capture_output=True, text=True, check=True)
    grant = [d for d in load_all_text(built.stdout) if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "kubechat-api-write"]
    assert [d["metadata"]["namespace"] for d in grant] == ["team-a"]
    # WHEN it is applied next to the namespaces team-a and team-b
    cluster.apply_docs([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("team-a", "team-b")])
    cluster.apply_docs(grant)
    try:
        # THEN the API may scale, restart and delete pods in team-a, and nowhere else
        assert allowed(cluster, "dev", "kubechat-api", "patch", "deployments", "team-a", group="apps")
        assert allowed(cluster, "dev", "kubechat-api", "update", "deployments", "team-a", group="apps", subresource="scale")
        assert allowed(cluster, "dev", "kubechat-api", "delete", "pods", "team-a")
        assert not allowed(cluster, "dev", "kubechat-api", "delete", "pods", "team-b")
        assert not allowed(cluster, "dev", "kubechat-api", "patch", "deployments", "team-b", group="apps")
        assert not allowed(cluster, "dev", "kubechat-api", "get", "secrets", "team-a")
        # and the other environments' API accounts gain nothing from dev's grant
        assert not allowed(cluster, "staging", "kubechat-api", "delete", "pods", "team-a")
        # #31.5: with its grant the API restarts and scales team-a's Deployment, but the rendered
        # api-write-limits policy refuses any other change of its pod template (a Secret mounted, another
        # ServiceAccount taken), on the real API server, as the API's ServiceAccount.
        cluster.apply_docs([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop", "namespace": "team-a"},
                             "spec": {"selector": {"matchLabels": {"app": "shop"}}, "template": {
                                 "metadata": {"labels": {"app": "shop"}},
                                 "spec": {"containers": [{"name": "shop", "image": "docker.io/library/nginx:1.29"}]}}}}])
        as_api = ["--as=system:serviceaccount:kubechat-dev:kubechat-api",
                  "--as-group=system:serviceaccounts", "--as-group=system:serviceaccounts:kubechat-dev",
                  "--as-group=system:authenticated", "-n", "team-a"]
        restart = cluster.kubectl(*as_api, "rollout", "restart", "deployment/shop", check=False)
        assert restart.returncode == 0, restart.stderr
        scale = cluster.kubectl(*as_api, "scale", "deployment/shop", "--replicas=2", check=False)
        assert scale.returncode == 0, scale.stderr
        changes = {
            "a Secret mounted": [{"op": "add", "path": "/spec/template/spec/volumes",
                                  "value": [{"name": "loot", "secret": {"secretName": "team-a-credentials"}}]}],
            "another ServiceAccount": [{"op": "add", "path": "/spec/template/spec/serviceAccountName", "value": "admin"}],
            "an image": [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "evil.example/x:1"}],
            "a template label": [{"op": "add", "path": "/spec/template/metadata/labels/extra", "value": "x"}],
            "another template annotation": [{"op": "add", "path": "/spec/template/metadata/annotations",
                                             "value": {"kubectl.kubernetes.io/restartedAt": "2026-12-07T00:00:00Z",
                                                       "sidecar.example/inject": "true"}}],
            # Outside the pod template: the garbage collector would delete it, a rollout would stop or change.
            "an owner that does not exist": [{"op": "add", "path": "/metadata/ownerReferences", "value": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "gone", "uid": "00000000-0000-0000-0000-000000000000"}]}],
            "a finalizer": [{"op": "add", "path": "/metadata/finalizers", "value": ["example.com/hold"]}],
            "paused": [{"op": "add", "path": "/spec/paused", "value": True}],
            "the strategy": [{"op": "replace", "path": "/spec/strategy", "value": {"type": "Recreate"}}],
        }
        for what, patch in changes.items():
            result = cluster.kubectl(*as_api, "patch", "deployment", "shop", "--type=json", "-p", json.dumps(patch), check=False)
            assert result.returncode != 0, f"admitted: {what}"
            assert "api-write-limits" in result.stderr and "may scale or restart a workload" in result.stderr, \
                (what, result.stderr)
        # Its owners are not concerned: the same change by the cluster's admin goes through.
        cluster.kubectl("-n", "team-a", "patch", "deployment", "shop", "--type=json", "-p",
                        json.dumps(changes["a template label"]))
    finally:
        cluster.kubectl("delete", "rolebinding", "-n", "team-a", "kubechat-api-write")
        cluster.kubectl("-n", "team-a", "delete", "deployment", "shop", "--ignore-not-found", check=False)


def wait_for(description: str, check, cluster, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = check()
        if ok:
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {description}: {last}\n"
                         f"{cluster.log_tail('kube-controller-manager', 15)}")


def get_json(cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deployments_reach_their_replicas_on_fake_nodes(applied, cluster, env):
    if not cluster.with_controllers:
        pytest.fail("the control plane runs without kube-controller-manager, kube-scheduler and kwok")
    ns = f"kubechat-{env}"
    deployments = get_json(cluster, "deployments", "-n", ns)["items"]
    assert deployments, f"{ns}: no Deployments"
    for deployment in deployments:
        name = deployment["metadata"]["name"]

        def ready():
            d = get_json(cluster, "deployment", name, "-n", ns)
            wanted, status = d["spec"].get("replicas", 1), d.get("status", {})
            pods = cluster.kubectl("get", "pods", "-n", ns, "-o", "wide").stdout
            return wanted >= 1 and status.get("readyReplicas", 0) == wanted, f"{status}\n{pods}"

        wait_for(f"{ns}/deployment/{name} ready", ready, cluster)


@pytest.mark.parametrize("job", ["kubechat-migrate", "kubechat-smoke-test"])
def test_the_migration_and_smoke_test_jobs_create_pods(applied, cluster, job):
    if not cluster.with_controllers:
        pytest.fail("the control plane runs without kube-controller-manager, kube-scheduler and kwok")
    ns = "kubechat-staging"

    def pods_created():
        pods = get_json(cluster, "pods", "-n", ns, "-l", f"job-name={job}")["items"]
        phases = [p.get("status", {}).get("phase") for p in pods]
        node_bound = all(p["spec"].get("nodeName", "").startswith("fake-node-") for p in pods)
        return bool(pods) and node_bound and all(phase in ("Running", "Succeeded") for phase in phases), phases

    wait_for(f"{ns}/job/{job} to create a pod that runs on a fake node", pods_created, cluster)
