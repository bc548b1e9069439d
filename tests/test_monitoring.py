"""Monitoring as rendered: rules pass promtool's checks and unit tests (synthetic series), every alert
links an existing runbook, dashboards are valid, and rules and dashboards use only known metrics."""
from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from conftest import ROOT, find
from kubechat_deploy.observability.alerts import ALERTS, recording_rules
from kubechat_deploy.observability.metrics_catalog import ALL_METRICS

PROMTOOL = ROOT / "bin" / "promtool"
ENVS = ("dev", "staging", "production")
PROMQL_WORDS = {"sum", "max", "min", "avg", "count", "rate", "increase", "by", "without", "on", "ignoring", "and",
                "or", "unless", "time", "absent", "histogram_quantile", "label_values", "bool", "offset", "le"}


def rule_file(rendered, env, tmp_path):
    spec = find(rendered[env], "PrometheusRule", "kubechat")["spec"]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": spec["groups"]}, sort_keys=False))
    return path, spec


def metrics_in(expr: str) -> set[str]:
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    return {t for t in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text) if t not in PROMQL_WORDS}


@pytest.mark.parametrize("env", ENVS)
def test_rules_pass_promtool_check(rendered, env, tmp_path):
    path, _ = rule_file(rendered, env, tmp_path)
    result = subprocess.run([str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_complete_and_links_an_existing_runbook(rendered, tmp_path):
    _, spec = rule_file(rendered, "production", tmp_path)
    alerts = [r for g in spec["groups"] for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} == {a.name for a in ALERTS}
    for alert in alerts:
        assert alert["labels"]["severity"] in ("critical", "warning")
        assert {"summary", "description", "runbook_url"} <= alert["annotations"].keys()
        page = alert["annotations"]["runbook_url"].rsplit("/", 1)[1]
        assert page == f"{alert['alert']}.md"
        text = (ROOT / "docs" / "runbooks" / page).read_text()
        for section in ("## What it means", "## How to confirm", "## How to fix", "## How to escalate"):
            assert section in text, f"{page}: no {section!r}"


def test_runbooks_are_current():
    result = subprocess.run(["python", str(ROOT / "scripts" / "runbooks.py"), "--check"], capture_output=True,
                            text=True, cwd=ROOT, env={"PATH": f"{ROOT}/.venv/bin:/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("env", ENVS)
def test_rules_and_dashboards_use_only_known_metrics(rendered, env):
    recorded = {r["record"] for r in recording_rules()}
    docs = rendered[env]
    unknown = {}
    for group in find(docs, "PrometheusRule", "kubechat")["spec"]["groups"]:
        for rule in group["rules"]:
            missing = metrics_in(rule["expr"]) - ALL_METRICS - recorded
            if missing:
                unknown[rule.get("alert") or rule.get("record")] = missing
    for cm in (d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")):
        for panel in json.loads(next(iter(cm["data"].values())))["panels"]:
            for target in panel["targets"]:
                missing = metrics_in(target["expr"].replace("$namespace", "x")) - ALL_METRICS - recorded
                if missing:
                    unknown[f"{cm['metadata']['name']}: {panel['title']}"] = missing
    assert unknown == {}, f"metrics not in metrics_catalog.py: {unknown}"


def test_dashboards_are_valid_with_unique_panel_ids_stable_uids_and_a_datasource_variable(rendered):
    docs = rendered["production"]
    boards = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")]
    assert {b["metadata"]["name"] for b in boards} == {f"kubechat-{n}-dashboard" for n in
                                                      ("api", "web", "postgresql", "redis", "backups", "certificates")}
    for cm in boards:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        board = json.loads(next(iter(cm["data"].values())))
        assert board["uid"] == cm["metadata"]["name"].removesuffix("-dashboard")
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{board['uid']}: duplicate panel ids"
        assert any(v["type"] == "datasource" for v in board["templating"]["list"])
        assert all(p["datasource"]["uid"] == "${datasource}" for p in board["panels"])


@pytest.mark.parametrize("env", ENVS)
def test_monitors_select_a_service_port_and_carry_the_discovery_label(rendered, env):
    docs = rendered[env]
    for monitor in (d for d in docs if d["kind"] in ("ServiceMonitor", "PodMonitor", "PrometheusRule")):
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack", monitor["metadata"]["name"]
    api = find(docs, "ServiceMonitor", "kubechat-api")["spec"]
    assert api["endpoints"][0]["port"] == "metrics"


# --- promtool unit tests with synthetic series ---------------------------------------------------

def humanize_duration(seconds: float) -> str:
    seconds = int(seconds)
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    if d:
        return f"{d}d {h}h {m}m {s}s"
    if h:
        return f"{h}h {m}m {s}s"
    return f"{m}m {s}s"


def annotations(name: str, labels: dict, value: float, kind: str) -> dict:
    alert = next(a for a in ALERTS if a.name == name)
    rendered_value = {"percentage": f"{value * 100:.4g}%", "duration": humanize_duration(value),
                      "plain": f"{value:g}"}[kind]
    description = re.sub(r"\{\{ \$value \| humanize\w+ \}\}", rendered_value, alert.description)
    description = description.replace("{{ $value }}", rendered_value)
    description = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], description)
    return {"summary": alert.summary, "description": description,
            "runbook_url": f"https://github.com/kubechat/kubechat-deploy/blob/main/docs/runbooks/{name}.md"}


def run_promtool_tests(rendered, tmp_path, tests: list[dict]) -> subprocess.CompletedProcess:
    rule_file(rendered, "production", tmp_path)
    test_file = tmp_path / "tests.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m",
                                         "tests": tests}, sort_keys=False))
    return subprocess.run([str(PROMTOOL), "test", "rules", str(test_file)], capture_output=True, text=True)


NS = {"namespace": "kubechat-production"}


def requests(errors_per_minute: int) -> list[dict]:
    base = 'kubechat_http_requests_total{job="kubechat-api",namespace="kubechat-production",route="/api/clusters",code="%s"}'
    return [{"series": base % "200", "values": f"0+{1000 - errors_per_minute}x180"},
            {"series": base % "500", "values": f"0+{errors_per_minute}x180"}]


def test_fast_burn_fires_at_14_4x_and_not_at_1x(rendered, tmp_path):
    name = "KubeChatApiErrorBudgetFastBurn"
    fires = {"interval": "1m", "input_series": requests(15),  # 1.5% errors: 15x the 0.1% budget
             "alert_rule_test": [{"eval_time": "70m", "alertname": name, "exp_alerts": [
                 {"exp_labels": {"severity": "critical", **NS},
                  "exp_annotations": annotations(name, NS, 0.015, "percentage")}]}]}
    quiet = {"interval": "1m", "input_series": requests(1),  # 0.1% errors: burning exactly the budget
             "alert_rule_test": [{"eval_time": "70m", "alertname": name, "exp_alerts": []},
                                 {"eval_time": "70m", "alertname": "KubeChatApiErrorBudgetSlowBurn", "exp_alerts": []}]}
    result = run_promtool_tests(rendered, tmp_path, [fires, quiet])
    assert result.returncode == 0, result.stdout + result.stderr


def test_backup_age_alert_fires_after_the_allowed_age_and_not_before(rendered, tmp_path):
    name = "KubeChatPhysicalBackupTooOld"
    series = [{"series": 'barman_cloud_cloudnative_pg_io_last_available_backup_timestamp{namespace="kubechat-production",pod="kubechat-db-1"}',
               "values": "0x2000"}]  # the last backup finished at t=0
    test = {"interval": "1m", "input_series": series, "alert_rule_test": [
        {"eval_time": "25h", "alertname": name, "exp_alerts": []},
        {"eval_time": "26h5m", "alertname": name, "exp_alerts": []},  # too old, but not yet for 10m
        {"eval_time": "27h", "alertname": name, "exp_alerts": [
            {"exp_labels": {"severity": "critical", **NS}, "exp_annotations": annotations(name, NS, 27 * 3600, "duration")}]},
    ]}
    result = run_promtool_tests(rendered, tmp_path, [test])
    assert result.returncode == 0, result.stdout + result.stderr


def test_migration_alert_reads_the_jobs_failed_condition_not_its_failed_pods(rendered, tmp_path):
    """#26.7: a migration that succeeded on its second attempt (one failed pod, no Failed condition) is quiet; a
    Job whose Failed condition is true pages. kube-state-metrics (v2.19.1 internal/store/job.go) writes
    kube_job_status_failed from status.failed (pods) and kube_job_failed{condition} from the Failed condition."""
    name = "KubeChatMigrationFailed"
    ksm = 'job="kube-state-metrics",namespace="kubechat-production",job_name="kubechat-migrate"'
    retried = {"interval": "1m", "input_series": [{"series": f"kube_job_status_failed{{{ksm}}}", "values": "1x30"}],
               "alert_rule_test": [{"eval_time": "20m", "alertname": name, "exp_alerts": []}]}
    failed = {"interval": "1m", "input_series": [
        {"series": f"kube_job_status_failed{{{ksm}}}", "values": "1x30"},
        {"series": f'kube_job_failed{{{ksm},condition="true"}}', "values": "1x30"},
        {"series": f'kube_job_failed{{{ksm},condition="false"}}', "values": "0x30"},
        {"series": f'kube_job_failed{{{ksm},condition="unknown"}}', "values": "0x30"}],
        "alert_rule_test": [{"eval_time": "20m", "alertname": name, "exp_alerts": [
            {"exp_labels": {"severity": "critical", **NS}, "exp_annotations": annotations(name, NS, 1, "plain")}]}]}
    result = run_promtool_tests(rendered, tmp_path, [retried, failed])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("days, fires", [(13, True), (20, False)])
def test_certificate_alert_fires_at_13_days_and_not_at_20(rendered, tmp_path, days, fires):
    name = "KubeChatCertificateExpiringSoon"
    labels = {**NS, "name": "kubechat-tls"}
    series = [{"series": 'certmanager_certificate_expiration_timestamp_seconds{namespace="kubechat-production",name="kubechat-tls"}',
               "values": f"{days * 86400}x200"}]
    expected = [{"exp_labels": {"severity": "warning", **labels},
                 "exp_annotations": annotations(name, labels, days * 86400 - 2 * 3600, "duration")}] if fires else []
    test = {"interval": "1m", "input_series": series,
            "alert_rule_test": [{"eval_time": "2h", "alertname": name, "exp_alerts": expected}]}
    result = run_promtool_tests(rendered, tmp_path, [test])
    assert result.returncode == 0, result.stdout + result.stderr


def test_logging_platform_component_is_valid_and_collects_kubechat_json_logs():
    from kubechat_tools.gates import schema_gate
    from kubechat_tools.manifests import load_dir

    folder = ROOT / "dist" / "platform" / "logging"
    assert schema_gate([folder]) == []
    apps = {d["metadata"]["name"]: d["spec"] for d in load_dir(folder) if d["kind"] == "Application"}
    assert set(apps) == {"platform-loki", "platform-alloy"}
    for spec in apps.values():
        assert re.fullmatch(r"\d+\.\d+\.\d+", spec["source"]["targetRevision"]), "charts are pinned to exact versions"
        assert spec["destination"]["namespace"] == "logging"
    loki = apps["platform-loki"]["source"]["helm"]["valuesObject"]["loki"]
    assert loki["limits_config"]["retention_period"] == "744h" and loki["compactor"]["retention_enabled"] is True
    alloy = apps["platform-alloy"]["source"]["helm"]["valuesObject"]["alloy"]["configMap"]["content"]
    assert 'regex         = "kubechat-.*"' in alloy and "stage.json" in alloy and "loki-gateway.logging.svc" in alloy
    # 14.8: a DaemonSet instance discovers the pods of its own node only (HOSTNAME is the node's name in the
    # grafana/alloy chart: templates/containers/_agent.yaml), or every node ships every pod's logs.
    assert apps["platform-alloy"]["source"]["helm"]["valuesObject"]["controller"]["type"] == "daemonset"
    discovery = alloy.split('discovery.kubernetes "pods"', 1)[1].split("\n}\n", 1)[0]
    assert re.search(r'selectors \{\s*role\s*= "pod"\s*field = "spec\.nodeName=" \+ sys\.env\("HOSTNAME"\)\s*\}', discovery), discovery
    # every runbook's log query uses only labels Alloy attaches
    attached = {"namespace", "pod", "container", "app_kubernetes_io_component", "job_name", "level"}
    for alert in ALERTS:
        if alert.logs:
            selector = re.match(r"\{([^}]*)\}", alert.logs).group(1)
            assert {m.split("=")[0].strip().rstrip("!~") for m in selector.split(",")} <= attached, alert.name


@pytest.mark.parametrize("severity, fires", [("Critical", True), ("High", False)])
def test_vulnerability_alert_fires_on_critical_findings_only(rendered, tmp_path, severity, fires):
    name = "KubeChatCriticalVulnerability"
    labels = {**NS, "resource_kind": "ReplicaSet", "resource_name": "kubechat-api-5b7f4f896f", "container_name": "api",
              "image_repository": "kubechat/kubechat-api", "image_tag": "1.0.0"}
    series = [{"series": "trivy_image_vulnerabilities{" + ",".join(f'{k}="{v}"' for k, v in labels.items())
               + f',severity="{severity}",image_registry="ghcr.io"}}', "values": "2x60"}]
    expected = [{"exp_labels": {"severity": "warning", **labels},
                 "exp_annotations": annotations(name, labels, 2, "plain")}] if fires else []
    test = {"interval": "1m", "input_series": series, "alert_rule_test": [
        {"eval_time": "10m", "alertname": name, "exp_alerts": []},  # not yet for 15m
        {"eval_time": "20m", "alertname": name, "exp_alerts": expected}]}
    result = run_promtool_tests(rendered, tmp_path, [test])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("env", ["dev", "staging", "production"])
def test_database_and_pooler_monitors_select_disjoint_pods(rendered, env):
    """CloudNativePG labels pooler pods with cnpg.io/cluster as well (pkg/specs/pgbouncer/deployments.go:
    cnpg.io/cluster, cnpg.io/poolerName, cnpg.io/podRole=pooler; instances carry cnpg.io/podRole=instance,
    pkg/specs/pods.go): each PodMonitor must select only its own pods, or the pooler is scraped twice."""
    monitors = {d["metadata"]["name"]: d["spec"]["selector"]["matchLabels"] for d in rendered[env] if d["kind"] == "PodMonitor"}
    pooler_pod = {"cnpg.io/cluster": "kubechat-db", "cnpg.io/poolerName": "kubechat-db-pooler-rw", "cnpg.io/podRole": "pooler"}
    instance_pod = {"cnpg.io/cluster": "kubechat-db", "cnpg.io/instanceName": "kubechat-db-1", "cnpg.io/podRole": "instance"}
    selects = lambda selector, pod: all(pod.get(k) == v for k, v in selector.items())  # noqa: E731
    assert selects(monitors["kubechat-db"], instance_pod) and not selects(monitors["kubechat-db"], pooler_pod)
    assert selects(monitors["kubechat-db-pooler-rw"], pooler_pod) and not selects(monitors["kubechat-db-pooler-rw"], instance_pod)


def test_wal_archiving_alert_is_silent_on_an_idle_primary_and_fires_on_failures(rendered, tmp_path):
    """14.8: an idle primary archives nothing for hours (archive_timeout switches segments only after
    writes) and must stay silent; a failure newer than the last success fires (CloudNativePG's sample rule)."""
    name = "KubeChatWalArchivingFailing"
    labels = {**NS, "pod": "kubechat-db-1"}
    series = lambda failed, archived: [  # noqa: E731
        {"series": f'cnpg_pg_stat_archiver_last_failed_time{{namespace="kubechat-production",pod="kubechat-db-1"}}', "values": failed},
        {"series": f'cnpg_pg_stat_archiver_last_archived_time{{namespace="kubechat-production",pod="kubechat-db-1"}}', "values": archived}]
    idle = {"interval": "1m", "input_series": series("-1+0x300", "600x300"),  # archived once at t=10m, never failed (-1)
            "alert_rule_test": [{"eval_time": "4h", "alertname": name, "exp_alerts": []}]}
    failing = {"interval": "1m", "input_series": series("-1+0x60 3700+60x240", "3600x300"),  # failing from t=1h1m
               "alert_rule_test": [{"eval_time": "65m", "alertname": name, "exp_alerts": []},  # not yet for 10m
                                   {"eval_time": "80m", "alertname": name, "exp_alerts": [
                                       {"exp_labels": {"severity": "critical", **labels},
                                        "exp_annotations": annotations(name, labels, 0, "plain")}]}]}
    recovered = {"interval": "1m", "input_series": series("3700x300", "3600x60 7200x240"),  # archived again at 1h
                 "alert_rule_test": [{"eval_time": "90m", "alertname": name, "exp_alerts": []}]}
    result = run_promtool_tests(rendered, tmp_path, [idle, failing, recovered])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name, cronjob", [("KubeChatLogicalBackupFailed", "kubechat-logical-backup"),
                                           ("KubeChatRestoreDrillFailed", "kubechat-restore-drill")])
def test_a_job_failure_alert_reads_the_cronjobs_status_and_clears_with_the_next_success(rendered, tmp_path, name,
                                                                                       cronjob):
    """14.8 and #26.7: finished Jobs are removed an hour after they end (ttlSecondsAfterFinished: their scratch
    volumes count against the quota), and a failed Job kept after the next success used to keep the alert
    firing. The alert reads the CronJob's own status: it fires once the newest run is no longer active
    without a success since it was scheduled (or nothing ever succeeded), and clears with the next success.
    A run that is still going never fires it, however long the database makes it (a fixed deadline of 7200 s
    failed every drill of a large database and alerted while it still ran)."""
    ksm = f'job="kube-state-metrics",namespace="kubechat-production",cronjob="{cronjob}"'
    severity = next(a.severity for a in ALERTS if a.name == name)
    firing = [{"exp_labels": {"severity": severity, **NS}, "exp_annotations": annotations(name, NS, 0, "plain")}]
    scheduled = {"series": f"kube_cronjob_status_last_schedule_time{{{ksm}}}", "values": "3600x600"}  # run at t=1h
    active = f"kube_cronjob_status_active{{{ksm}}}"
    # A long run (six hours: a large database) that never succeeded yet: quiet while it runs, firing once it ends.
    long_run = {"interval": "1m", "input_series": [scheduled, {"series": active, "values": "0x60 1x360 0x200"}],
                "alert_rule_test": [{"eval_time": "5h", "alertname": name, "exp_alerts": []},
                                    {"eval_time": "7h5m", "alertname": name, "exp_alerts": firing}]}
    failed = {"interval": "1m", "input_series": [scheduled, {"series": active, "values": "0x600"},
                                                 {"series": f"kube_cronjob_status_last_successful_time{{{ksm}}}",
                                                  "values": "600x600"}],  # the run before succeeded
              "alert_rule_test": [{"eval_time": "1h5m", "alertname": name, "exp_alerts": []},  # just scheduled
                                  {"eval_time": "1h15m", "alertname": name, "exp_alerts": firing}]}
    recovered = {"interval": "1m", "input_series": [
        # the next run is scheduled at 5h (seen from 5h01m) and succeeds at 5h05m (seen from 5h06m)
        {"series": f"kube_cronjob_status_last_schedule_time{{{ksm}}}", "values": "3600x300 18000x300"},
        {"series": active, "values": "0x300 1x5 0x300"},
        {"series": f"kube_cronjob_status_last_successful_time{{{ksm}}}", "values": "600x305 18300x300"}],
        "alert_rule_test": [{"eval_time": "4h50m", "alertname": name, "exp_alerts": firing},
                            {"eval_time": "5h10m", "alertname": name, "exp_alerts": []}]}
    succeeded = {"interval": "1m", "input_series": [scheduled, {"series": active, "values": "0x600"},
                                                    {"series": f"kube_cronjob_status_last_successful_time{{{ksm}}}",
                                                     "values": "4000x600"}],
                 "alert_rule_test": [{"eval_time": "8h", "alertname": name, "exp_alerts": []}]}
    result = run_promtool_tests(rendered, tmp_path, [long_run, failed, recovered, succeeded])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("env", ENVS)
def test_dashboards_read_what_the_environment_really_runs(rendered, env):
    """14.8: where a Rollout runs the API (workloadRef with scaleDown keeps the Deployment at zero), a panel
    reading the Deployment's replicas shows zero; the front door's panels read Traefik's series of the web's
    split Services (the rendered canary analysis reads the canary's one)."""
    docs = rendered[env]
    exprs = [t["expr"] for cm in docs if cm["kind"] == "ConfigMap" and cm["metadata"]["name"].endswith("-dashboard")
             for p in json.loads(next(iter(cm["data"].values())))["panels"] for t in p["targets"]]
    rollouts = {d["spec"]["workloadRef"]["name"] for d in docs if d["kind"] == "Rollout" and "workloadRef" in d["spec"]}
    for name in rollouts:
        assert not [e for e in exprs if "kube_deployment_" in e and f'deployment="{name}"' in e], name
    # Traefik names each Kubernetes Service of a TraefikService `<namespace>-<service>-<port>@kubernetescrd`
    # (traefik v3.7.13 pkg/provider/kubernetes/crd/kubernetes_http.go fullServiceName); the platform's ServiceMonitor
    # keeps that `service` label (honorLabels). The web panels read exactly the web split's Services.
    traefik = [e for e in exprs if "traefik_service_" in e]
    assert traefik and all('service=~"$namespace-kubechat-web-(stable|canary)-http@kubernetescrd"' in e for e in traefik)
    for split in (d for d in docs if d["kind"] == "TraefikService" and d["metadata"]["name"] == "kubechat-web"):
        assert {(s["name"], s["port"]) for s in split["spec"]["weighted"]["services"]} == \
            {("kubechat-web-stable", "http"), ("kubechat-web-canary", "http")}
    assert any("kube_pod_status_ready" in e and "kubechat-api" in e for e in exprs)
