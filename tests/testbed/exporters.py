"""Stand-in exporters for the metrics tier: /metrics pages with the series the real exporters serve (names
from constructs/kubechat_deploy/observability/metrics_catalog.py, labels as each exporter writes them before any
scrape relabeling), one per pod address and port kwok gave the exporter's pod, answered through a
proxy on loopback (Exporters).

Each environment is "good" or "bad": a bad environment's series break every alert family (errors and
latency over budget, crash-looping pods, a down database and cache, failed and stale backups, a failing
migration and sync, an expiring certificate, a critical vulnerability); a good one's break none.

Labels of the series the platform's exporters describe per object (kube-state-metrics, cert-manager,
Trivy) carry the object's namespace themselves; their ServiceMonitors keep it (honorLabels)."""
from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from testbed.loopback import LoopbackServer

PROFILES = ("good", "bad")
HOUR = 3600.0


def _line(name: str, labels: dict, value: float) -> str:
    text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{text}}} {value:.6f}" if text else f"{name} {value:.6f}"


@dataclass
class Environment:
    namespace: str
    profile: str
    started: float

    @property
    def bad(self) -> bool:
        return self.profile == "bad"

    def elapsed(self) -> float:
        return time.time() - self.started


def api_page(env: Environment) -> list[str]:
    """KubeChat's API (docs/app-contract.md): request counters and latency histogram per route."""
    total = 10.0 * env.elapsed()
    errors = total * 0.5 if env.bad else 0.0
    slowest = 1.0 if env.bad else 0.05
    lines = [_line("kubechat_http_requests_total", {"code": "200", "method": "GET", "route": "/api/clusters"}, total - errors),
             _line("kubechat_http_requests_total", {"code": "503", "method": "GET", "route": "/api/clusters"}, errors)]
    for le in ("0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"):
        count = total if le == "+Inf" or float(le) >= slowest else 0.0
        lines.append(_line("kubechat_http_request_duration_seconds_bucket", {"route": "/api/clusters", "le": le}, count))
    lines.append(_line("kubechat_http_request_duration_seconds_count", {"route": "/api/clusters"}, total))
    lines += [_line("kubechat_chat_streams_active", {}, 3), _line("kubechat_db_pool_connections", {"state": "in_use"}, 4),
              _line("go_goroutines", {}, 40), _line("process_cpu_seconds_total", {}, env.elapsed() * 0.1),
              _line("process_resident_memory_bytes", {}, 64e6)]
    return lines


def redis_page(env: Environment) -> list[str]:
    """oliver006/redis_exporter's series for the Valkey sidecar."""
    return [_line("redis_up", {}, 0 if env.bad else 1),
            _line("redis_memory_used_bytes", {}, 120e6 if env.bad else 10e6),
            _line("redis_memory_max_bytes", {}, 128e6),
            _line("redis_connected_clients", {}, 5),
            _line("redis_commands_processed_total", {}, 100 * env.elapsed()),
            _line("redis_keyspace_hits_total", {}, 90 * env.elapsed()),
            _line("redis_keyspace_misses_total", {}, 10 * env.elapsed())]


def cnpg_instance_page(env: Environment, cluster: str) -> list[str]:
    """CloudNativePG's instance manager (its default monitoring queries) and the barman-cloud plugin's series."""
    now = time.time()
    return [_line("cnpg_collector_up", {"cluster": cluster}, 0 if env.bad else 1),
            _line("cnpg_pg_replication_lag", {}, 120 if env.bad else 0),
            _line("cnpg_pg_stat_archiver_failed_count", {}, 7 if env.bad else 0),
            _line("cnpg_pg_stat_archiver_seconds_since_last_archival", {}, 3600 if env.bad else 20),
            _line("cnpg_pg_stat_archiver_last_archived_time", {}, now - (HOUR if env.bad else 20)),
            _line("cnpg_pg_stat_archiver_last_failed_time", {}, now if env.bad else now - 2 * HOUR),
            _line("cnpg_backends_total", {"datname": "kubechat", "usename": "kubechat", "state": "active",
                                          "application_name": "kubechat-api"}, 6),
            _line("cnpg_pg_database_size_bytes", {"datname": "kubechat"}, 5e8),
            _line("cnpg_pg_settings_setting", {"name": "max_connections"}, 200),
            _line("barman_cloud_cloudnative_pg_io_last_available_backup_timestamp", {},
                  now - (30 * HOUR if env.bad else 2 * HOUR)),
            _line("barman_cloud_cloudnative_pg_io_first_recoverability_point", {}, now - 7 * 24 * HOUR)]


def pgbouncer_page(env: Environment) -> list[str]:
    labels = {"database": "kubechat", "user": "kubechat"}
    return [_line("cnpg_pgbouncer_pools_cl_active", labels, 8), _line("cnpg_pgbouncer_pools_cl_waiting", labels, 0),
            _line("cnpg_pgbouncer_pools_sv_active", labels, 4)]


def kube_state_metrics_page(envs: list[Environment]) -> list[str]:
    """kube-state-metrics: one target describing every namespace's objects."""
    now, lines = time.time(), []
    for env in envs:
        ns = {"namespace": env.namespace}
        pod = {**ns, "pod": "kubechat-api-5d9c7b-abcde", "container": "api"}
        lines += [
            _line("kube_namespace_labels", ns, 1),
            _line("kube_pod_container_status_waiting_reason", {**pod, "reason": "CrashLoopBackOff"}, 1 if env.bad else 0),
            _line("kube_pod_container_status_restarts_total", pod, 10 * env.elapsed() / 60 if env.bad else 0),
            _line("kube_pod_status_ready", {**ns, "pod": pod["pod"], "condition": "true"}, 0 if env.bad else 1),
            _line("kube_deployment_spec_replicas", {**ns, "deployment": "kubechat-api"}, 2),
            _line("kube_deployment_status_replicas_available", {**ns, "deployment": "kubechat-api"}, 1 if env.bad else 2),
        ]
        for hpa in ("kubechat-api", "kubechat-web"):
            labels = {**ns, "horizontalpodautoscaler": hpa}
            lines += [_line("kube_horizontalpodautoscaler_spec_max_replicas", labels, 4),
                      _line("kube_horizontalpodautoscaler_status_current_replicas", labels, 4 if env.bad else 2)]
        for pdb in ("kubechat-api", "kubechat-web"):
            labels = {**ns, "poddisruptionbudget": pdb}
            lines += [_line("kube_poddisruptionbudget_status_pod_disruptions_allowed", labels, 0 if env.bad else 1),
                      _line("kube_poddisruptionbudget_status_expected_pods", labels, 2)]
        web = {**ns, "pod": "kubechat-web-7f8d9c-fghij", "container": "web"}
        lines.append(_line("kube_pod_container_status_restarts_total", web, 0))
        for cronjob, scheduled_ago in (("kubechat-logical-backup", 2 * HOUR), ("kubechat-restore-drill", 3 * HOUR)):
            labels = {**ns, "cronjob": cronjob}
            succeeded_ago = 30 * HOUR if env.bad else scheduled_ago - 60
            lines += [_line("kube_cronjob_status_last_schedule_time", labels, now - scheduled_ago),
                      _line("kube_cronjob_status_last_successful_time", labels, now - succeeded_ago),
                      _line("kube_cronjob_status_active", labels, 0),  # the last run has ended
                      # the Job of the last run (CronJob-created Jobs are named <cronjob>-<scheduled minute>)
                      _line("kube_job_status_failed", {**ns, "job_name": f"{cronjob}-29412345"}, 1 if env.bad else 0)]
        # The migration: one failed pod in both (the healthy one succeeded on its second attempt); only the bad
        # environment's Job has the Failed condition, which kube-state-metrics reports as one series per status.
        migrate = {**ns, "job_name": "kubechat-migrate"}
        lines.append(_line("kube_job_status_failed", migrate, 1))
        if env.bad:
            lines += [_line("kube_job_failed", {**migrate, "condition": status}, 1 if status == "true" else 0)
                      for status in ("true", "false", "unknown")]
        if env.bad:  # the SyncFail hook's Job exists only after a failed sync
            lines.append(_line("kube_job_created", {**ns, "job_name": "kubechat-sync-failed"}, now - 60))
    return lines


def cert_manager_page(envs: list[Environment]) -> list[str]:
    """cert-manager's controller: per Certificate (name, namespace, issuer)."""
    now, lines = time.time(), []
    for env in envs:
        cert = {"name": "kubechat-tls", "namespace": env.namespace, "issuer_name": "letsencrypt-production",
                "issuer_kind": "ClusterIssuer", "issuer_group": "cert-manager.io"}
        lines.append(_line("certmanager_certificate_expiration_timestamp_seconds", cert,
                           now + (24 * HOUR if env.bad else 60 * 24 * HOUR)))
        for condition in ("True", "False", "Unknown"):
            ready = (condition == "False") if env.bad else (condition == "True")
            lines.append(_line("certmanager_certificate_ready_status", {**cert, "condition": condition}, 1 if ready else 0))
    return lines


def trivy_page(envs: list[Environment]) -> list[str]:
    """Trivy Operator's vulnerability report series, per workload and severity."""
    lines = []
    for env in envs:
        report = {"namespace": env.namespace, "resource_kind": "ReplicaSet", "resource_name": "kubechat-api-5d9c7b",
                  "container_name": "api", "image_registry": "ghcr.io", "image_repository": "kubechat/kubechat-api",
                  "image_tag": "1.0.0"}
        lines += [_line("trivy_image_vulnerabilities", {**report, "severity": "Critical"}, 2 if env.bad else 0),
                  _line("trivy_image_vulnerabilities", {**report, "severity": "High"}, 1)]
    return lines


def traefik_page(envs: list[Environment]) -> list[str]:
    """Traefik's requests per Service of the web's split (traefik v3.7.13 pkg/observability/metrics/prometheus.go:
    code, method, protocol, service; a TraefikService's Kubernetes Service named <namespace>-<name>-<port>@kubernetescrd)."""
    lines = []
    for env in envs:
        # A canary at 20% of the web's traffic: the stable pods answer well, the canary's do in the healthy
        # environment and fail half their requests in the broken one.
        for side, share, failing in (("stable", 0.8, 0.0), ("canary", 0.2, 0.5 if env.bad else 0.0)):
            total = 20.0 * share * env.elapsed()
            errors = total * failing
            request = {"method": "GET", "protocol": "http", "service": f"{env.namespace}-kubechat-web-{side}-http@kubernetescrd"}
            lines += [_line("traefik_service_requests_total", {**request, "code": "200"}, total - errors),
                      _line("traefik_service_requests_total", {**request, "code": "503"}, errors)]
            for le in ("0.1", "0.5", "1", "+Inf"):
                lines.append(_line("traefik_service_request_duration_seconds_bucket", {**request, "code": "200", "le": le},
                                   total - errors))
    return lines


def send_metrics_page(handler: BaseHTTPRequestHandler, text: str) -> None:
    """Answer a scrape with `text` in Prometheus' text exposition format."""
    body = text.encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain; version=0.0.4")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Exporters(LoopbackServer):
    """The stand-in exporters behind one HTTP proxy on loopback: Prometheus scrapes every target through it
    (its scrape configs get `proxy_url`), so a scrape of pod 10.x.y.z:port is answered here with that
    target's page and no packet leaves loopback. (Pods cannot have loopback addresses behind a Service:
    the API server refuses loopback EndpointSlice addresses.) `stop()` closes exactly this server."""

    def __init__(self) -> None:
        self.pages: dict[tuple[str, int], Callable[[], list[str]]] = {}
        exporters = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                target = urllib.parse.urlsplit(self.path)
                key = (target.hostname or "", target.port or 80)
                page = exporters.pages.get(key)
                if page is None or target.path != "/metrics":
                    self.send_error(404, f"no stand-in exporter at {target.netloc}{target.path}")
                    return
                send_metrics_page(self, "\n".join(page()) + "\n")

            def log_message(self, *args):
                pass

        self._serve_in_background(ThreadingHTTPServer(("127.0.0.1", 0), Handler))

    def serve(self, address: str, port: int, page: Callable[[], list[str]]) -> None:
        self.pages[(address, port)] = page

    @property
    def proxy_url(self) -> str:
        return self.url
