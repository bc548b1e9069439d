"""#26.4: a failed sync reaches people. Argo CD's notifications controller (the delivery tier runs the real one)
with argocd-notifications-cm as rendered and the webhook's address in argocd-notifications-secret (where
External Secrets merges it from the secret store) posts the failure to that webhook, here on loopback.

Production is used, its auto-sync off for the test (inside its sync window it would retry), so a manual sync
with no retry ends Failed at once. The catalog's on-sync-failed trigger fires on the final failure: on staging, which auto-syncs with five
retries, that comes some fifteen minutes later."""
from __future__ import annotations

import base64
import json
import time

import pytest

from testbed.argocd import ARGOCD_NAMESPACE, synced_healthy
from testbed.loopback import WebhookReceiver
from kubechat_deploy.platform.argocd_config import NOTIFICATION_SECRET_KEY

from .conftest import publish_under_test
from .test_hook_failure import break_migration

pytestmark = pytest.mark.delivery

ENV = "production"


@pytest.fixture
def webhook(stack):
    """The site's webhook (docs/install.md: its address in the secret store): a receiver on loopback."""
    receiver = WebhookReceiver()
    url = base64.b64encode(f"{receiver.url}/kubechat-deployments".encode()).decode()
    stack.plane.kubectl("patch", "secret", "argocd-notifications-secret", "-n", ARGOCD_NAMESPACE, "--type", "merge",
                        "-p", f'{{"data": {{"{NOTIFICATION_SECRET_KEY}": "{url}"}}}}')
    yield receiver
    receiver.stop()


@pytest.fixture
def manual_only(stack, delivery):
    """Production auto-syncs inside its sync window (held open by the tier), with five retries: an auto-sync of
    the failing release would stay Running for some fifteen minutes. The test is about the notification of a
    final failure: auto-sync off for it (as an operator does before a manual sync; the ApplicationSet leaves
    syncPolicy alone), and back as it was afterwards."""
    app = next(a for a, env in delivery.items() if env == ENV)
    policy = stack.get("applications.argoproj.io", app)["spec"].get("syncPolicy") or {}
    stack.plane.kubectl("patch", "applications.argoproj.io", app, "-n", ARGOCD_NAMESPACE, "--type", "merge",
                        "-p", json.dumps({"spec": {"syncPolicy": {"automated": None}}}))
    # Until the controller has reconciled the Application since: an auto-sync it starts from its older copy
    # would merge with the test's manual operation (seen: the manual sync then carried auto-sync's retries).
    stack.refresh(app)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(2)
    stack.wait_app(app, lambda a: not (a["spec"].get("syncPolicy") or {}).get("automated")
                   and (a["status"].get("reconciledAt") or "") > since
                   and (a["status"].get("operationState") or {}).get("phase") != "Running",
                   120, "reconciled with auto-sync off and no operation running")
    yield app
    stack.plane.kubectl("patch", "applications.argoproj.io", app, "-n", ARGOCD_NAMESPACE, "--type", "merge",
                        "-p", json.dumps({"spec": {"syncPolicy": {"automated": policy.get("automated")}}}))


def test_a_failed_sync_reaches_the_webhook(stack, delivery, webhook, manual_only):
    app = manual_only
    good = publish_under_test(stack.remote, "production before a failing release")
    break_migration(stack.remote.work, ENV)  # a release whose migration hook fails
    bad = stack.remote._commit("a production release whose migration fails")
    stack.refresh(app)
    # One quick retry, said explicitly: without it the operation would keep the five retries of production's
    # previous, automated sync (testbed.argocd's sync(): Argo CD merges a new operation's state into the old).
    stack.sync(app, bad, retry={"limit": 1, "backoff": {"duration": "5s", "factor": 1, "maxDuration": "5s"}})

    def failed(application: dict) -> bool:
        op = application.get("status", {}).get("operationState") or {}
        return op.get("phase") in ("Failed", "Error") and op.get("syncResult", {}).get("revision") == bad
    stack.wait_app(app, failed, 300, f"the sync of {bad[:8]} failed")

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not [m for m in webhook.messages() if "failed to sync" in str(m["json"])]:
        time.sleep(1)
    posted = [m for m in webhook.messages() if "failed to sync" in str(m["json"])]
    assert posted, f"no sync-failed notification reached the webhook: {webhook.messages()}"
    text = posted[0]["json"]["text"]
    assert posted[0]["path"] == "/kubechat-deployments" and posted[0]["headers"].get("Content-Type") == "application/json"
    assert text.startswith(f"KubeChat: {app} failed to sync (environment {ENV}, ") \
        and f"/applications/{ARGOCD_NAMESPACE}/{app}?operation=true" in text, text
    assert len(posted) == 1, "one failure, one notification"

    # Back to the good release, as an operator would (a manual sync, pruning).
    good = publish_under_test(stack.remote, "production fixed")
    stack.refresh(app)
    stack.sync(app, good, prune=True)
    stack.wait_app(app, synced_healthy(good), 420, f"Synced and Healthy at the fix {good[:8]}")
