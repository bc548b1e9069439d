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
         ("apps", "deployments"), ("apps", "replicasets"),
         ("apps", "statefulsets"), ("apps", "daemonsets"), ("batch", "jobs"), ("batch", "cronjobs"),
         ("networking.k8s.io", "ingresses"), ("autoscaling", "horizontalpodautoscalers")]
"""Namespaced: granted in the namespaces an environment reads."""
CLUSTER_READS = [("", "namespaces"), ("", "nodes")]


@pytest.fixture(params=list(ENVS))
def env(request, rendered):
    return ENVS[request.param], rendered[request.param]


def test_api_reads_its_own_namespace_and_the_cluster_scoped_inventory(env):
    ns, docs = env
    for verb in ("get", "list", "watch"):
        for group, resource in READS:
            assert can(docs, ns, "kubechat-api", verb, group, resource, ns), f"{verb} {group}/{resource}"
        for group, resource in CLUSTER_READS:
            assert can(docs, ns, "kubechat-api", verb, group, resource, None), f"{verb} {group}/{resource}"


@pytest.mark.parametrize("name", ["staging", "production"])
def test_shared_environments_read_no_other_namespace_unless_listed(rendered, name):
    ns, docs = ENVS[name], rendered[name]
    for group, resource in READS:
        assert not can(docs, ns, "kubechat-api", "get", group, resource, "team-a"), f"{group}/{resource}"
        assert not can(docs, ns, "kubechat-api", "list", group, resource, None), f"{group}/{resource} cluster-wide"


def test_the_laptop_environment_opts_in_to_cluster_wide_read(rendered):
    ns, docs = ENVS["dev"], rendered["dev"]
    for group, resource in READS:
        assert can(docs, ns, "kubechat-api", "list", group, resource, None)
        assert can(docs, ns, "kubechat-api", "get", group, resource, "team-a")


def test_a_listed_namespace_is_read_and_no_other(tmp_path):
    """docs/security.md, "Which namespaces the API reads": the documented RoleBinding, in a copy of the
    staging overlay, grants reads in team-a only."""
    shutil.copytree(ROOT / "overlays", tmp_path / "overlays")
    (tmp_path / "dist").symlink_to(ROOT / "dist")
    overlay = tmp_path / "overlays" / "staging"
    text = (ROOT / "docs" / "security.md").read_text()
    snippet = text.split("Which namespaces the API reads", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    bindings = [d for d in yaml.safe_load_all("\n".join(line[2:] for line in snippet.splitlines())) if d]
    assert len(bindings) == 1 and bindings[0]["metadata"]["namespace"] == "team-a", bindings
    (overlay / "api-read-access.yaml").write_text(yaml.safe_dump(bindings[0]))
    data = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    data["resources"].append("api-read-access.yaml")
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(data))
    result = subprocess.run([str(ROOT / "bin" / "kustomize"), "build", str(overlay)], capture_output=True, text=True,
                            check=True)
    docs = load_all_text(result.stdout)
    ns = "kubechat-staging"
    for group, resource in READS:
        assert can(docs, ns, "kubechat-api", "list", group, resource, "team-a")
        assert not can(docs, ns, "kubechat-api", "list", group, resource, "team-b")
        assert not can(docs, ns, "kubechat-api", "list", group, resource, None)
    assert not can(docs, ns, "kubechat-api", "get", "", "secrets", "team-a")


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
    for group, resource in READS + CLUSTER_READS + [("", "secrets")]:
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
    binding = next(d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "kubechat-api-write")
    assert binding["roleRef"]["name"] == "kubechat-dev-api-write"


def test_grafana_reads_the_environments_dashboards_and_no_secret(env):
    """#31.5: Grafana's dashboard sidecar gets this environment's ConfigMaps through the Role the environment
    binds to Grafana's ServiceAccount (in the platform's namespace), and no Secret anywhere."""
    ns, docs = env
    grafana = ("monitoring", "kube-prometheus-stack-grafana")
    for verb in ("get", "list", "watch"):
        assert can(docs, *grafana, verb, "", "configmaps", ns)
        assert not can(docs, *grafana, verb, "", "secrets", ns)
    assert not can(docs, *grafana, "list", "", "configmaps", None)
    assert not can(docs, *grafana, "list", "", "configmaps", "kube-system")
    assert not can(docs, *grafana, "create", "", "configmaps", ns)


def test_the_platform_gives_grafana_no_cluster_wide_role():
    """The grafana chart 12.10.4 (kube-prometheus-stack 88.3.0's dependency, grafana-community/helm-charts at
    tag grafana-12.10.4) renders its ClusterRole, with get/list/watch of configmaps AND secrets, unless
    `rbac.namespaced` is set (templates/clusterrole.yaml: `or (not .Values.rbac.namespaced)
    .Values.rbac.extraClusterRoleRules`), and binds `rbac.useExistingRole` in its own namespace
    (templates/rolebinding.yaml), a Role the platform creates there through `extraObjects`
    (templates/extra-manifests.yaml) with ConfigMaps only. Each sidecar's RESOURCE is `configmap`
    (templates/_pod.tpl), so none lists Secrets it may not read."""
    app = yaml.safe_load((ROOT / "dist" / "platform" / "prerequisites" /
                          "application-platform-kube-prometheus-stack.yaml").read_text())
    grafana = app["spec"]["source"]["helm"]["valuesObject"]["grafana"]
    assert grafana["rbac"]["namespaced"] is True and not grafana["rbac"].get("extraClusterRoleRules")
    (role,) = [o for o in grafana["extraObjects"] if o["kind"] == "Role"]
    assert role["metadata"]["name"] == grafana["rbac"]["useExistingRole"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]
    sidecar = grafana["sidecar"]
    assert sidecar["dashboards"]["resource"] == "configmap" and sidecar["datasources"]["resource"] == "configmap"
    assert sidecar["dashboards"]["searchNamespace"] == ["monitoring", "kubechat-dev", "kubechat-staging",
                                                        "kubechat-production"]
    # The environments bind the same Role name in their namespaces.
    binding = yaml.safe_load((ROOT / "dist" / "rendered" / "production" /
                              "rolebinding-kubechat-grafana-dashboards.yaml").read_text())
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
