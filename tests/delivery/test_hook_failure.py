"""3. A failing hook fails the sync and runs the SyncFail hook; the next good commit recovers without
anyone touching Argo CD (the ApplicationSet's retry takes the newest commit: retry.refresh)."""
from __future__ import annotations

import time

import pytest
import yaml

from testbed.argocd import FAIL_LABEL, synced_healthy

from .conftest import publish_under_test

pytestmark = pytest.mark.delivery

APP_ENV = "staging"


def break_migration(work, env: str = APP_ENV) -> None:
    """A bad release: new image tags (what makes the environment OutOfSync: a change to hooks alone does
    not) whose migration hook's pod fails (kwok fails pods carrying FAIL_LABEL)."""
    kustomization = work / "overlays" / env / "kustomization.yaml"
    doc = yaml.safe_load(kustomization.read_text())
    for image in doc["images"]:
        image["newTag"] = "1.0.1-broken"
    doc.setdefault("patches", []).append({"target": {"kind": "Job", "name": "kubechat-migrate"}, "patch": yaml.safe_dump([
        {"op": "add", "path": f"/spec/template/metadata/labels/{FAIL_LABEL.replace('/', '~1')}", "value": "true"}])})
    kustomization.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_failing_hook_fails_the_sync_and_the_next_commit_recovers(stack, delivery):
    app = next(a for a, env in delivery.items() if env == APP_ENV)
    ns = f"kubechat-{APP_ENV}"
    break_migration(stack.remote.work)
    bad = stack.remote._commit("a release whose migration fails")
    stack.refresh(app)

    def failed_attempt(application: dict) -> bool:
        op = application.get("status", {}).get("operationState") or {}
        return (op.get("syncResult", {}).get("revision") == bad or op.get("operation", {}).get("sync", {}).get("revision") == bad) \
            and (op.get("phase") in ("Failed", "Error") or op.get("retryCount", 0) >= 1)
    stack.wait_app(app, failed_attempt, 300, f"failed at {bad[:8]}")
    failed_job = stack.get("jobs", "kubechat-sync-failed", ns)
    assert failed_job is not None, "the SyncFail hook did not run"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (failed_job.get("status") or {}).get("succeeded"):
        time.sleep(1)
        failed_job = stack.get("jobs", "kubechat-sync-failed", ns)
    assert (failed_job.get("status") or {}).get("succeeded"), "the SyncFail hook did not complete"
    migration = stack.get("jobs", "kubechat-migrate", ns)
    assert any(c["type"] == "Failed" and c["status"] == "True" for c in migration["status"].get("conditions", []))
    for workload in ("kubechat-api", "kubechat-web"):
        rollout = stack.get("rollouts.argoproj.io", workload, ns)
        assert rollout["status"]["phase"] == "Healthy", "the workloads changed although the migration failed"
        deployment = stack.get("deployments", workload, ns)
        images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
        assert not any("1.0.1-broken" in i for i in images), f"{workload}: the new release rolled out: {images}"

    good = publish_under_test(stack.remote, "the fix: the commit under test again")
    stack.refresh(app)
    stack.wait_app(app, synced_healthy(good), 420, f"Synced and Healthy at the fix {good[:8]}")
