"""The metrics tier: the real Prometheus Operator configures a real Prometheus from the rendered monitors
and rules and the platform's Prometheus settings (tests/testbed/prometheus_operator.py); stand-in exporters
(tests/testbed/exporters.py) serve staging's series as a healthy environment's and production's
as a broken one's, for the addresses kwok gave their pods (through a proxy on loopback). Started once
for tests/metrics."""
from __future__ import annotations

import time

import pytest

from testbed import exporters as ex
from testbed.controlplane import ControlPlane
from kubechat_tools.manifests import load_dir
from testbed.prometheus_operator import (BUILD_TIMES, PLATFORM_EXPORTERS, Operator,
                                    binaries, generated_configuration, local_configuration,
                                    operator_crds, operator_version, platform_monitors, platform_pin, prometheus_version,
                                    platform_prometheus, stand_in_pod)
from kubechat_tools.manifests import pod_template
from kubechat_tools.netpol import OPERATOR_PODS
from kubechat_tools.paths import DIST
from testbed.alertmanager import Alertmanager, rendered_config, with_local_secrets
from testbed.loopback import WebhookReceiver
from testbed.prometheus import Prometheus

PROFILES = {"staging": "good", "production": "bad"}
WITHOUT_EXCLUSIONS = "without-exclusions"
"""A second Prometheus object, without excludedFromEnforcement: the platform before the review."""
CANARY_HASH = "6d4f8b7c9"
"""The rollouts-pod-template-hash of the stand-in API pods (a canary's, as Argo Rollouts labels them)."""
TIMINGS: dict[str, float] = {}
MONITORING_KINDS = ("Namespace", "Service", "ServiceMonitor", "PodMonitor", "PrometheusRule")


def pytest_terminal_summary(terminalreporter):
    if "ready" not in TIMINGS:
        return
    built = ", ".join(f"{m} {s:.0f} s" for m, s in BUILD_TIMES.items()) or "cached"
    pin, used = platform_pin(), operator_version()
    terminalreporter.write_line(
        f"metrics tier: Prometheus Operator {used} (the platform pins {pin}"
        + ("" if used == pin else f"; this tier runs {used}, not the pin") + f"); binaries {built}; "
        f"configuration generated and every target up in {TIMINGS['ready']:.0f} s")
    terminalreporter.write_line(f"metrics tier: Prometheus {prometheus_version()} (tools/prometheus); kube-prometheus-stack "
                                "88.3.0 ships v3.13.2: rules and relabeling are evaluated by this version, not the chart's")
    terminalreporter.write_line("metrics tier stand-ins: exporters serving the real exporters' series "
                                "(KubeChat's API, redis_exporter, CloudNativePG and its barman-cloud plugin, PgBouncer, "
                                "kube-state-metrics, cert-manager, Trivy Operator, Traefik); CloudNativePG's pods as kwok pods")


def renders() -> dict[str, list[dict]]:
    return {env: load_dir(DIST / "rendered" / env) for env in PROFILES}


def environment_objects(env: str, docs: list[dict]) -> tuple[list[dict], list[tuple[dict, str]]]:
    """What the environment's monitoring needs on the cluster: its Namespace, Services, monitors and rules as
    rendered, and a pod for each workload the monitors select (the workloads' own pod labels and ports; the
    database's and pooler's as CloudNativePG labels them). Returns (objects, [(pod, page role)])."""
    objects = [d for d in docs if d["kind"] in MONITORING_KINDS]
    namespace = next(d["metadata"]["name"] for d in docs if d["kind"] == "Namespace")
    pods = []
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet") and doc["metadata"]["name"] in ("kubechat-api", "kubechat-redis"):
            template = pod_template(doc)
            ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
                     if "name" in p}
            labels = dict(template["metadata"]["labels"])
            if doc["metadata"]["name"] == "kubechat-api":  # as Argo Rollouts labels a canary's pods
                labels["rollouts-pod-template-hash"] = CANARY_HASH
            pod = stand_in_pod(f"{doc['metadata']['name']}-0", namespace, labels, ports)
            pods.append((pod, "api" if doc["metadata"]["name"] == "kubechat-api" else "redis"))
        elif doc["kind"] in OPERATOR_PODS and doc["apiVersion"].startswith("postgresql.cnpg.io/"):
            labels, ports = OPERATOR_PODS[doc["kind"]](doc)[""]
            count = doc["spec"].get("instances", 1)
            for index in range(1, count + 1):
                role = "cnpg" if doc["kind"] == "Cluster" else "pgbouncer"
                pod = stand_in_pod(f"{doc['metadata']['name']}-{index}", namespace, labels, ports)
                pods.append((pod, role))
    return objects, pods


@pytest.fixture(scope="package")
def plane():
    plane = ControlPlane.start()
    try:
        plane.install_crds(operator_crds())
        yield plane
    finally:
        plane.stop()


def pod_address(plane: ControlPlane, namespace: str, name: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ip = plane.kubectl("get", "pod", name, "-n", namespace, "-o", "jsonpath={.status.podIP}", check=False).stdout
        if ip:
            return ip
        time.sleep(0.5)
    raise RuntimeError(f"pod {namespace}/{name} got no address from kwok in {timeout:.0f} s")


@pytest.fixture(scope="package")
def prometheus(plane, tmp_path_factory):
    """The operator's configuration loaded by a real Prometheus, every target scraped at least once."""
    started = time.monotonic()
    folder = binaries()
    docs = renders()
    platform_namespaces = sorted({e["namespace"] for e in PLATFORM_EXPORTERS.values()})
    plane.apply_docs([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in platform_namespaces])
    plane.apply_docs(platform_monitors() + [platform_prometheus(),
                                            platform_prometheus(WITHOUT_EXCLUSIONS, exclusions=False)])
    environments = {env: ex.Environment(namespace=f"kubechat-{env}", profile=profile, started=time.time())
                    for env, profile in PROFILES.items()}
    served: list[tuple[dict, object]] = []
    for env, env_docs in docs.items():
        objects, pods = environment_objects(env, env_docs)
        plane.apply_docs([d for d in objects if d["kind"] == "Namespace"])
        plane.apply_docs([d for d in objects if d["kind"] != "Namespace"] + [pod for pod, _ in pods])
        state = environments[env]
        pages = {"api": lambda s=state: ex.api_page(s), "redis": lambda s=state: ex.redis_page(s),
                 "cnpg": lambda s=state: ex.cnpg_instance_page(s, "kubechat-db"),
                 "pgbouncer": lambda s=state: ex.pgbouncer_page(s)}
        served += [(pod, pages[role]) for pod, role in pods]
    everyone = list(environments.values())
    platform_pages = {"kube-state-metrics": lambda: ex.kube_state_metrics_page(everyone),
                      "cert-manager": lambda: ex.cert_manager_page(everyone),
                      "trivy-operator": lambda: ex.trivy_page(everyone),
                      "traefik-metrics": lambda: ex.traefik_page(everyone)}
    served += [(d, platform_pages[d["metadata"]["name"].removesuffix("-0")]) for d in platform_monitors()
               if d["kind"] == "Pod"]
    servers = ex.Exporters()
    operator = Operator(binary=folder / "operator", workdir=tmp_path_factory.mktemp("operator"),
                        kubeconfig=plane.kubeconfig).start()
    server = alertmanager = webhook = None
    try:
        for pod, page in served:
            address = pod_address(plane, pod["metadata"]["namespace"], pod["metadata"]["name"])
            for port in pod["spec"]["containers"][0]["ports"]:
                servers.serve(address, port["containerPort"], page)
        config, rules = generated_configuration(plane)
        operator.check_running()
        # The platform's Alertmanager routing, its receivers' addresses pointing at a webhook on loopback.
        webhook = WebhookReceiver()
        alert_dir = tmp_path_factory.mktemp("alertmanager")
        routing = with_local_secrets(rendered_config(), alert_dir / "secrets",
                                     {"pages-url": f"{webhook.url}/pages", "tickets-url": f"{webhook.url}/tickets"})
        alertmanager = Alertmanager(binary=folder / "alertmanager", workdir=alert_dir / "server").start(routing)
        workdir = tmp_path_factory.mktemp("prometheus")
        server = Prometheus(binary=folder / "prometheus", workdir=workdir)
        server.start(local_configuration(config, plane, workdir / "rules", servers.proxy_url, alertmanager.address),
                     rules)
        wait_for_targets(server, expected=len(served))
        TIMINGS["ready"] = time.monotonic() - started
        server.context = {"plane": plane, "binaries": folder, "proxy_url": servers.proxy_url, "served": len(served),
                          "webhook": webhook, "alertmanager": alertmanager}
        yield server
    finally:
        if server:
            server.stop()
        if alertmanager:
            alertmanager.stop()
        if webhook:
            webhook.stop()
        operator.stop()
        servers.stop()


@pytest.fixture(scope="package")
def prometheus_without_exclusions(prometheus, tmp_path_factory):
    """The same cluster and exporters seen through the operator's configuration for a Prometheus object
    without excludedFromEnforcement."""
    context = prometheus.context
    config, rules = generated_configuration(context["plane"], WITHOUT_EXCLUSIONS)
    workdir = tmp_path_factory.mktemp("prometheus-without-exclusions")
    server = Prometheus(binary=context["binaries"] / "prometheus", workdir=workdir)
    try:
        server.start(local_configuration(config, context["plane"], workdir / "rules", context["proxy_url"]), rules)
        wait_for_targets(server, expected=context["served"])
        yield server
    finally:
        server.stop()


def wait_for_targets(server: Prometheus, expected: int, timeout: float = 180) -> None:
    """Every active target scraped successfully (the first scrape of a 30 s interval can take that long)."""
    deadline = time.monotonic() + timeout
    targets = []
    while time.monotonic() < deadline:
        server.check_running()
        targets = server.api("targets")["activeTargets"]
        if len(targets) >= expected and all(t["health"] == "up" for t in targets):
            return
        time.sleep(2)
    summary = "\n".join(f"  {t['labels'].get('job')} {t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}"
                        for t in targets)
    raise RuntimeError(f"{len(targets)} targets (expected {expected}), not all up in {timeout:.0f} s:\n{summary}\n"
                       f"{server.log_tail('prometheus')}")
