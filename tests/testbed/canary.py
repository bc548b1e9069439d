"""The canary's measurements for the delivery tier: a real Prometheus server (tools/prometheus, built with
the delivery binaries) on loopback scraping a traffic exporter that serves the series KubeChat's API exports
(names and labels from constructs/kubechat_deploy/observability/metrics_catalog.py, labels as they are after
the ServiceMonitors' relabeling). The API's, per pod-template hash, with a behaviour the test chooses:

- healthy: 20 requests/s, all 2xx, answered within 0.1 s;
- errors: a fifth of the requests answer 5xx;
- slow: every request takes between 1 and 2.5 s;
- silent: no series at all (the pods receive no traffic, or nothing scrapes them).

The web front end's series are not emulated: they are the real Traefik's (testbed.traefik, fed by
testbed.web_traffic), which the same Prometheus scrapes (`traefik_metrics_port`).

The Rollouts controller then queries that Prometheus with the rendered AnalysisTemplates' own queries
(the test points their address at it)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from testbed.exporters import send_metrics_page
from testbed.loopback import LoopbackServer
from testbed.prometheus import Prometheus

PROFILES = ("healthy", "errors", "slow", "silent")
RATE = 20.0
"""Requests per second a pod-template hash receives."""
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class TrafficExporter(LoopbackServer):
    """Counters that grow with time, per (namespace, pod-template hash), as a /metrics page on loopback."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.profiles: dict[str, tuple[str, float]] = {}
        self.started = time.monotonic()
        self.lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                send_metrics_page(self, exporter.page())

            def log_message(self, *args):
                pass

        self._serve_in_background(ThreadingHTTPServer(("127.0.0.1", 0), Handler))

    def set(self, pod_hash: str, profile: str) -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile {profile!r}: allowed: {', '.join(PROFILES)}")
        with self.lock:
            if self.profiles.get(pod_hash, ("",))[0] != profile:  # counters restart only with a new behaviour
                self.profiles[pod_hash] = (profile, time.monotonic())

    def page(self) -> str:
        now = time.monotonic()
        lines = ["# TYPE kubechat_http_requests_total counter",
                 "# TYPE kubechat_http_request_duration_seconds histogram"]
        with self.lock:
            profiles = dict(self.profiles)
        for pod_hash, (profile, since) in sorted(profiles.items()):
            if profile == "silent":
                continue
            total = RATE * (now - since)
            errors = total * 0.2 if profile == "errors" else 0.0
            ok = total - errors
            labels = f'namespace="{self.namespace}",rollouts_pod_template_hash="{pod_hash}"'
            lines.append(f'kubechat_http_requests_total{{{labels},code="200",method="GET",route="/api/clusters"}} {ok:.3f}')
            lines.append(f'kubechat_http_requests_total{{{labels},code="503",method="GET",route="/api/clusters"}} {errors:.3f}')
            fastest = 1.0 if profile == "slow" else 0.05
            for le in BUCKETS:
                count = total if le >= fastest else 0.0
                lines.append(f'kubechat_http_request_duration_seconds_bucket{{{labels},route="/api/clusters",le="{le}"}} {count:.3f}')
            lines.append(f'kubechat_http_request_duration_seconds_bucket{{{labels},route="/api/clusters",le="+Inf"}} {total:.3f}')
            lines.append(f'kubechat_http_request_duration_seconds_count{{{labels},route="/api/clusters"}} {total:.3f}')
        return "\n".join(lines) + "\n"


@dataclass(kw_only=True)
class PrometheusServer(Prometheus):
    """The canary's Prometheus: scrapes the traffic exporter and Traefik's metrics entry point every second;
    `stop()` ends exactly it."""

    exporter_port: int
    traefik_metrics_port: int

    def start(self) -> "PrometheusServer":  # type: ignore[override]
        # The jobs are named like the ServiceMonitors' jobs, so the queries' job="kubechat-api" matches.
        super().start({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "kubechat-api", "honor_labels": True,
                                "static_configs": [{"targets": [f"127.0.0.1:{self.exporter_port}"]}]},
                               {"job_name": "traefik",
                                "static_configs": [{"targets": [f"127.0.0.1:{self.traefik_metrics_port}"]}]}]})
        return self
