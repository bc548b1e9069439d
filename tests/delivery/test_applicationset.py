"""1. The real applicationset-controller, given the rendered ApplicationSet and clusters registered as
docs/install.md says, generates exactly one Application per cluster labelled staging or production,
each to its own cluster; the laptop environment (dev) is never generated, even for a cluster labelled dev."""
from __future__ import annotations

import time

import pytest

from .conftest import EXPECTED_APPS

pytestmark = pytest.mark.delivery


def test_applications_generated_per_labelled_cluster(stack, clusters, head):
    from testbed.argocd import platform_docs

    stack.plane.apply_docs(platform_docs("delivery", stack.remote.url))
    deadline = time.monotonic() + 60
    apps = []
    while time.monotonic() < deadline:
        apps = stack.applications()
        if len(apps) >= len(EXPECTED_APPS):
            break
        time.sleep(0.5)
    time.sleep(3)  # a late extra Application (dev) would show up now
    apps = {a["metadata"]["name"]: a for a in stack.applications()}
    assert set(apps) == set(EXPECTED_APPS), f"generated {sorted(apps)}, expected {sorted(EXPECTED_APPS)}"
    for name, env in EXPECTED_APPS.items():
        spec = apps[name]["spec"]
        cluster = name.removeprefix(f"kubechat-{env}-")
        assert spec["destination"] == {"server": clusters[cluster], "namespace": f"kubechat-{env}"}, name
        assert spec["source"]["path"] == f"overlays/{env}" and spec["source"]["repoURL"] == stack.remote.url, name
    assert not any(a["spec"]["destination"]["namespace"] == "kubechat-dev" or
                   a["spec"]["source"].get("path", "").endswith("/dev") for a in apps.values())


def test_project_refuses_the_laptop_environment(stack, clusters, delivery):
    """Even an Application written by hand for dev is refused by an environment's AppProject (a second guard)."""
    app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
           "metadata": {"name": "kubechat-dev-by-hand", "namespace": "argocd"},
           "spec": {"project": "kubechat-staging", "source": {"repoURL": stack.remote.url, "path": "overlays/dev",
                                                      "targetRevision": "main"},
                    "destination": {"server": clusters["laptop"], "namespace": "kubechat-dev"}}}
    stack.plane.apply_docs([app])
    try:
        found = stack.wait_app("kubechat-dev-by-hand", lambda a: any(
            c.get("type") == "InvalidSpecError" for c in a.get("status", {}).get("conditions") or []), 60,
            "refused by its project")
        message = " ".join(c["message"] for c in found["status"]["conditions"])
        assert "kubechat-dev" in message and "do not match any of the allowed destinations" in message, message
    finally:
        stack.plane.kubectl("delete", "applications.argoproj.io", "kubechat-dev-by-hand", "-n", "argocd", "--wait=false")
