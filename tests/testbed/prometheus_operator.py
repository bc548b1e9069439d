"""The metrics tier (tests/metrics, `make metrics-test`): the real Prometheus Operator turns the rendered
ServiceMonitors, PodMonitors and PrometheusRules, and the Prometheus settings the platform installs
(enforcedNamespaceLabel, excludedFromEnforcement), into Prometheus' configuration; a real Prometheus
loads that configuration and scrapes stand-in exporters on loopback addresses.

- The Prometheus Operator at the platform's pin (kubechat_deploy.versions: kube-prometheus-stack 88.3.0
  ships v0.93.0, served by the Go module proxy: tools/prometheus-operator) and Prometheus
  (tools/prometheus), built into .cache/metrics/<pin hash>/.
- The control plane's kwok gives pods addresses; the Services' EndpointSlices and the PodMonitors' pod
  discovery point at them, and Prometheus scrapes each through the stand-in exporters' proxy on
  loopback (the API server refuses loopback addresses in EndpointSlices, so pods cannot have them).
- The Prometheus object is the one kube-prometheus-stack renders from the platform's values
  (dist/platform/prerequisites); the platform's own exporters (kube-state-metrics, cert-manager, Trivy)
  come with the ServiceMonitors their charts render (platform_monitors()).
- The operator's output (the Secret prometheus-<name> with prometheus.yaml.gz and the rule ConfigMaps)
  is what the Prometheus server loads, after the step the operator's config-reloader sidecar performs
  (its $(SHARD) and $(POD_NAME) expanded). Only how it reaches the API server changes (the operator
  writes in-cluster service discovery; the test adds the test API server's address, CA and token) and
  where the rule files are; every relabeling and rule is the operator's.
"""
from __future__ import annotations

import base64
import gzip
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kubechat_deploy.versions import OPERATORS

from testbed.controlplane import ADMIN_TOKEN, ControlPlane, ProcessGroup, build, free_port
from testbed.argocd import go_module_dir, go_module_version
from kubechat_tools.paths import CACHE, DIST

OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"
MODULES = {
    "prometheus-operator": [(f"{OPERATOR_MODULE}/cmd/operator", "operator")],
    "prometheus": [("github.com/prometheus/prometheus/cmd/prometheus", "prometheus")],
    "alertmanager": [("github.com/prometheus/alertmanager/cmd/alertmanager", "alertmanager")],
}
MONITORING_NAMESPACE = "monitoring"
RELEASE = "kube-prometheus-stack"
PROMETHEUS_NAME = f"{RELEASE}-prometheus"
BUILD_TIMES: dict[str, float] = {}


def operator_version() -> str:
    """The version tools/prometheus-operator builds, for the test summary."""
    return go_module_version("prometheus-operator", OPERATOR_MODULE)


def prometheus_version() -> str:
    """The Prometheus release tools/prometheus builds (module v0.3XX.Y is release v3.XX.Y)."""
    minor, patch = go_module_version("prometheus", "github.com/prometheus/prometheus").removeprefix("v0.").split(".")[:2]
    return f"v{int(minor) // 100}.{int(minor) % 100}.{patch}"


def platform_pin() -> str:
    return next(o.version for o in OPERATORS if o.name == "kube-prometheus-stack")


ALERTMANAGER_UI = {"github.com/prometheus/alertmanager/ui/app/dist/index.html":
                   "<!doctype html><title>Alertmanager</title><p>The metrics tier's build: no web UI.</p>\n"}
"""Alertmanager v0.33.1 embeds its compiled web UI (ui/web.go: //go:embed app/dist), which its release build
generates and its module zip lacks: a page in its place (the tier uses only the API and the notifiers)."""


def binaries() -> Path:
    return build(CACHE / "metrics", MODULES, None, BUILD_TIMES, vendored={"alertmanager": ALERTMANAGER_UI})


def operator_crds() -> list[dict]:
    """The monitoring.coreos.com CRDs shipped in the operator's own module at the version built."""
    folder = go_module_dir("prometheus-operator", OPERATOR_MODULE) / "example" / "prometheus-operator-crd"
    return [yaml.load(path.read_text(), Loader=_CrdLoader) for path in sorted(folder.glob("monitoring.coreos.com_*.yaml"))]


class _CrdLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML resolves a bare `=` (an enum value of the relabeling action in these CRDs) to YAML 1.1's
    "value" type, which it cannot construct: it is the string "="."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def platform_values() -> dict:
    """kube-prometheus-stack's Helm values as the platform renders them (dist/platform/prerequisites)."""
    app = yaml.safe_load((DIST / "platform" / "prerequisites" / f"application-platform-{RELEASE}.yaml").read_text())
    return app["spec"]["source"]["helm"]["valuesObject"]


def platform_prometheus(name: str = PROMETHEUS_NAME, exclusions: bool = True) -> dict:
    """The Prometheus object kube-prometheus-stack 88.3.0 renders from the platform's values, reduced to
    the fields that decide what is scraped and how it is labelled (prometheus-community/helm-charts
    charts/kube-prometheus-stack/templates/prometheus/prometheus.yaml at 54199b5b: the *NilUsesHelmValues
    false values render empty selectors, i.e. every monitor and rule of every namespace;
    enforcedNamespaceLabel and excludedFromEnforcement are copied as given). exclusions=False leaves
    excludedFromEnforcement out: the configuration the platform had before the review that added it."""
    spec = platform_values()["prometheus"]["prometheusSpec"]
    selectors = {}
    for kind, nil_uses_helm in (("serviceMonitor", "serviceMonitorSelectorNilUsesHelmValues"),
                                ("podMonitor", "podMonitorSelectorNilUsesHelmValues"),
                                ("rule", "ruleSelectorNilUsesHelmValues")):
        selectors[f"{kind}Selector"] = {"matchLabels": {"release": RELEASE}} if spec.get(nil_uses_helm, True) else {}
        selectors[f"{kind}NamespaceSelector"] = {}
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": name, "namespace": MONITORING_NAMESPACE},
            "spec": {**selectors, "replicas": 1, "serviceAccountName": PROMETHEUS_NAME,
                     "enforcedNamespaceLabel": spec["enforcedNamespaceLabel"],
                     **({"excludedFromEnforcement": spec["excludedFromEnforcement"]} if exclusions else {})}}


# The platform's exporters, with the Service and ServiceMonitor their charts render (the fields that decide
# the series' labels: the job label, honorLabels, the port), and a pod for each.
PLATFORM_EXPORTERS = {
    # prometheus-community/helm-charts at 54199b5b: charts/kube-state-metrics 8.2.0
    # templates/servicemonitor.yaml (jobLabel app.kubernetes.io/name, port http) and templates/service.yaml
    # (port http 8080); charts/kube-prometheus-stack/values.yaml kube-state-metrics.prometheus.monitor.http
    # .honorLabels true (the series keep the namespace of the object they describe).
    "kube-state-metrics": {"namespace": MONITORING_NAMESPACE, "port": ("http", 8080), "honor_labels": True,
                           "job_label": "app.kubernetes.io/name",
                           "labels": {"app.kubernetes.io/name": "kube-state-metrics",
                                      "app.kubernetes.io/instance": RELEASE, "release": RELEASE}},
    # cert-manager v1.21.1 deploy/charts/cert-manager/templates/servicemonitor.yaml (jobLabel
    # app.kubernetes.io/name, targetPort http-metrics 9402) with the platform's honorLabels: true.
    "cert-manager": {"namespace": "cert-manager", "port": ("http-metrics", 9402), "honor_labels": True,
                     "job_label": "app.kubernetes.io/name",
                     "labels": {"app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/instance": "cert-manager",
                                "app.kubernetes.io/component": "controller"}},
    # aquasecurity/trivy-operator deploy/helm templates/monitor/servicemonitor.yaml (port metrics) with the
    # platform's serviceMonitor.honorLabels: true.
    "trivy-operator": {"namespace": "trivy-system", "port": ("metrics", 8080), "honor_labels": True, "job_label": None,
                       "labels": {"app.kubernetes.io/name": "trivy-operator",
                                  "app.kubernetes.io/instance": "trivy-operator"}},
    # traefik chart 41.6.0 templates/servicemonitor.yaml and service-metrics.yaml: the metrics Service
    # (port metrics, 9100) selected by the pods' labels, jobLabel the release's name, and the platform's
    # honorLabels: true, so Traefik's own `service` label (what the web canary and dashboard query) stays.
    "traefik-metrics": {
        "namespace": "traefik", "port": ("metrics", 9100), "honor_labels": True, "job_label": "traefik",
        "labels": {"app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": "traefik-traefik"}},
}


def platform_monitors() -> list[dict]:
    docs = []
    for name, exporter in PLATFORM_EXPORTERS.items():
        ns, (port_name, port), labels = exporter["namespace"], exporter["port"], exporter["labels"]
        docs += [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": labels},
             "spec": {"selector": labels, "ports": [{"name": port_name, "port": port, "targetPort": port_name}]}},
            {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
             "metadata": {"name": name, "namespace": ns, "labels": labels},
             "spec": {**({"jobLabel": exporter["job_label"]} if exporter["job_label"] else {}),
                      "selector": {"matchLabels": labels},
                      "endpoints": [{"port": port_name, **({"honorLabels": True} if exporter["honor_labels"] else {})}]}},
            stand_in_pod(f"{name}-0", ns, labels, {port_name: port}),
        ]
    return docs


def stand_in_pod(name: str, namespace: str, labels: dict, ports: dict[str, int]) -> dict:
    """A pod kwok runs (scheduled on a fake node, given a loopback address), restricted-compliant."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"automountServiceAccountToken": False,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "exporter", "image": "registry.invalid/stand-in:1",
                                     "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports.items()],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi", "ephemeral-storage": "16Mi"},
                                                   "limits": {"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "64Mi"}},
                                     "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                         "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}}]}}


@dataclass
class Operator(ProcessGroup):
    """The Prometheus Operator on the control plane; `stop()` ends exactly it."""

    binary: Path
    workdir: Path
    kubeconfig: Path
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self) -> "Operator":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.spawn("operator", [str(self.binary), f"--web.listen-address=127.0.0.1:{free_port()}", "--log-level=info",
                                # No kubelet Endpoints: no kubelet is scraped here.
                                "--kubelet-service=", "--kubelet-endpoints=false"],
                   {**os.environ, "KUBECONFIG": str(self.kubeconfig)})
        return self


def generated_configuration(plane: ControlPlane, name: str = PROMETHEUS_NAME,
                            timeout: float = 120) -> tuple[dict, dict[str, str]]:
    """The operator's Prometheus configuration (Secret prometheus-<name>, prometheus.yaml.gz) and its rule
    files (ConfigMaps prometheus-<name>-rulefiles-N: file name -> content), once the configuration has
    every monitor's job."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        result = plane.kubectl("get", "secret", f"prometheus-{name}", "-n", MONITORING_NAMESPACE,
                               "-o", "json", check=False)
        if result.returncode == 0:
            data = json.loads(result.stdout)["data"]
            config = yaml.safe_load(gzip.decompress(base64.b64decode(data["prometheus.yaml.gz"])))
            maps = json.loads(plane.kubectl("get", "configmap", "-n", MONITORING_NAMESPACE, "-o", "json").stdout)
            prefix = f"prometheus-{name}-rulefiles-"
            rules = {file: content for cm in maps["items"] if cm["metadata"]["name"].startswith(prefix)
                     for file, content in (cm.get("data") or {}).items()}
            if config.get("scrape_configs") and rules:
                return config, rules
            last = f"{len(config.get('scrape_configs') or [])} scrape configs, {len(rules)} rule files"
        time.sleep(1)
    raise RuntimeError(f"the operator wrote no complete configuration in {timeout:.0f} s ({last or 'no Secret'})")


RELOADER_ENV = {"SHARD": "0", "POD_NAME": f"prometheus-{PROMETHEUS_NAME}-0"}
"""What the operator's config-reloader sidecar of shard 0's first pod has in its environment
(prometheus-operator v0.93.0 pkg/operator/config_reloader.go: ShardEnvVar, PodNameEnvVar)."""


def reloader_expand(config: dict, env: dict[str, str] = RELOADER_ENV) -> dict:
    """The config-reloader's --config-envsubst-file step: every $(NAME) replaced by that environment
    variable (an unknown one is an error, as in thanos' pkg/reloader). Without it the shard's relabeling
    (`keep` where $(SHARD) is 0) drops every target."""
    text = json.dumps(config)
    missing = sorted(set(re.findall(r"\$\(([A-Za-z_0-9]+)\)", text)) - set(env))
    if missing:
        raise RuntimeError(f"the operator's configuration references unknown variables {missing}")
    return json.loads(re.sub(r"\$\(([A-Za-z_0-9]+)\)", lambda m: env[m.group(1)], text))


def local_configuration(config: dict, plane: ControlPlane, rules_dir: Path, proxy_url: str,
                        alertmanager: str | None = None) -> dict:
    """The operator's configuration, run outside the cluster: service discovery reaches the test API server
    (its address, CA and an admin token instead of the in-cluster ones), every scrape goes through the
    stand-in exporters' loopback proxy (targets keep their pod address:port as __address__ and instance),
    and the rule files are read from `rules_dir`. Relabelings, scrape settings and rules are the
    operator's, untouched."""
    kubeconfig = yaml.safe_load(plane.kubeconfig.read_text())
    cluster = kubeconfig["clusters"][0]["cluster"]
    config = reloader_expand(config)
    for job in config.get("scrape_configs", []):
        job["proxy_url"] = proxy_url
        for sd in job.get("kubernetes_sd_configs", []):
            sd["api_server"] = cluster["server"]
            sd["tls_config"] = {"ca_file": cluster["certificate-authority"]}
            sd["authorization"] = {"credentials": ADMIN_TOKEN}
    config["rule_files"] = [str(rules_dir / "*.yaml")]
    # The Alertmanager the tier runs on loopback (alertmanager.py), in place of the operator's discovery of the
    # chart's Alertmanager Service; without one, alerts are read from Prometheus itself.
    config.pop("alerting", None)
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"api_version": "v2", "static_configs": [{"targets": [alertmanager]}]}]}
    return config
