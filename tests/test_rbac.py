"""Least privilege, evaluated from the rendered RBAC: what the API and web ServiceAccounts may do."""
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT
from kubechat_tools.manifests import load_all_text
from kubechat_tools.rbac import can

ENVS = {"dev": "kubechat-dev", "staging": "kubechat-staging", "production": "kubechat-production"}
READS = [("", "pods"), ("", "pods/log"), ("", "events"), ("", "services"), ("", "endpoints"), ("", "configmaps"),
         ("", "namespaces"), ("", "nodes"), ("apps", "deployments"), ("apps", "replicasets"),
         ("apps", "statefulsets"), ("apps", "daemonsets"), ("batch", "jobs"), ("batch", "cronjobs"),
         ("networking.k8s.io", "ingresses"), ("autoscaling", "horizontalpodautoscalers")]


@pytest.fixture(params=list(ENVS))
def env(request, rendered):
    return ENVS[request.param], rendered[request.param]


def test_api_reads_what_kubechat_inspects_in_any_namespace(env):
    ns, docs = env
    for group, resource in READS:
        for verb in ("get", "list", "watch"):
            assert can(docs, ns, "kubechat-api", verb, group, resource, None), f"{verb} {group}/{resource}"
            assert can(docs, ns, "kubechat-api", verb, group, resource, "team-a")


def test_api_never_reads_secrets_and_cannot_escalate(env):
    ns, docs = env
    for verb in ("get", "list", "watch"):
        assert not can(docs, ns, "kubechat-api", verb, "", "secrets", None)
        assert not can(docs, ns, "kubechat-api", verb, "", "secrets", ns)
    for verb, group, resource in [("create", "rbac.authorization.k8s.io", "rolebindings"),
                                  ("create", "rbac.authorization.k8s.io", "clusterrolebindings"),
                                  ("escalate", "rbac.authorization.k8s.io", "clusterroles"),
                                  ("bind", "rbac.authorization.k8s.io", "clusterroles"),
                                  ("impersonate", "", "serviceaccounts"),
                                  ("create", "", "serviceaccounts/token"),
                                  ("create", "", "pods/exec")]:
        assert not can(docs, ns, "kubechat-api", verb, group, resource, None), f"{verb} {resource}"


def test_write_actions_are_off_by_default(env):
    ns, docs = env
    assert not can(docs, ns, "kubechat-api", "patch", "apps", "deployments/scale", "team-a")
    assert not can(docs, ns, "kubechat-api", "delete", "", "pods", "team-a")
    assert not can(docs, ns, "kubechat-api", "delete", "", "pods", ns)


def test_web_can_do_nothing(env):
    ns, docs = env
    for group, resource in READS + [("", "secrets")]:
        assert not can(docs, ns, "kubechat-web", "get", group, resource, None)
        assert not can(docs, ns, "kubechat-web", "get", group, resource, ns)


def test_no_rule_uses_wildcards(env):
    _, docs = env
    for role in (d for d in docs if d["kind"] in ("Role", "ClusterRole")):
        for rule in role["rules"]:
            for key in ("verbs", "apiGroups", "resources"):
                assert "*" not in rule.get(key, []), f"{role['metadata']['name']}: wildcard in {key}"


def test_write_component_grants_writes_only_in_its_target_namespace(tmp_path):
    # GIVEN the dev overlay with the api-write-access component enabled for namespace team-a
    shutil.copytree(ROOT / "overlays", tmp_path / "overlays")
    (tmp_path / "dist").symlink_to(ROOT / "dist")
    kustomization = tmp_path / "overlays" / "dev" / "kustomization.yaml"
    data = yaml.safe_load(kustomization.read_text())
    data["components"].append("../components/api-write-access")
    data["patches"].append({"target": {"kind": "RoleBinding", "name": "kubechat-api-write"},
                            "patch": '[{"op": "replace", "path": "/metadata/namespace", "value": "team-a"}]'})
    kustomization.write_text(yaml.safe_dump(data))
    # WHEN it is built
    result = subprocess.run([str(ROOT / "bin" / "kustomize"), "build", str(kustomization.parent)],
                            capture_output=True, text=True, check=True)
    docs = load_all_text(result.stdout)
    # THEN the API may scale, restart and delete pods in team-a, and nowhere else
    ns = "kubechat-dev"
    assert can(docs, ns, "kubechat-api", "patch", "apps", "deployments/scale", "team-a")
    assert can(docs, ns, "kubechat-api", "patch", "apps", "deployments", "team-a")
    assert can(docs, ns, "kubechat-api", "delete", "", "pods", "team-a")
    assert not can(docs, ns, "kubechat-api", "delete", "", "pods", "team-b")
    assert not can(docs, ns, "kubechat-api", "delete", "", "pods", None)
    assert not can(docs, ns, "kubechat-api", "get", "", "secrets", "team-a")
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    assert binding["roleRef"]["name"] == "kubechat-dev-api-write"
