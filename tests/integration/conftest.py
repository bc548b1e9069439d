"""The integration tier: a real control plane (tests/testbed/controlplane.py) started once per
session, or an existing cluster when KUBECHAT_USE_EXISTING_CLUSTER=1 and KUBECONFIG point at one."""
from __future__ import annotations

import os
import subprocess
import time

import yaml

import pytest

from testbed.controlplane import ControlPlane
from kubechat_tools.crds import load_crds
from kubechat_tools.manifests import load_dir
from kubechat_tools.paths import DIST, ENVIRONMENTS, ROOT
from kubechat_tools.release import previous_release_commit, released_render, stand_in_digests
from kubechat_deploy.delivery.sync import HOOK_DELETE_POLICY, SYNC_OPTIONS, WAVE

from .pods import compliant_pod, create_dry_run



TIMINGS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.write_line("control plane: binaries ready in {binaries:.0f} s (built or cached), "
                                    "started in {start:.1f} s".format(**TIMINGS))


@pytest.fixture(scope="package")
def cluster():
    if os.environ.get("KUBECHAT_USE_EXISTING_CLUSTER") == "1":
        kubeconfig = os.environ.get("KUBECONFIG")
        assert kubeconfig, "KUBECHAT_USE_EXISTING_CLUSTER=1 needs KUBECONFIG"
        plane = ControlPlane.existing_cluster(kubeconfig)
    else:
        plane = ControlPlane.start()
        TIMINGS.update(plane.timings)
    try:
        install_crds(plane)
        yield plane
    finally:
        if not plane.existing:
            plane.stop()


def install_crds(plane: ControlPlane) -> None:
    plane.install_crds(load_crds())


def by_wave(docs: list[dict]) -> list[list[dict]]:
    """Argo CD's order: ascending sync wave, and within a wave Namespaces before what lives in them."""
    steps: dict[tuple[int, bool], list[dict]] = {}
    for doc in docs:
        wave = int(doc["metadata"].get("annotations", {}).get(WAVE, "0"))
        steps.setdefault((wave, doc["kind"] != "Namespace"), []).append(doc)
    return [steps[key] for key in sorted(steps)]


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.lower().startswith("warning")]


def identity(doc: dict) -> tuple[str, str, str, str]:
    meta = doc["metadata"]
    return doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else "", doc["kind"], \
        meta.get("namespace", ""), meta["name"]


def kubectl_ref(doc: dict) -> list[str]:
    group, kind, namespace, name = identity(doc)
    return [f"{kind}.{group}" if group else kind, name] + (["-n", namespace] if namespace else [])


def apply_environment(plane: ControlPlane, docs: list[dict], previous: list[dict] | None = None) -> list[str]:
    """Sync like Argo CD: wave by wave (each wave dry-run first, then server-side apply), hooks with
    BeforeHookCreation deleted first, then prune what `previous` had and `docs` lacks unless it carries
    Prune=false. Returns every warning the server sent."""
    warnings = []
    for wave_docs in by_wave(docs):
        for doc in wave_docs:
            annotations = doc["metadata"].get("annotations", {})
            if "BeforeHookCreation" in annotations.get(HOOK_DELETE_POLICY, ""):
                plane.kubectl("delete", *kubectl_ref(doc), "--ignore-not-found", "--wait=true")
        for dry_run in (True, False):
            result = plane.apply_docs(wave_docs, dry_run=dry_run)
            warnings += warnings_in(result.stderr)
    wanted = {identity(d) for d in docs}
    for doc in previous or []:
        if identity(doc) in wanted or "Prune=false" in doc["metadata"].get("annotations", {}).get(SYNC_OPTIONS, ""):
            continue
        result = plane.kubectl("delete", *kubectl_ref(doc), "--ignore-not-found", "--wait=true")
        warnings += warnings_in(result.stderr)
    return warnings


@pytest.fixture(scope="package")
def rendered_envs() -> dict[str, list[dict]]:
    """Each environment as it is deployed: dist/rendered/<env>, production after its release wrote image
    digests (the repository holds none; stand-in digests, scripts/kubechat_tools/release.py)."""
    envs = {env: load_dir(DIST / "rendered" / env) for env in ENVIRONMENTS}
    envs["production"] = released_render("production", None, stand_in_digests())
    return envs


@pytest.fixture(scope="package")
def upgrade_path(cluster, rendered_envs) -> dict:
    """Production goes previous release -> this one -> previous (a rollback), pruning like Argo CD;
    the data-holding objects' UIDs are recorded after each step. `applied` then upgrades it again."""
    env = "production"
    previous_commit, previous = previous_release(env)
    current = rendered_envs[env]
    record = {"previous_commit": previous_commit, "steps": [], "errors": []}
    steps = [("install previous", previous, None), ("upgrade", current, previous), ("roll back", previous, current)]
    for label, docs, before in steps:
        try:
            apply_environment(cluster, docs, before)
        except AssertionError as error:
            record["errors"].append(f"{label}: {error}")
            break
        if label == "install previous":
            wait_for_statefulset_claims(cluster, f"kubechat-{env}")
        record["steps"].append((label, data_uids(cluster, f"kubechat-{env}")))
    return record


def previous_release(env: str) -> tuple[str, list[dict]]:
    """The newest earlier commit whose rendered `env` differs from the current render, and that render."""
    commit = previous_release_commit(env)
    folder = f"dist/rendered/{env}"
    files = run_git("ls-tree", "--name-only", f"{commit}:{folder}").split()
    docs = [yaml.safe_load(run_git("show", f"{commit}:{folder}/{name}")) for name in files
            if name.endswith(".yaml") and name != "kustomization.yaml"]
    return commit, [d for d in docs if d]


def run_git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def data_uids(plane: ControlPlane, namespace: str) -> dict[str, str]:
    """UIDs of what holds data: the database Cluster and every PVC. A changed UID is a deletion."""
    names = plane.kubectl("get", "clusters.postgresql.cnpg.io,persistentvolumeclaims", "-n", namespace, "-o",
                          "jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.uid}{\"\\n\"}{end}").stdout
    return dict(line.split("=", 1) for line in names.split())


def wait_for_statefulset_claims(plane: ControlPlane, namespace: str, timeout: float = 60) -> None:
    if not plane.with_controllers:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(key.startswith("PersistentVolumeClaim/data-") for key in data_uids(plane, namespace)):
            return
        time.sleep(0.5)
    raise AssertionError(f"{namespace}: the StatefulSet created no PersistentVolumeClaim in {timeout:.0f} s")


@pytest.fixture(scope="package")
def applied(cluster, rendered_envs, upgrade_path) -> dict[str, list[str]]:
    """Every environment applied (they share the cluster: names are per environment); production
    upgrades from the rolled-back previous release. env -> warnings seen while applying."""
    previous = {"production": previous_release("production")[1]}
    warnings = {env: apply_environment(cluster, docs, previous.get(env)) for env, docs in rendered_envs.items()}
    upgrade_path["steps"].append(("upgrade again", data_uids(cluster, "kubechat-production")))
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
