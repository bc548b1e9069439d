"""A cluster without a load-balancer provider (the tier's control plane has none) finishes the front door's
bootstrap once the site chooses NodePort (docs/platform.md "Clusters without a load balancer",
FrontDoorProps.service_type). The real Argo CD renders Traefik's real chart 41.6.0 with Helm 4.2.1 (the version
Argo CD v3.5.1 bundles, tests/testbed/helm.py) from the platform's rendered Application `platform-traefik`, and
assesses its health with its own checks; the real Traefik (tests/testbed/traefik.py) accepts the chart's
GatewayClass, as it does in a cluster.

- As rendered (LoadBalancer), the Application stays Progressing on Traefik's Service: gitops-engine
  (pkg/health/health_service.go, getServiceHealth) keeps a LoadBalancer Service without an ingress address
  Progressing, so platform-prerequisites would never turn Healthy.
- With the NodePort choice (the render's own traefik_exposure applied to the rendered values), it is Synced
  and Healthy, the Service a NodePort one on FrontDoorProps.node_ports.

What differs from the platform's Application: the chart is read from the tier's git remote (the Go module proxy
serves the chart repository as github.com/traefik/traefik-helm-chart v41.6.0+incompatible; no chart repository
is reachable here), and `helm.skipCrds` (the tier's control plane has the pinned CRDs already, which the chart's
copies must not replace)."""
from __future__ import annotations

import json
import os
import shutil
import stat
import time

import pytest
import yaml

from kubechat_deploy.platform.prerequisites import traefik_exposure
from kubechat_deploy.platform.props import FrontDoorProps
from kubechat_deploy.versions import TRAEFIK_NAMESPACE, operator
from kubechat_tools.crds import go_module_download
from kubechat_tools.paths import DIST
from testbed import helm, traefik

pytestmark = pytest.mark.delivery

APP = "platform-traefik"


@pytest.fixture(scope="module")
def accepting_gateway_classes(stack, delivery, tmp_path_factory):
    """The real Traefik, which accepts the GatewayClass `traefik` (Argo CD's GatewayClass health waits for it)."""
    with traefik.in_own_network(stack.plane, tmp_path_factory.mktemp("traefik")) as (proxy, _):
        yield proxy


def chart_in_remote(stack) -> str:
    """Traefik's chart at the pinned version, committed to the tier's git remote; its path there."""
    chart = go_module_download(f"github.com/traefik/traefik-helm-chart@v{operator('traefik').chart.version}+incompatible") / "traefik"
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["version"] == operator("traefik").chart.version
    target = stack.remote.work / "platform-charts" / "traefik"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(chart, target, copy_function=shutil.copyfile)
    for folder, _, _ in os.walk(target):  # the module cache is read-only
        os.chmod(folder, os.stat(folder).st_mode | stat.S_IWUSR)
    stack.remote._commit("traefik chart 41.6.0 for the front door test")
    return "platform-charts/traefik"


def application(stack, path: str) -> dict:
    app = yaml.safe_load((DIST / "platform" / "prerequisites" / f"application-{APP}.yaml").read_text())
    rendered = app["spec"]["source"]
    assert rendered["chart"] == "traefik" and rendered["targetRevision"] == operator("traefik").chart.version
    app["spec"]["source"] = {"repoURL": stack.remote.url, "path": path, "targetRevision": "main",
                             "helm": {**rendered["helm"], "skipCrds": True}}
    return app


def health_of(stack) -> tuple[str, dict, list[dict]]:
    """What `argocd app get platform-traefik -o json` shows an operator: the Application's health, its Service
    `traefik`, and every resource (Argo CD v3 keeps each resource's health in the resource tree, which
    argocd-server puts back into the answer: server/application/application.go inferResourcesStatusHealth)."""
    shown = stack.argocd_cli("app", "get", APP, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout).get("status") or {}
    resources = status.get("resources") or []
    service = next((r for r in resources if r["kind"] == "Service" and r["name"] == "traefik"), {})
    return (status.get("health") or {}).get("status", ""), service, resources


def test_the_front_door_turns_healthy_without_a_load_balancer_provider(stack, delivery, accepting_gateway_classes):
    stack.provide_tool(helm.binaries() / "helm")
    path = chart_in_remote(stack)
    app = application(stack, path)
    stack.plane.apply_docs([app])
    try:
        # As rendered: Traefik's LoadBalancer Service never gets an address here, and Argo CD waits on it.
        deadline = time.monotonic() + 240
        stack.start_api_server()
        while (health_of(stack)[1].get("health") or {}).get("status") != "Progressing":
            if time.monotonic() > deadline:
                status = stack.get("applications.argoproj.io", APP).get("status") or {}
                raise AssertionError(f"{APP}: no Progressing Service after 240 s: "
                                     + yaml.safe_dump({"resources": status.get("resources"), "health": status.get("health"),
                                                       "conditions": status.get("conditions")})[:6000]
                                     + f"\nrepo-server log:\n{stack.log_tail('argocd-repo-server', 15)}")
            time.sleep(2)
        for _ in range(10):  # and it stays so (nothing else is left to wait for)
            health, service, resources = health_of(stack)
            assert health == "Progressing" and service["health"]["status"] == "Progressing", (health, service)
            time.sleep(2)
        live = stack.get("services", "traefik", TRAEFIK_NAMESPACE)
        assert live["spec"]["type"] == "LoadBalancer" and not live["status"]["loadBalancer"].get("ingress")
        others = [r for r in resources if (r.get("health") or {}).get("status") not in (None, "Healthy")
                  and (r["kind"], r["name"]) != ("Service", "traefik")]
        assert not others, f"only the LoadBalancer Service should wait: {others}"

        # The NodePort choice, as the render makes it from the rendered values: Synced and Healthy.
        chosen = FrontDoorProps(service_type="NodePort")
        values = traefik_exposure(app["spec"]["source"]["helm"]["valuesObject"], chosen)
        stack.plane.kubectl("patch", "applications.argoproj.io", APP, "-n", "argocd", "--type", "merge", "-p",
                            yaml.safe_dump({"spec": {"source": {"helm": {"valuesObject": values}}}}))

        def healthy(state: dict) -> bool:
            status = state.get("status") or {}
            return (status.get("health") or {}).get("status") == "Healthy" and \
                (status.get("sync") or {}).get("status") == "Synced"
        stack.wait_app(APP, healthy, 240, "Synced and Healthy with NodePort")
        live = stack.get("services", "traefik", TRAEFIK_NAMESPACE)
        assert live["spec"]["type"] == "NodePort" and live["spec"]["externalTrafficPolicy"] == "Local"
        assert sorted(p["nodePort"] for p in live["spec"]["ports"] if p["name"] in ("web", "websecure")) == \
            sorted(chosen.node_ports), live["spec"]["ports"]
    finally:
        # The Application goes; what it made stays (it has no resources finalizer, as rendered).
        stack.plane.kubectl("delete", "applications.argoproj.io", APP, "-n", "argocd", "--wait=false", check=False)
