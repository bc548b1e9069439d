"""The delivery tier: the real Argo CD and Argo Rollouts (tests/testbed/argocd.py) on a control
plane of its own (kwok fails pods labelled kubechat.io/test-fail=true, so a test can fail a hook).
Everything here is package-scoped: started once for tests/delivery, stopped when it is done."""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone

import pytest

from testbed.controlplane import ControlPlane
from kubechat_tools.crds import load_crds
from testbed.argocd import (ARGOCD_NAMESPACE, BUILD_TIMES, DeliveryStack, cluster_secret, kwok_stages,
                                     platform_docs, synced_healthy)
from kubechat_tools.manifests import load_dir
from kubechat_tools.paths import DIST, ROOT
from kubechat_tools.release import overlay_version, release_tree, released_render, stand_in_digests
from testbed.standins import STANDINS
from kubechat_deploy.platform.props import DeliveryProps
from kubechat_deploy.versions import ARGO_ROLLOUTS, ARGOCD


TIMINGS: dict[str, float] = {}
SYNC_SECONDS: dict[str, float] = {}
LABEL = DeliveryProps().environment_label
CLUSTERS = {
    # name: (server, environment label or None). Three names for the one test API server.
    "in-cluster": ("https://kubernetes.default.svc", "production"),
    "staging-eu": ("https://127.0.0.1:{port}", "staging"),
    "laptop": ("https://localhost:{port}", "dev"),
}
DEPLOYERS_COMMAND = "kubectl apply --server-side --field-manager=kubechat-platform -k dist/platform/deployers"
EXPECTED_APPS = {"kubechat-production-in-cluster": "production", "kubechat-staging-staging-eu": "staging"}


def pytest_terminal_summary(terminalreporter):
    if "start" not in TIMINGS:
        return
    write = terminalreporter.write_line
    built = ", ".join(f"{m} {s:.0f} s" for m, s in BUILD_TIMES.items()) or "cached"
    write(f"delivery tier: Argo CD {ARGOCD.version}, Argo Rollouts {ARGO_ROLLOUTS.version}; "
          f"binaries ready in {TIMINGS['binaries']:.0f} s (built: {built}); control plane started in "
          f"{TIMINGS['plane']:.1f} s, Argo CD and Rollouts in {TIMINGS['start']:.1f} s")
    for app, seconds in SYNC_SECONDS.items():
        write(f"delivery tier: {app}: Application created to Synced/Healthy in {seconds:.0f} s")
    write("delivery tier stand-ins (operators that cannot be built here): " + "; ".join(STANDINS))


@pytest.fixture(scope="package")
def plane(tmp_path_factory):
    started = time.monotonic()
    plane = ControlPlane.start(kwok_config=kwok_stages(tmp_path_factory.mktemp("kwok") / "stages.yaml"))
    TIMINGS["plane"] = time.monotonic() - started
    try:
        plane.install_crds(load_crds())
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="package")
def stack(plane):
    stack = DeliveryStack.start(plane)
    TIMINGS.update(stack.timings)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="package")
def head(stack) -> str:
    """The commit under test (this working tree's overlays and dist/) on the remote's main, with production
    released on top as scripts/release.py releases it: the repository holds no image digest, and the
    image-digests admission policy refuses production's pods without one (stand-in digests here)."""
    return publish_under_test(stack.remote, "commit under test")


def stage_under_test(remote) -> None:
    """The commit under test in the remote's work tree, production released (uncommitted)."""
    remote.stage_tree(ROOT)
    release_tree(remote.work, "production", overlay_version("production"), stand_in_digests())


def publish_under_test(remote, message: str) -> str:
    stage_under_test(remote)
    return remote._commit(f"{message} (production released with stand-in digests)")


@pytest.fixture(scope="package")
def renders() -> dict[str, list[dict]]:
    """Each delivered environment as the commit under test renders it (production released)."""
    return {"staging": load_dir(DIST / "rendered" / "staging"),
            "production": released_render("production", None, stand_in_digests())}


@pytest.fixture(scope="package")
def clusters(stack) -> dict[str, str]:
    """Argo CD cluster Secrets as docs/install.md registers clusters: name -> server."""
    port = stack.plane.kubeconfig.read_text().split("https://127.0.0.1:")[1].split()[0]
    docs, servers = [], {}
    for name, (server, env) in CLUSTERS.items():
        servers[name] = server.format(port=port)
        in_cluster = servers[name] == "https://kubernetes.default.svc"
        docs.append(cluster_secret(name, servers[name], {LABEL: env} if env else {},
                                   None if in_cluster else stack.plane))
    stack.plane.apply_docs(docs)
    return servers


@pytest.fixture(scope="package")
def delivery(stack, clusters, head) -> dict[str, str]:
    """The platform's delivery objects (AppProject, ApplicationSet) applied as rendered; every generated
    Application synced to the commit under test. Returns app -> environment."""
    created = time.monotonic()
    # As docs/install.md registers a cluster for an environment: its namespaces and deployer identities
    # first, with the command the page gives (here one API server stands for every registered cluster).
    assert DEPLOYERS_COMMAND in (ROOT / "docs" / "install.md").read_text()
    *flags, folder = DEPLOYERS_COMMAND.split()[1:]
    stack.plane.kubectl(*flags, str(ROOT / folder))
    stack.plane.apply_docs(with_production_window(platform_docs("delivery", stack.remote.url), *ALWAYS_OPEN))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(stack.applications()) < len(EXPECTED_APPS):
        time.sleep(0.5)
    apps = {a["metadata"]["name"]: a["metadata"]["labels"].get("kubechat.io/environment") for a in stack.applications()}
    timeout = float(os.environ.get("KUBECHAT_DELIVERY_SYNC_TIMEOUT", "600"))
    for app in apps:
        stack.wait_app(app, synced_healthy(head), timeout, f"Synced and Healthy at {head[:8]}")
        SYNC_SECONDS[app] = time.monotonic() - created
    return apps


ALWAYS_OPEN = ("* * * * *", "1h")
"""A sync window that opens every minute for an hour: open whenever it is read (argo-cd v3.5.1
pkg/apis/application/v1alpha1/types.go SyncWindows.active: open if the schedule's next start after now minus
the duration is before now)."""


def closed_for_hours(now: datetime | None = None) -> tuple[str, str]:
    """A daily window of an hour that opens twelve hours from now: closed for the next eleven hours."""
    hour = ((now or datetime.now(timezone.utc)).hour + 12) % 24
    return f"0 {hour} * * *", "1h"


def with_production_window(docs: list[dict], schedule: str, duration: str) -> list[dict]:
    """The platform's delivery objects with production's sync window (rendered: Mon-Thu 08:00-17:00 UTC) at a
    schedule the tier chooses, because the tests run at any hour and what Argo CD does must not depend on it:
    open for the tier (production auto-syncs, as in its window), closed by tests/delivery/test_sync_window.py.
    Only the schedule and duration are replaced; kind, applications, manualSync and time zone stay as rendered
    (tests/test_delivery.py checks the rendered schedule)."""
    projects = [d for d in docs if d["kind"] == "AppProject" and d["metadata"]["name"] == "kubechat-production"]
    (window,) = projects[0]["spec"]["syncWindows"]
    window.update(schedule=schedule, duration=duration)
    return docs


def set_production_window(stack, schedule: str, duration: str) -> None:
    """The live project's window moved (what an operator's `argocd proj windows update` does)."""
    stack.plane.kubectl("patch", "appprojects.argoproj.io", "kubechat-production", "-n", ARGOCD_NAMESPACE,
                        "--type", "json", "-p", json.dumps([
                            {"op": "replace", "path": "/spec/syncWindows/0/schedule", "value": schedule},
                            {"op": "replace", "path": "/spec/syncWindows/0/duration", "value": duration}]))


def namespace_of(env: str) -> str:
    return f"kubechat-{env}"


__all__ = ["ARGOCD_NAMESPACE", "EXPECTED_APPS", "namespace_of", "publish_under_test", "stage_under_test"]
