"""The integration tier: a real control plane (scripts/kubechat_tools/controlplane.py) started once per
session, or an existing cluster when KUBECHAT_USE_EXISTING_CLUSTER=1 and KUBECONFIG point at one."""
from __future__ import annotations

import os
import time

import pytest

from kubechat_tools.controlplane import ControlPlane
from kubechat_tools.crds import load_crds
from kubechat_tools.manifests import load_dir
from kubechat_tools.paths import DIST, ENVIRONMENTS
from kubechat_deploy.sync import WAVE

from .pods import compliant_pod, create_dry_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def cluster():
    if os.environ.get("KUBECHAT_USE_EXISTING_CLUSTER") == "1":
        kubeconfig = os.environ.get("KUBECONFIG")
        assert kubeconfig, "KUBECHAT_USE_EXISTING_CLUSTER=1 needs KUBECONFIG"
        plane = ControlPlane.existing_cluster(kubeconfig)
    else:
        plane = ControlPlane.start()
    try:
        install_crds(plane)
        yield plane
    finally:
        if not plane.existing:
            plane.stop()


def install_crds(plane: ControlPlane) -> None:
    plane.apply_docs(load_crds())
    plane.kubectl("wait", "--for", "condition=Established", "crd", "--all", "--timeout", "120s")


def by_wave(docs: list[dict]) -> list[list[dict]]:
    """Argo CD's order: ascending sync wave, and within a wave Namespaces before what lives in them."""
    steps: dict[tuple[int, bool], list[dict]] = {}
    for doc in docs:
        wave = int(doc["metadata"].get("annotations", {}).get(WAVE, "0"))
        steps.setdefault((wave, doc["kind"] != "Namespace"), []).append(doc)
    return [steps[key] for key in sorted(steps)]


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.lower().startswith("warning")]


def apply_environment(plane: ControlPlane, docs: list[dict]) -> list[str]:
    """Server-side apply wave by wave, each wave dry-run first; returns every warning the server sent."""
    warnings = []
    for wave_docs in by_wave(docs):
        for dry_run in (True, False):
            result = plane.apply_docs(wave_docs, dry_run=dry_run)
            warnings += warnings_in(result.stderr)
    return warnings


@pytest.fixture(scope="session")
def rendered_envs() -> dict[str, list[dict]]:
    return {env: load_dir(DIST / "rendered" / env) for env in ENVIRONMENTS}


@pytest.fixture(scope="session")
def applied(cluster, rendered_envs) -> dict[str, list[str]]:
    """Every environment applied once (they share the cluster: names are per environment);
    env -> warnings seen while applying."""
    warnings = {env: apply_environment(cluster, docs) for env, docs in rendered_envs.items()}
    wait_for_admission_policies(cluster)
    return warnings


def wait_for_admission_policies(plane: ControlPlane, timeout: float = 30) -> None:
    """A new ValidatingAdmissionPolicy takes effect once the API server's informers see it: wait until a
    pod with a floating tag is refused in staging."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = create_dry_run(plane, compliant_pod("kubechat-staging", "ghcr.io/kubechat/kubechat-api:latest"))
        if result.returncode != 0 and "uses latest" in result.stderr:
            return
        time.sleep(0.5)
    raise AssertionError("the ValidatingAdmissionPolicies did not take effect within "
                         f"{timeout:.0f} s:\n{plane.log_tail('kube-apiserver')}")
