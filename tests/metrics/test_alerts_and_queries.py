"""15.3: the Prometheus Operator's configuration from the rendered monitors and rules, loaded by a real
Prometheus: the series reach it with the labels the rules, the canary analyses and the dashboards use.

Staging's stand-in exporters serve a healthy environment, production's a broken one (kubechat_tools/
exporters.py): every alert family must be active (pending or firing, as that Prometheus evaluates it) for
production and absent for staging. The `for` durations are not waited out here (tests/test_monitoring.py
runs every alert's rules, durations included, through promtool)."""
from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from kubechat_deploy.observability.metrics_catalog import METRICS
from kubechat_tools.manifests import load_dir
from kubechat_tools.paths import DIST
from kubechat_tools.release import seconds

from .conftest import CANARY_HASH, PROFILES

pytestmark = pytest.mark.metrics

GOOD, BAD = (f"kubechat-{env}" for env in PROFILES)  # staging, production
RULES = yaml.safe_load((DIST / "rendered" / "production" / "prometheusrule-kubechat.yaml").read_text())
ALERTS = [rule["alert"] for group in RULES["spec"]["groups"] for rule in group["rules"] if "alert" in rule]


def test_every_monitor_became_a_scrape_job_and_every_target_is_up(prometheus):
    targets = prometheus.api("targets")["activeTargets"]
    jobs = {(t["labels"].get("namespace"), t["labels"]["job"]) for t in targets}
    for ns in (GOOD, BAD):
        assert {(ns, "kubechat-api"), (ns, "kubechat-redis")} <= jobs, jobs
        # PodMonitors: the operator names their jobs <namespace>/<name>
        assert {(ns, f"{ns}/kubechat-db"), (ns, f"{ns}/kubechat-db-pooler-rw")} <= jobs, jobs
    assert all(t["health"] == "up" for t in targets)


def test_kubechat_series_carry_their_environment_and_platform_series_the_objects_namespace(prometheus):
    """enforcedNamespaceLabel sets namespace on KubeChat's monitors; the platform's monitors are excluded
    and keep the namespace their exporters write (honorLabels)."""
    for ns in (GOOD, BAD):
        for metric, job in (("kubechat_http_requests_total", "kubechat-api"), ("redis_up", "kubechat-redis"),
                            ("cnpg_collector_up", f"{ns}/kubechat-db")):
            assert prometheus.query(f'{metric}{{namespace="{ns}",job="{job}"}}'), (metric, ns)
        for metric in ("kube_job_status_failed", "certmanager_certificate_ready_status", "trivy_image_vulnerabilities"):
            assert prometheus.query(f'{metric}{{namespace="{ns}"}}'), (metric, ns)
    # Traefik's own `service` label (honorLabels) is what the web canary and dashboard select by; without it the
    # target's Service name would have taken it (exported_service).
    assert prometheus.query(f'traefik_service_requests_total{{service="{BAD}-kubechat-web-stable-http@kubernetescrd"}}')
    assert not prometheus.query('traefik_service_requests_total{exported_service!=""}')


def active_alerts(prometheus, alert: str, namespace: str) -> list[dict]:
    return [a for a in prometheus.api("alerts")["alerts"]
            if a["labels"].get("alertname") == alert and a["labels"].get("namespace") == namespace]


@pytest.fixture(scope="module")
def evaluated(prometheus):
    """Rules evaluated over at least two scrapes of every target (rates need two samples)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if all(active_alerts(prometheus, alert, BAD) for alert in ALERTS):
            break
        time.sleep(5)
    return prometheus


@pytest.mark.parametrize("alert", ALERTS)
def test_each_alert_is_active_for_the_broken_environment_and_silent_for_the_healthy_one(evaluated, alert):
    assert active_alerts(evaluated, alert, BAD), f"{alert} is not active for {BAD}: " + json.dumps(
        [g["name"] for g in evaluated.api("rules")["groups"]])
    assert silent(evaluated, alert, GOOD), f"{alert} is firing for the healthy {GOOD}"


def silent(prometheus, alert: str, namespace: str) -> bool:
    """No notification: the alert is not firing for `namespace`. A pending one (a scrape of a stand-in exporter
    that timed out on a loaded machine makes `absent()` true once) is watched until it resolves or fires: it
    fires only when its condition holds for its whole `for` duration."""
    rule = next(r for g in RULES["spec"]["groups"] for r in g["rules"] if r.get("alert") == alert)
    wait = seconds(rule.get("for", "0s")) + 60
    deadline = time.monotonic() + wait
    while True:
        states = {a["state"] for a in active_alerts(prometheus, alert, namespace)}
        if "firing" in states:
            return False
        if not states or time.monotonic() > deadline:
            return not states
        time.sleep(5)



def test_every_rule_group_loaded_with_its_namespace_enforced(evaluated):
    """The operator rewrote each rule's selectors to its namespace: the loaded rules name it."""
    groups = evaluated.api("rules")["groups"]
    loaded = [rule for group in groups for rule in group["rules"] if rule.get("name", "").startswith(("KubeChat", "kubechat:"))]
    assert len(loaded) == 2 * sum(len(group["rules"]) for group in RULES["spec"]["groups"])
    assert all(rule.get("health") == "ok" for rule in loaded), [r for r in loaded if r.get("health") != "ok"]
    for ns in (GOOD, BAD):
        assert any(f'namespace="{ns}"' in rule["query"] for rule in loaded)


KSM_ALERTS = [rule["alert"] for group in RULES["spec"]["groups"] for rule in group["rules"]
              if "alert" in rule and 'job="kube-state-metrics"' in rule["expr"]]


def test_without_the_platform_exclusions_the_kube_state_metrics_alerts_cannot_fire(evaluated, prometheus_without_exclusions):
    """The break the review found, shown by the same operator: without excludedFromEnforcement the operator
    overwrites the namespace of kube-state-metrics' series with its own (monitoring), so production's rules,
    scoped to kubechat-production, never see them. This tier fails such a platform."""
    other = prometheus_without_exclusions
    assert KSM_ALERTS
    assert other.query('kube_job_status_failed{job="kube-state-metrics",namespace="monitoring"}')
    assert not other.query(f'kube_job_status_failed{{job="kube-state-metrics",namespace="{BAD}"}}')
    time.sleep(65)  # two rule evaluations (30 s) after its targets are up
    for alert in KSM_ALERTS:
        assert active_alerts(evaluated, alert, BAD), alert
        assert not active_alerts(other, alert, BAD), f"{alert} fired without the exclusions"


# --- canary analyses --------------------------------------------------------------------------------

def analysis_queries(env: str) -> list[tuple[str, str, str]]:
    docs = load_dir(DIST / "rendered" / env)
    return [(d["metadata"]["name"], m["name"], m["provider"]["prometheus"]["query"])
            for d in docs if d["kind"] == "AnalysisTemplate" for m in d["spec"]["metrics"]]


def with_args(query: str, namespace: str, canary_hash: str) -> str:
    return query.replace("{{args.namespace}}", namespace).replace("{{args.canary-hash}}", canary_hash)


@pytest.mark.parametrize("template, metric, query", analysis_queries("production"),
                         ids=lambda v: v if "(" not in str(v) else "query")
def test_canary_queries_measure_the_canary_and_return_nothing_without_traffic(evaluated, template, metric, query):
    for ns in (GOOD, BAD):
        result = evaluated.query(with_args(query, ns, CANARY_HASH))
        assert result and not any(v != v for v in [float(result[0]["value"][1])]), (template, metric, ns, result)
    healthy = float(evaluated.query(with_args(query, GOOD, CANARY_HASH))[0]["value"][1])
    broken = float(evaluated.query(with_args(query, BAD, CANARY_HASH))[0]["value"][1])
    if metric == "success-rate":
        assert healthy >= 0.99 > broken
    else:  # p95 latency, seconds
        assert healthy <= 0.5 < broken
    if "rollouts_pod_template_hash" in query:  # a canary that received no traffic: no data, never a pass
        assert evaluated.query(with_args(query, BAD, "0000000000")) == []
    assert evaluated.query(with_args(query, "kubechat-nowhere", CANARY_HASH)) == []


# --- dashboards -------------------------------------------------------------------------------------

KUBELET_METRICS = set(METRICS["kubelet"])
"""cAdvisor's series come from the kubelet, which does not run here: panels on them are listed, not run."""


def dashboard_panels() -> list[tuple[str, str, str]]:
    panels = []
    for doc in load_dir(DIST / "rendered" / "production"):
        if doc["kind"] == "ConfigMap" and (doc["metadata"].get("labels") or {}).get("grafana_dashboard") == "1":
            for name, text in doc["data"].items():
                for panel in json.loads(text)["panels"]:
                    for target in panel.get("targets", []):
                        if target.get("expr"):
                            panels.append((name, panel["title"], target["expr"]))
    return panels


def grafana(expr: str, namespace: str) -> str:
    return expr.replace("$namespace", namespace).replace("$__rate_interval", "2m").replace("$__interval", "30s")


@pytest.mark.parametrize("dashboard, title, expr", dashboard_panels(), ids=lambda v: re.sub(r"\W+", "-", str(v))[:60])
def test_each_dashboard_query_returns_series(evaluated, dashboard, title, expr):
    if set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)) & KUBELET_METRICS:
        pytest.skip(f"{dashboard} {title!r}: cAdvisor series (the kubelet's) are not served here")
    assert evaluated.query(grafana(expr, BAD)), f"{dashboard} panel {title!r} returns nothing: {expr}"


def test_the_dashboards_namespace_variable_lists_the_environments(evaluated):
    result = evaluated.api("label/namespace/values", **{"match[]": 'kube_namespace_labels{namespace=~"kubechat-.*"}'})
    assert {GOOD, BAD} <= set(result)
