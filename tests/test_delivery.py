"""Delivery with Argo CD: the ApplicationSet and AppProject, hooks and their order, and the
post-sync smoke test script run against real HTTP(S) servers."""
from __future__ import annotations

import fnmatch
import http.server
import os
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import ROOT, find
from kubechat_tools.gates import schema_gate
from kubechat_tools.manifests import load_dir
from postgres import free_port

PLATFORM = ROOT / "dist" / "platform" / "delivery"
WAVE, HOOK = "argocd.argoproj.io/sync-wave", "argocd.argoproj.io/hook"


def test_delivery_objects_are_schema_valid():
    assert schema_gate([PLATFORM]) == []


def test_the_application_set_targets_labelled_clusters_and_never_the_laptop_environment(rendered):
    """The cluster generator selects clusters labelled staging or production; each Application takes
    its overlay, namespace and server from its cluster. (What the real applicationset-controller
    generates from it is tests/delivery/test_applicationset.py.)"""
    spec = next(d for d in load_dir(PLATFORM) if d["kind"] == "ApplicationSet")["spec"]
    assert spec["goTemplate"] is True and "missingkey=error" in spec["goTemplateOptions"]
    (generator,) = spec["generators"]
    assert generator["clusters"]["selector"] == {"matchExpressions": [
        {"key": "kubechat.io/environment", "operator": "In", "values": ["staging", "production"]}]}
    env = '{{index .metadata.labels "kubechat.io/environment"}}'
    template = spec["template"]
    assert template["metadata"]["name"] == f"kubechat-{env}-{{{{.nameNormalized}}}}"
    assert template["spec"]["source"]["path"] == f"overlays/{env}"
    # staging follows main, every other environment its promotion branch (the real applicationset-controller
    # renders it: tests/delivery/test_promotion.py)
    assert template["spec"]["source"]["targetRevision"] == (
        '{{ if eq (index .metadata.labels "kubechat.io/environment") "staging" }}main{{ else }}promoted/' + env + "{{ end }}")
    assert template["spec"]["destination"] == {"server": "{{.server}}", "namespace": f"kubechat-{env}"}
    for environment in ("staging", "production"):
        assert any(d["kind"] == "Namespace" and d["metadata"]["name"] == f"kubechat-{environment}"
                   for d in rendered[environment])
    policy = template["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True} and policy["retry"]["backoff"]["factor"] == 2
    assert policy["retry"]["refresh"] is True
    assert "ServerSideApply=true" in policy["syncOptions"] and "RespectIgnoreDifferences=true" in policy["syncOptions"]
    annotations = template["metadata"]["annotations"]
    assert {"notifications.argoproj.io/subscribe.on-sync-failed.kubechat-deployments",
            "notifications.argoproj.io/subscribe.on-health-degraded.kubechat-deployments"} <= annotations.keys()
    assert annotations["argocd.argoproj.io/compare-options"] == "ServerSideDiff=true"


def api_group(doc: dict) -> str:
    return doc["apiVersion"].rsplit("/", 1)[0] if "/" in doc["apiVersion"] else ""


PLURALS = {"Namespace": "namespaces", "ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings",
           "ClusterIssuer": "clusterissuers", "ClusterPolicy": "clusterpolicies",
           "ValidatingAdmissionPolicy": "validatingadmissionpolicies",
           "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings"}
"""The resources RBAC names (the API server's discovery; the delivery tier applies the roles for real)."""


def allowed_by(rules: list[dict], group: str, kind: str, name: str) -> bool:
    """Argo CD v3.5.1 pkg/apis/application/v1alpha1/app_project_types.go IsGroupKindNamePermitted /
    isNamedResourceInList: group and kind match, and the name matches the item's glob (empty: any)."""
    return any(fnmatch.fnmatchcase(group, r["group"]) and fnmatch.fnmatchcase(kind, r["kind"]) and
               (not r.get("name") or fnmatch.fnmatchcase(name, r["name"])) for r in rules)


def test_each_environment_has_its_own_project_bounded_to_its_namespace_and_its_named_objects(rendered):
    """Every cluster-scoped object a delivered environment renders is allowed by its own project and named in
    its deployer's RBAC (dist/platform/deployers), and nothing of another environment is; the deployer may
    write no cluster-scoped object that no environment renders."""
    projects = {d["metadata"]["name"]: d["spec"] for d in load_dir(PLATFORM) if d["kind"] == "AppProject"}
    assert set(projects) == {"kubechat-staging", "kubechat-production"}
    roles = {d["metadata"]["name"]: d for d in load_dir(ROOT / "dist" / "platform" / "deployers") if d["kind"] == "ClusterRole"}
    named = set()
    for env in ("staging", "production"):
        project, role = projects[f"kubechat-{env}"], roles[f"kubechat-{env}-deployer"]
        assert project["destinations"] == [{"namespace": f"kubechat-{env}", "server": "*"}]
        assert project["destinationServiceAccounts"] == [{"server": "*", "namespace": f"kubechat-{env}",
                                                          "defaultServiceAccount": f"argocd:kubechat-{env}-deployer"}]
        writable = {(r["apiGroups"][0], r["resources"][0], n) for r in role["rules"] if "patch" in r["verbs"]
                    for n in r.get("resourceNames", [])}
        # Every write is limited by name, but `create` (RBAC cannot name what does not exist yet; the
        # deployers' delivery-scope admission policy refuses other names, tests/delivery/test_sync_refusals.py).
        assert all(r.get("resourceNames") for r in role["rules"] if set(r["verbs"]) & {"patch", "update", "delete",
                                                                                        "escalate", "bind"})
        assert [r["verbs"] for r in role["rules"] if not r.get("resourceNames")] == \
            [["create"], ["get", "list", "watch"], ["get", "list", "watch"]]
        for doc in rendered[env]:
            if "namespace" in doc["metadata"]:
                continue
            name, group = doc["metadata"]["name"], api_group(doc)
            assert allowed_by(project["clusterResourceWhitelist"], group, doc["kind"], name), (env, doc["kind"], name)
            resource = PLURALS[doc["kind"]]
            assert (group, resource, name) in writable, f"{env}: the deployer may not write {doc['kind']} {name}: " \
                "add its name to CLUSTER_SCOPED in constructs/kubechat_deploy/delivery/access.py"
            named.add((group, resource, name))
            other = "production" if env == "staging" else "staging"
            assert not allowed_by(projects[f"kubechat-{other}"]["clusterResourceWhitelist"], group, doc["kind"], name)
    stale = {w for role in roles.values() for r in role["rules"] if "patch" in r["verbs"]
             for w in [(r["apiGroups"][0], r["resources"][0], n) for n in r.get("resourceNames", [])]} - named
    # image-digests is production's only (components/image-digests): staging's name for it is allowed, unused.
    assert {n for _, _, n in stale} <= {"kubechat-staging-image-digests"}, stale
    window = projects["kubechat-production"]["syncWindows"][0]
    assert window["applications"] == ["kubechat-production-*"] and window["kind"] == "allow" and window["manualSync"]
    assert window["syncOverrun"], "a sync running when the window ends would stop half-applied"
    # What docs/upgrade.md and docs/troubleshooting.md tell people: Mon-Thu 08:00-17:00 UTC (the delivery tier
    # holds the window open or closed at will, tests/delivery/test_sync_window.py, so this is its only check).
    assert (window["schedule"], window["duration"], window["timeZone"]) == ("0 8 * * 1-4", "9h", "UTC")
    assert "syncWindows" not in projects["kubechat-staging"]
    template = next(d for d in load_dir(PLATFORM) if d["kind"] == "ApplicationSet")["spec"]["template"]
    assert template["spec"]["project"] == 'kubechat-{{index .metadata.labels "kubechat.io/environment"}}'


def test_every_platform_application_is_in_the_platform_project_which_names_its_repositories_and_identity():
    platform_project = next(d for d in load_dir(ROOT / "dist" / "platform" / "argocd") if d["kind"] == "AppProject")
    spec = platform_project["spec"]
    assert platform_project["metadata"]["name"] == "platform"
    cm = next(d for d in load_dir(ROOT / "dist" / "platform" / "argocd") if d["kind"] == "ConfigMap"
              and d["metadata"]["name"] == "argocd-cm")
    assert cm["data"]["application.sync.impersonation.enabled"] == "true"
    assert spec["destinationServiceAccounts"] == [{"server": "https://kubernetes.default.svc", "namespace": "*",
                                                   "defaultServiceAccount": "argocd:kubechat-platform-deployer"}]
    apps = [d for name in ("bootstrap", "root", "prerequisites", "logging")
            for d in load_dir(ROOT / "dist" / "platform" / name) if d["kind"] == "Application"]
    assert len(apps) >= 15
    for app in apps:
        assert app["spec"]["project"] == "platform", app["metadata"]["name"]
        for source in [app["spec"].get("source")] + (app["spec"].get("sources") or []):
            if source:
                assert source["repoURL"] in spec["sourceRepos"], (app["metadata"]["name"], source["repoURL"])
        assert app["spec"]["destination"]["server"] == "https://kubernetes.default.svc"


@pytest.mark.parametrize("env", ["dev", "staging", "production"])
def test_every_hook_is_replaced_on_the_next_sync_and_the_order_is_database_migration_api_smoke_test(rendered, env):
    docs = rendered[env]
    hooks = [d for d in docs if HOOK in (d["metadata"].get("annotations") or {})]
    assert hooks and all(d["metadata"]["annotations"].get("argocd.argoproj.io/hook-delete-policy") for d in hooks)
    wave = lambda kind, name: int(find(docs, kind, name)["metadata"]["annotations"].get(WAVE, "0"))  # noqa: E731
    assert wave("Cluster", "kubechat-db") < wave("Job", "kubechat-migrate") < wave("Deployment", "kubechat-api")
    if env != "dev":
        # The Rollouts controller needs the Deployment its workloadRef names; the HPA needs the Rollout.
        for name in ("kubechat-api", "kubechat-web"):
            assert wave("Deployment", name) < wave("Rollout", name) < wave("HorizontalPodAutoscaler", name)
    assert find(docs, "Job", "kubechat-smoke-test")["metadata"]["annotations"][HOOK] == "PostSync"


# --- the smoke test script against real servers ----------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    statuses: dict[str, int] = {}

    def do_GET(self):  # noqa: N802
        status = self.statuses.get(self.path, 404)
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"not ready")

    def log_message(self, *args):
        pass


def serve(statuses: dict[str, int], tls: tuple[Path, Path] | None = None) -> tuple[str, http.server.HTTPServer]:
    handler = type("H", (Handler,), {"statuses": statuses})
    server = http.server.HTTPServer(("127.0.0.1", free_port()), handler)
    scheme = "http"
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"{scheme}://127.0.0.1:{server.server_port}", server


def smoke(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(ROOT / "jobs" / "smoke_test.sh")], env={**os.environ, "SMOKE_RETRIES": "1", **env},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.servers
def test_smoke_test_passes_when_api_and_web_answer():
    api, s1 = serve({"/health/ready": 200})
    web, s2 = serve({"/api/health": 200})
    try:
        result = smoke({"API_URL": api, "WEB_URL": web, "PUBLIC_URL": ""})
    finally:
        s1.shutdown(), s2.shutdown()
    assert result.returncode == 0, result.stderr
    assert "ok: API ready: database and cache reachable" in result.stdout and "smoke-test: passed" in result.stdout


@pytest.mark.servers
def test_smoke_test_fails_when_the_api_cannot_reach_its_database():
    api, s1 = serve({"/health/ready": 503})
    web, s2 = serve({"/api/health": 200})
    try:
        result = smoke({"API_URL": api, "WEB_URL": web, "PUBLIC_URL": ""})
    finally:
        s1.shutdown(), s2.shutdown()
    assert result.returncode == 1 and "FAILED: API ready" in result.stderr and "503" in result.stderr


@pytest.mark.servers
def test_smoke_test_rejects_a_certificate_it_cannot_trust(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    api, s1 = serve({"/health/ready": 200})
    web, s2 = serve({"/api/health": 200})
    public, s3 = serve({"/api/health": 200}, tls=(cert, key))
    try:
        result = smoke({"API_URL": api, "WEB_URL": web, "PUBLIC_URL": public})
    finally:
        s1.shutdown(), s2.shutdown(), s3.shutdown()
    assert result.returncode == 1 and "FAILED: web's public host with a valid certificate" in result.stderr


@pytest.mark.servers
def test_smoke_test_checks_both_public_hosts(tmp_path):
    """The web's public host serves its /api/health, the API's public host its /health/ready
    (docs/app-contract.md, "Public routing"); a failing API host fails the smoke test."""
    api, s1 = serve({"/health/ready": 200})
    web, s2 = serve({"/api/health": 200})
    public_web, s3 = serve({"/api/health": 200})
    public_api, s4 = serve({"/health/ready": 503})
    try:
        good = smoke({"API_URL": api, "WEB_URL": web, "PUBLIC_URL": public_web, "PUBLIC_API_URL": api})
        bad = smoke({"API_URL": api, "WEB_URL": web, "PUBLIC_URL": public_web, "PUBLIC_API_URL": public_api})
    finally:
        s1.shutdown(), s2.shutdown(), s3.shutdown(), s4.shutdown()
    assert good.returncode == 0 and "ok: API's public host" in good.stdout, good.stderr
    assert bad.returncode == 1 and "FAILED: API's public host" in bad.stderr


@pytest.mark.parametrize("env", ["dev", "staging", "production"])
def test_the_smoke_test_reaches_api_and_web_only(rendered, env):
    from kubechat_tools.netpol import Endpoint, allowed, pods_of

    docs = rendered[env]
    pods = pods_of(docs)
    smoke_pod = pods["kubechat-smoke-test"]
    assert allowed(docs, smoke_pod, pods["kubechat-api"], "http") and allowed(docs, smoke_pod, pods["kubechat-web"], "http")
    assert allowed(docs, smoke_pod, Endpoint(name="load balancer", ip="203.0.113.10"), 443)
    assert not allowed(docs, smoke_pod, pods["kubechat-db"], 5432) and not allowed(docs, smoke_pod, pods["kubechat-redis"], 6379)


# --- progressive delivery ----------------------------------------------------------------------------

@pytest.mark.parametrize("env", ["staging", "production"])
@pytest.mark.parametrize("name", ["kubechat-api", "kubechat-web"])
def test_canary_rollouts_take_over_the_deployments_and_abort_on_failed_analysis(rendered, env, name):
    docs = rendered[env]
    rollout = find(docs, "Rollout", name)["spec"]
    assert rollout["workloadRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                      "scaleDown": "progressively"}
    find(docs, "Deployment", name)
    canary = rollout["strategy"]["canary"]
    weights = [s["setWeight"] for s in canary["steps"] if "setWeight" in s]
    assert weights == sorted(weights) and weights[-1] == 100 and any("pause" in s for s in canary["steps"])
    template = find(docs, "AnalysisTemplate", canary["analysis"]["templates"][0]["templateName"])["spec"]
    for metric in template["metrics"]:
        assert metric["failureLimit"] >= 0 and "successCondition" in metric, metric["name"]
        assert "dryRun" not in template, "a dry-run analysis would never abort"
    hpa = find(docs, "HorizontalPodAutoscaler", name)["spec"]["scaleTargetRef"]
    assert hpa == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": name}


def test_staging_pauses_less_than_production(rendered):
    def total_pause(env):
        steps = find(rendered[env], "Rollout", "kubechat-api")["spec"]["strategy"]["canary"]["steps"]
        return sum(int(s["pause"]["duration"][:-1]) for s in steps if "pause" in s)
    assert 0 < total_pause("staging") < total_pause("production")


def test_the_wait_after_an_aborted_web_canary_in_the_docs_is_the_web_analysis_rate_window(rendered):
    """docs/upgrade.md tells the operator how long an aborted web canary's failures stay in the next web canary's
    measurement: the rate window of the rendered web analysis (the delivery tier waits it out with the real
    Traefik and Prometheus)."""
    import re
    text = (ROOT / "docs" / "upgrade.md").read_text()
    said = re.search(r"After an aborted web canary, wait (\d+) minutes before the next release.*?`\[(\d+)m\]`", text, re.S)
    assert said and said.group(1) == said.group(2), "docs/upgrade.md: the wait after an aborted web canary"
    for env in ("staging", "production"):
        template = next(d for d in rendered[env] if d["kind"] == "AnalysisTemplate" and d["metadata"]["name"] == "kubechat-web-canary")
        windows = {w for m in template["spec"]["metrics"] for w in re.findall(r"\[(\d+)m\]", m["provider"]["prometheus"]["query"])}
        assert windows == {said.group(1)}, (env, windows)


def test_dev_deploys_without_canaries(rendered):
    assert not [d for d in rendered["dev"] if d["kind"] in ("Rollout", "AnalysisTemplate")]
    assert find(rendered["dev"], "HorizontalPodAutoscaler", "kubechat-api")["spec"]["scaleTargetRef"]["kind"] == "Deployment"


def test_analysis_queries_are_valid_promql(rendered, tmp_path):
    import yaml

    rules = []
    for doc in rendered["production"]:
        if doc["kind"] == "AnalysisTemplate":
            for metric in doc["spec"]["metrics"]:
                query = metric["provider"]["prometheus"]["query"].replace("{{args.namespace}}", "kubechat-production")
                rules.append({"record": f"canary:{doc['metadata']['name'].replace('-', '_')}:{metric['name'].replace('-', '_')}",
                              "expr": query})
    assert len(rules) == 3
    path = tmp_path / "analysis.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "analysis", "rules": rules}]}))
    result = subprocess.run([str(ROOT / "bin" / "promtool"), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- platform bootstrap --------------------------------------------------------------------------------

def platform(name):
    return {d["metadata"]["name"]: d for d in load_dir(ROOT / "dist" / "platform" / name)}


def test_platform_objects_are_schema_valid():
    for name in ("argocd", "bootstrap", "root", "prerequisites", "delivery", "logging"):
        assert schema_gate([ROOT / "dist" / "platform" / name]) == [], name


def test_one_root_application_bootstraps_prerequisites_then_kubechat():
    bootstrap = platform("bootstrap")
    assert [app["spec"]["source"]["path"] for app in bootstrap.values() if app["kind"] == "Application"] == \
        ["dist/platform/root"]
    # Argo CD's configuration (the Application health check the root's waves rely on) comes with the root.
    assert bootstrap["argocd-cm"] == platform("argocd")["argocd-cm"]
    assert "resource.customizations.health.argoproj.io_Application" in bootstrap["argocd-cm"]["data"]
    root = platform("root")
    paths = {app["spec"]["source"]["path"] for app in root.values()}
    assert paths == {"dist/platform/argocd", "dist/platform/prerequisites", "dist/platform/delivery"}
    assert all((ROOT / p / "kustomization.yaml").is_file() for p in paths)
    waves = {app["spec"]["source"]["path"]: int(app["metadata"]["annotations"][WAVE]) for app in root.values()}
    assert waves["dist/platform/argocd"] < waves["dist/platform/prerequisites"] < waves["dist/platform/delivery"]


def test_every_custom_resource_kubechat_renders_has_its_operator_among_the_prerequisites(rendered):
    import re

    apps = platform("prerequisites")
    for app in apps.values():
        for source in app["spec"].get("sources") or [app["spec"]["source"]]:
            assert re.fullmatch(r"v?\d+\.\d+\.\d+", source["targetRevision"]), app["metadata"]["name"]
    operators = {"cert-manager.io": "cert-manager", "postgresql.cnpg.io": "cloudnative-pg",
                 "barmancloud.cnpg.io": "plugin-barman-cloud", "monitoring.coreos.com": "kube-prometheus-stack",
                 "external-secrets.io": "external-secrets", "argoproj.io": "argo-rollouts",
                 "kyverno.io": "kyverno", "traefik.io": "traefik", "gateway.networking.k8s.io": "gateway-api"}
    groups = {d["apiVersion"].split("/")[0] for docs in rendered.values() for d in docs if "." in d["apiVersion"].split("/")[0]}
    groups -= {"apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io",
               "admissionregistration.k8s.io"}
    assert groups <= operators.keys(), f"no operator known for {groups - operators.keys()}"
    for group in groups:
        assert f"platform-{operators[group]}" in apps
    wave = lambda name: int(apps[f"platform-{name}"]["metadata"]["annotations"][WAVE])  # noqa: E731
    assert wave("cloudnative-pg") < wave("plugin-barman-cloud") and wave("cert-manager") < wave("plugin-barman-cloud")
    # cert-manager's Gateway API informers and Traefik's provider need the Gateway API's CRDs when they start.
    assert wave("gateway-api") < wave("cert-manager") and wave("gateway-api") < wave("traefik")
    stack = apps["platform-kube-prometheus-stack"]["spec"]["source"]["helm"]["valuesObject"]
    assert stack["prometheus"]["prometheusSpec"]["enforcedNamespaceLabel"] == "namespace"


def test_namespace_enforcement_leaves_the_platforms_series_and_rules_alone(rendered):
    """14.2: with enforcedNamespaceLabel, prometheus-operator appends `namespace: <monitor's namespace>` as
    the last relabeling of every monitor not excluded (v0.93.0 pkg/namespacelabeler/labeler.go,
    GetRelabelingConfigs) and injects the matcher into every rule not excluded. Evaluated here as the
    operator does (IsExcluded): kube-state-metrics' ServiceMonitor (kube-prometheus-stack, in monitoring),
    cert-manager's, Traefik's and Trivy's keep the `namespace` label they scrape, so KubeChat's alerts
    on those series (crash loops, HPA at maximum, certificates, vulnerabilities) can match; KubeChat's own
    monitors and rules stay confined to their environment."""
    apps = platform("prerequisites")
    spec = apps["platform-kube-prometheus-stack"]["spec"]["source"]["helm"]["valuesObject"]["prometheus"]["prometheusSpec"]
    excluded = spec["excludedFromEnforcement"]

    def is_excluded(resource: str, namespace: str, name: str) -> bool:
        return any(r["resource"] == resource and r["namespace"] == namespace and r.get("name", "") in ("", name)
                   for r in excluded)
    platform_monitors = [("servicemonitors", "monitoring", "kube-prometheus-stack-kube-state-metrics"),
                         ("servicemonitors", "monitoring", "kube-prometheus-stack-kubelet"),
                         ("servicemonitors", "cert-manager", "cert-manager"),
                         ("servicemonitors", "traefik", "traefik"),
                         ("servicemonitors", "trivy-system", "trivy-operator"),
                         ("prometheusrules", "monitoring", "kube-prometheus-stack-kubernetes-apps")]
    for resource, namespace, name in platform_monitors:
        assert is_excluded(resource, namespace, name), f"{resource} {namespace}/{name} would lose its series' namespace"
    for docs in rendered.values():
        for doc in docs:
            if doc["kind"] in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
                resource = doc["kind"].lower() + "s"
                assert not is_excluded(resource, doc["metadata"]["namespace"], doc["metadata"]["name"]), doc["metadata"]


@pytest.mark.parametrize("env", ["dev", "staging", "production"])
def test_a_sync_failure_is_recorded_where_the_alerting_sees_it(rendered, env):
    from kubechat_deploy.observability.alerts import ALERTS

    job = find(rendered[env], "Job", "kubechat-sync-failed")
    assert job["metadata"]["annotations"][HOOK] == "SyncFail"
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    alert = next(a for a in ALERTS if a.name == "KubeChatSyncFailed")
    assert 'job_name="kubechat-sync-failed"' in alert.expr


def test_canary_success_rate_is_zero_for_a_failing_canary_and_empty_without_traffic(rendered, tmp_path):
    """Prometheus' own engine (promtool test rules) on the rendered API query, with the canary's series as
    they are scraped: all 5xx gives 0 (Failed), 1 % errors 0.99, no canary traffic no sample
    (Inconclusive); the stable pods' errors never count for the canary."""
    import yaml

    template = find(rendered["production"], "AnalysisTemplate", "kubechat-api-canary")["spec"]
    query = next(m for m in template["metrics"] if m["name"] == "success-rate")["provider"]["prometheus"]["query"]
    cases = {"failing": ("aaa", {"500": "0+60x10"}), "mostly-good": ("bbb", {"200": "0+99x10", "500": "0+1x10"}),
             "idle": ("ccc", {})}
    series, tests = [], []
    for name, (revision, codes) in cases.items():
        for code, values in codes.items():
            series.append({"series": f'kubechat_http_requests_total{{job="kubechat-api",namespace="kubechat-production",'
                                     f'rollouts_pod_template_hash="{revision}",route="/api/clusters",code="{code}"}}',
                           "values": values})
    # the stable revision fails hard: it must not leak into any canary's ratio
    series.append({"series": 'kubechat_http_requests_total{job="kubechat-api",namespace="kubechat-production",'
                             'rollouts_pod_template_hash="stable",route="/api/clusters",code="500"}', "values": "0+600x10"})
    expected = {"failing": [{"labels": "{}", "value": 0}], "mostly-good": [{"labels": "{}", "value": 0.99}], "idle": []}
    for name, (revision, _) in cases.items():
        expr = query.replace("{{args.namespace}}", "kubechat-production").replace("{{args.canary-hash}}", revision)
        tests.append({"expr": expr, "eval_time": "5m", "exp_samples": expected[name]})
    (tmp_path / "test.yaml").write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": series, "promql_expr_test": tests}]}))
    result = subprocess.run([str(ROOT / "bin" / "promtool"), "test", "rules", str(tmp_path / "test.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_monitors_of_the_platform_charts_arrive_after_their_crds_and_keep_the_namespace_they_measure():
    """Review finding: a chart that enables a ServiceMonitor in the same wave as kube-prometheus-stack (which
    brings the CRD) fails its first sync; cert-manager's series must keep the Certificate's namespace
    (honorLabels) for the environments' certificate alerts to match."""
    apps = platform("prerequisites")
    wave = lambda name: int(apps[f"platform-{name}"]["metadata"]["annotations"][WAVE])  # noqa: E731
    values = lambda name: (apps[f"platform-{name}"]["spec"].get("source") or apps[f"platform-{name}"]["spec"]["sources"][0])[  # noqa: E731
        "helm"].get("valuesObject") or {}
    with_monitors = [name for name in ("cert-manager", "traefik", "trivy-operator")
                     if "onitor" in str(values(name))]
    assert set(with_monitors) == {"cert-manager", "traefik", "trivy-operator"}
    for name in with_monitors:
        assert wave(name) > wave("kube-prometheus-stack"), name
    assert values("cert-manager")["prometheus"]["servicemonitor"]["honorLabels"] is True
    # Traefik's own `service` label (the canary analysis selects by it) would become exported_service.
    assert values("traefik")["metrics"]["prometheus"]["serviceMonitor"]["honorLabels"] is True



def test_the_local_admin_is_turned_off_by_a_setting_and_the_roles_follow_the_settings():
    """What ArgoCdAccessProps renders (the real argocd-server enforces it: tests/delivery/test_argocd_access.py)."""
    from cdk8s import App

    from kubechat_deploy.platform.charts import ArgoCdConfigurationChart
    from kubechat_deploy.platform.props import ArgoCdAccessProps, PlatformProps

    app = App()
    chart = ArgoCdConfigurationChart(app, props=PlatformProps(argocd_access=ArgoCdAccessProps(
        local_admin=False, production_deployers=("sre-oncall", "release-managers"), platform_admins=())))
    docs = {d["metadata"]["name"]: d for d in chart.to_json()}
    assert docs["argocd-cm"]["data"]["admin.enabled"] == "false"
    policy = docs["argocd-rbac-cm"]["data"]["policy.csv"].splitlines()
    assert "g, sre-oncall, role:kubechat-production-deployer" in policy
    assert "g, release-managers, role:kubechat-production-deployer" in policy
    assert not [line for line in policy if line.endswith("role:admin")]
    assert docs["argocd-rbac-cm"]["data"]["policy.default"] == "role:readonly"


def test_the_api_write_limits_policy_carries_the_condition_the_deployers_policy_demands(rendered):
    """The deployer's admission policy (dist/platform/deployers) lets an environment write its cluster-wide
    api-write-limits policy only with this matchCondition (so it judges the API's requests only): the
    render must carry exactly it, or every sync of that object is refused."""
    from kubechat_deploy.delivery.access import API_ROLE_MATCH, POLICY_RESOURCES, READ_VERBS, WRITE_ROLE

    for env in ("staging", "production"):
        docs = {(d["kind"], d["metadata"]["name"]): d for d in rendered[env] if "namespace" not in d["metadata"]}
        limits = docs[("ValidatingAdmissionPolicy", f"kubechat-{env}-api-write-limits")]
        assert [c["expression"] for c in limits["spec"]["matchConditions"]] == [API_ROLE_MATCH]
        for (kind, name), doc in docs.items():
            if kind == "ValidatingAdmissionPolicy":
                assert all(set(r["resources"]) <= set(POLICY_RESOURCES) for r in doc["spec"]["matchConstraints"]["resourceRules"]), name
            if kind == "ClusterRole":
                for rule in doc["rules"]:
                    if name.endswith("-api-write"):
                        assert set(rule["verbs"]) <= set(WRITE_ROLE["verbs"]) and set(rule["resources"]) <= set(WRITE_ROLE["resources"])
                    else:
                        assert set(rule["verbs"]) <= set(READ_VERBS) and "secrets" not in rule["resources"], name
            if kind == "Namespace":
                assert doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
