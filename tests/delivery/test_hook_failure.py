"""3. A failing hook fails the sync and runs the SyncFail hook, and Argo CD's notifications controller posts
the failure to the webhook the platform configures (#26.4: argocd-notifications-cm as rendered, the address
from argocd-notifications-secret); the next good commit recovers without anyone touching Argo CD (the
ApplicationSet's retry takes the newest commit: retry.refresh)."""
from __future__ import annotations

import base64
import time

import pytest
import yaml

from testbed.argocd import ARGOCD_NAMESPACE, FAIL_LABEL, synced_healthy
from testbed.loopback import WebhookReceiver
from kubechat_deploy.platform.argocd_config import NOTIFICATION_SECRET_KEY

from .conftest import publish_under_test

pytestmark = pytest.mark.delivery

APP_ENV = "staging"


def break_migration(work) -> None:
    """A bad release: new image tags (what makes the environment OutOfSync: a change to hooks alone does
    not) whose migration hook's pod fails (kwok fails pods carrying FAIL_LABEL)."""
    kustomization = work / "overlays" / APP_ENV / "kustomization.yaml"
    doc = yaml.safe_load(kustomization.read_text())
    for image in doc["images"]:
        image["newTag"] = "1.0.1-broken"
    doc.setdefault("patches", []).append({"target": {"kind": "Job", "name": "kubechat-migrate"}, "patch": yaml.safe_dump([
        {"op": "add", "path": f"/spec/template/metadata/labels/{FAIL_LABEL.replace('/', '~1')}", "value": "true"}])})
    kustomization.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture
def webhook(stack):
    """The site's webhook (docs/install.md: its address in the secret store, which External Secrets merges
    into argocd-notifications-secret): a receiver on loopback."""
    receiver = WebhookReceiver()
    url = base64.b64encode(f"{receiver.url}/kubechat-deployments".encode()).decode()
    stack.plane.kubectl("patch", "secret", "argocd-notifications-secret", "-n", ARGOCD_NAMESPACE, "--type", "merge",
                        "-p", f'{{"data": {{"{NOTIFICATION_SECRET_KEY}": "{url}"}}}}')
    yield receiver
    receiver.stop()


def test_failing_hook_fails_the_sync_and_the_next_commit_recovers(stack, delivery, webhook):
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

    # The notification: one POST of the rendered template, naming the Application, its environment and revision.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not [m for m in webhook.messages() if "failed to sync" in str(m["json"])]:
        time.sleep(1)
    failed = [m for m in webhook.messages() if "failed to sync" in str(m["json"])]
    assert failed, f"no sync-failed notification reached the webhook: {webhook.messages()}"
    text = failed[0]["json"]["text"]
    assert failed[0]["path"] == "/kubechat-deployments" and failed[0]["headers"].get("Content-Type") == "application/json"
    assert text.startswith(f"KubeChat: {app} failed to sync (environment {APP_ENV}, revision {bad}).") \
        and f"/applications/{ARGOCD_NAMESPACE}/{app}?operation=true" in text, text

    good = publish_under_test(stack.remote, "the fix: the commit under test again")
    stack.refresh(app)
    stack.wait_app(app, synced_healthy(good), 420, f"Synced and Healthy at the fix {good[:8]}")
