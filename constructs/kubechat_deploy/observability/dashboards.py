"""Grafana dashboards, generated (not pasted): API, web, PostgreSQL, cache, backups and drills,
certificates. Datasource is a variable; panel ids are unique per dashboard; uids are stable."""
from __future__ import annotations

import json

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
NS = 'namespace="$namespace"'
WEB_SPLIT = 'service=~"$namespace-kubechat-web-(stable|canary)-http@kubernetescrd"'


def _panel(title: str, exprs: list[tuple[str, str]], *, unit: str = "short", kind: str = "timeseries",
           width: int = 12) -> dict:
    return {"type": kind, "title": title, "datasource": DATASOURCE, "gridPos": {"w": width, "h": 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
                        for i, (expr, legend) in enumerate(exprs)]}


def dashboard(uid: str, title: str, panels: list[dict]) -> dict:
    x = y = 0
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
        if x + panel["gridPos"]["w"] > 24:
            x, y = 0, y + 8
        panel["gridPos"].update(x=x, y=y)
        x += panel["gridPos"]["w"]
    return {
        "uid": uid, "title": title, "tags": ["kubechat"], "timezone": "utc", "schemaVersion": 39, "version": 1,
        "editable": False, "time": {"from": "now-6h", "to": "now"}, "refresh": "1m",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
            {"name": "namespace", "type": "query", "datasource": DATASOURCE, "label": "Environment",
             "query": 'label_values(kube_namespace_labels{namespace=~"kubechat-.*"}, namespace)', "refresh": 2},
        ]},
        "panels": panels,
    }


def all_dashboards() -> dict[str, dict]:
    api_job = f'job="kubechat-api",{NS}'
    return {
        "kubechat-api": dashboard("kubechat-api", "KubeChat / API", [
            _panel("Requests per second by status", [(f"sum by (code) (rate(kubechat_http_requests_total{{{api_job}}}[5m]))", "{{code}}")], unit="reqps"),
            _panel("Error ratio (5xx)", [(f"kubechat:api_errors:ratio_rate5m{{{NS}}}", "5m"), (f"kubechat:api_errors:ratio_rate1h{{{NS}}}", "1h")], unit="percentunit"),
            _panel("Latency percentiles (non-streaming)", [
                (f'histogram_quantile({q}, sum by (le) (rate(kubechat_http_request_duration_seconds_bucket{{{api_job},route!~"/api/chat/stream.*"}}[5m])))', f"p{int(q * 100)}")
                for q in (0.5, 0.95, 0.99)], unit="s"),
            _panel("Active chat streams", [(f"sum(kubechat_chat_streams_active{{{api_job}}})", "streams")]),
            _panel("CPU (saturation)", [(f'sum by (pod) (rate(container_cpu_usage_seconds_total{{{NS},container="api"}}[5m]))', "{{pod}}")], unit="cores"),
            _panel("Memory", [(f'sum by (pod) (container_memory_working_set_bytes{{{NS},container="api"}})', "{{pod}}")], unit="bytes"),
            _panel("Database pool", [(f"sum by (state) (kubechat_db_pool_connections{{{api_job}}})", "{{state}}")]),
            # Ready API pods, whoever owns them: in staging and production the Rollout runs them and keeps the
            # Deployment it references (workloadRef, scaleDown) at zero replicas.
            _panel("Replicas", [(f'sum(kube_pod_status_ready{{{NS},condition="true",pod=~"kubechat-api-[a-z0-9]+-[a-z0-9]+"}})', "ready"),
                                (f'kube_horizontalpodautoscaler_spec_max_replicas{{{NS},horizontalpodautoscaler="kubechat-api"}}', "HPA max")]),
        ]),
        "kubechat-web": dashboard("kubechat-web", "KubeChat / Web", [
            # Traefik's series of the web host's two split Services (app/exposure.py), stable and canary:
            # `<namespace>-<service>-<port>@kubernetescrd` (delivery/progressive.py, web_queries).
            _panel("Requests per second by status (front door)", [(f'sum by (code) (rate(traefik_service_requests_total{{{WEB_SPLIT}}}[5m]))', "{{code}}")], unit="reqps"),
            _panel("Requests per second, stable and canary", [(f'sum by (service) (rate(traefik_service_requests_total{{{WEB_SPLIT}}}[5m]))', "{{service}}")], unit="reqps"),
            _panel("Latency p95 (front door)", [(f'histogram_quantile(0.95, sum by (le) (rate(traefik_service_request_duration_seconds_bucket{{{WEB_SPLIT}}}[5m])))', "p95")], unit="s"),
            _panel("CPU", [(f'sum by (pod) (rate(container_cpu_usage_seconds_total{{{NS},container="web"}}[5m]))', "{{pod}}")], unit="cores"),
            _panel("Memory", [(f'sum by (pod) (container_memory_working_set_bytes{{{NS},container="web"}})', "{{pod}}")], unit="bytes"),
            _panel("Restarts (1h)", [(f'sum by (pod) (increase(kube_pod_container_status_restarts_total{{{NS},container="web"}}[1h]))', "{{pod}}")]),
        ]),
        "kubechat-postgresql": dashboard("kubechat-postgresql", "KubeChat / PostgreSQL", [
            _panel("Instances up", [(f"sum(cnpg_collector_up{{{NS}}})", "up")], kind="stat", width=6),
            _panel("Replication lag", [(f"max by (pod) (cnpg_pg_replication_lag{{{NS}}})", "{{pod}}")], unit="s", width=18),
            _panel("Connections", [(f"sum by (pod) (cnpg_backends_total{{{NS}}})", "{{pod}}"),
                                   (f'max(cnpg_pg_settings_setting{{{NS},name="max_connections"}})', "max_connections")]),
            _panel("Database size", [(f'max by (datname) (cnpg_pg_database_size_bytes{{{NS},datname="kubechat"}})', "{{datname}}")], unit="bytes"),
            _panel("PgBouncer clients", [(f"sum(cnpg_pgbouncer_pools_cl_active{{{NS}}})", "active"),
                                         (f"sum(cnpg_pgbouncer_pools_cl_waiting{{{NS}}})", "waiting"),
                                         (f"sum(cnpg_pgbouncer_pools_sv_active{{{NS}}})", "server active")]),
            _panel("WAL archiving", [(f"max(cnpg_pg_stat_archiver_seconds_since_last_archival{{{NS}}})", "seconds since last archive"),
                                     (f"sum(increase(cnpg_pg_stat_archiver_failed_count{{{NS}}}[1h]))", "failures (1h)")]),
        ]),
        "kubechat-redis": dashboard("kubechat-redis", "KubeChat / Cache", [
            _panel("Up", [(f'max(redis_up{{{NS},job="kubechat-redis"}})', "up")], kind="stat", width=6),
            _panel("Memory used / max", [(f'max(redis_memory_used_bytes{{{NS}}})', "used"), (f'max(redis_memory_max_bytes{{{NS}}})', "max")], unit="bytes", width=18),
            _panel("Commands per second", [(f"sum(rate(redis_commands_processed_total{{{NS}}}[5m]))", "commands")], unit="ops"),
            _panel("Hit ratio", [(f"sum(rate(redis_keyspace_hits_total{{{NS}}}[5m])) / (sum(rate(redis_keyspace_hits_total{{{NS}}}[5m])) + sum(rate(redis_keyspace_misses_total{{{NS}}}[5m])))", "hits")], unit="percentunit"),
            _panel("Clients", [(f"max(redis_connected_clients{{{NS}}})", "clients")]),
        ]),
        "kubechat-backups": dashboard("kubechat-backups", "KubeChat / Backups and drills", [
            _panel("Hours since last base backup", [(f"(time() - max(barman_cloud_cloudnative_pg_io_last_available_backup_timestamp{{{NS}}})) / 3600", "hours")], kind="stat", width=8),
            _panel("Hours since last logical backup", [(f'(time() - max(kube_cronjob_status_last_successful_time{{{NS},cronjob="kubechat-logical-backup"}})) / 3600', "hours")], kind="stat", width=8),
            _panel("Days since last restore drill", [(f'(time() - max(kube_cronjob_status_last_successful_time{{{NS},cronjob="kubechat-restore-drill"}})) / 86400', "days")], kind="stat", width=8),
            _panel("Recovery window (hours back PITR can reach)", [(f"(time() - max(barman_cloud_cloudnative_pg_io_first_recoverability_point{{{NS}}})) / 3600", "hours")]),
            _panel("Failed backup and drill jobs", [(f'sum by (job_name) (kube_job_status_failed{{{NS},job_name=~"kubechat-(logical-backup|restore-drill)-.*"}})', "{{job_name}}")]),
        ]),
        "kubechat-certificates": dashboard("kubechat-certificates", "KubeChat / Certificates", [
            _panel("Days until expiry", [(f"(min by (name) (certmanager_certificate_expiration_timestamp_seconds{{{NS}}}) - time()) / 86400", "{{name}}")], kind="stat"),
            _panel("Ready", [(f'max by (name) (certmanager_certificate_ready_status{{{NS},condition="True"}})', "{{name}}")], kind="stat"),
        ]),
    }


def dashboard_json(board: dict) -> str:
    return json.dumps(board, indent=2, sort_keys=True)
