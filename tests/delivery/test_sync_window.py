"""Production's sync window with the real Argo CD (dist/platform/delivery/appproject-kubechat-production.yaml):
- a sync that started inside the window finishes after the window ends (syncOverrun), instead of stopping
  half-applied with `argocd app sync` refused until morning;
- outside the window a promoted change waits (auto-sync refused), and an operator's `argocd app sync` goes
  through (manualSync), as docs/troubleshooting.md ("Production changes do not sync") tells them; the commands
  it gives are run through the real argocd CLI and argocd-server.

The rendered window is Mon-Thu 08:00-17:00 UTC (tests/test_delivery.py); the tier holds it open
(conftest.ALWAYS_OPEN) so that the other tests do not depend on the hour they run at. These tests move only
its schedule, to one closed for hours (conftest.closed_for_hours), and back. What decides is Argo CD's:
argo-cd v3.5.1 controller/sync.go syncWindowPreventsSync and pkg/apis/application/v1alpha1/types.go
SyncWindows.CanSync (an automated operation needs an active allow window unless it started in one with
syncOverrun; a manual one is let through by manualSync), and the auto-sync refusal in
controller/appcontroller.go ("Sync prevented by sync window")."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from testbed.argocd import at_revision, synced_healthy

from .conftest import ALWAYS_OPEN, closed_for_hours, publish_under_test, set_production_window

pytestmark = pytest.mark.delivery

APP = "kubechat-production-in-cluster"
PROBE = "kubechat.io/sync-window-probe"


def operation(app: dict) -> dict:
    return (app.get("status") or {}).get("operationState") or {}


def window_row(stack) -> dict[str, str]:
    """`argocd proj windows list kubechat-production` (docs/troubleshooting.md), its one window as a dict."""
    listed = stack.argocd_cli("proj", "windows", "list", "kubechat-production")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    header, *rows = [line.split() for line in listed.stdout.strip().splitlines()]
    assert len(rows) == 1, listed.stdout
    # The schedule has spaces: columns before it from the left, the rest from the right.
    row = rows[0]
    return {"STATUS": row[1], "KIND": row[2], "APPLICATIONS": row[-7], "MANUALSYNC": row[-4], "SYNCOVERRUN": row[-3]}


def probe(stack) -> str | None:
    service = stack.get("services", "kubechat-redis", "kubechat-production")
    return (service["metadata"].get("annotations") or {}).get(PROBE)


def promote_change(stack, value: str) -> str:
    """A promoted change production's render carries (the base it builds from, and the committed render)."""
    for path in ("dist/base", "dist/rendered/production"):
        file = stack.remote.work / path / "service-kubechat-redis.yaml"
        doc = yaml.safe_load(file.read_text())
        doc["metadata"].setdefault("annotations", {})[PROBE] = value
        file.write_text(yaml.safe_dump(doc))
    change = stack.remote._commit(f"a promoted change: {PROBE}={value}")
    stack.refresh(APP)
    return change


@pytest.fixture(scope="module")
def settled(stack, delivery):
    """Production at the commit under test with no operation running, the window open; open again afterwards."""
    good = publish_under_test(stack.remote, "production before the sync window tests")
    stack.refresh(APP)
    stack.wait_app(APP, at_revision(good), 420, f"Synced and Healthy at {good[:8]}, no operation running")
    yield
    set_production_window(stack, *ALWAYS_OPEN)
    good = publish_under_test(stack.remote, "the commit under test again, after the sync window tests")
    stack.refresh(APP)
    stack.wait_app(APP, at_revision(good), 420, f"Synced and Healthy at {good[:8]} with the window open again")


def test_a_sync_started_inside_the_window_finishes_after_it_ends(stack, settled):
    """The window's end comes while the sync runs: a window that began at the minute the sync started and
    ended a second after it. Argo CD judges an overrun by the window as it is defined now at the operation's
    start time (types.go canSyncAtTime), so the window must stay the same and time pass, as in production."""
    change = promote_change(stack, "overrun")
    started = stack.wait_app(APP, lambda a: operation(a).get("phase") == "Running" and operation(a).get("startedAt")
                             and operation(a).get("operation", {}).get("sync", {}).get("revision") == change, 120,
                             f"production's auto-sync of {change[:8]} running")
    t0 = datetime.strptime(operation(started)["startedAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    minute = t0.replace(second=0)
    set_production_window(stack, f"{minute.minute} {minute.hour} * * *", f"{(t0 - minute).seconds + 1}s")
    while datetime.now(timezone.utc) < t0 + timedelta(seconds=2):  # the window has ended
        time.sleep(0.2)
    running = operation(stack.get("applications.argoproj.io", APP))
    assert running.get("phase") == "Running", \
        f"the sync ended before its window did ({running.get('phase')}): the test did not exercise the overrun"
    assert window_row(stack)["STATUS"] == "Inactive"
    done = stack.wait_app(APP, lambda a: operation(a).get("phase") in ("Succeeded", "Failed", "Error")
                          and operation(a).get("syncResult", {}).get("revision") == change, 300,
                          f"the sync of {change[:8]} ended")
    assert operation(done)["phase"] == "Succeeded", operation(done).get("message")
    assert probe(stack) == "overrun"


def test_outside_the_window_a_promoted_change_waits_and_a_manual_sync_delivers_it(stack, settled):
    set_production_window(stack, *closed_for_hours())
    row = window_row(stack)
    assert row == {"STATUS": "Inactive", "KIND": "allow", "APPLICATIONS": "kubechat-production-*",
                   "MANUALSYNC": "Enabled", "SYNCOVERRUN": "Enabled"}, row
    stack.wait_app(APP, lambda a: operation(a).get("phase") != "Running", 300, "no operation running")

    change = promote_change(stack, "delivered")
    stack.wait_app(APP, lambda a: a.get("status", {}).get("sync", {}).get("revision") == change
                   and a["status"]["sync"].get("status") == "OutOfSync", 120, f"OutOfSync against {change[:8]}")
    # It waits: auto-sync is refused by the window, for as long as the test watches (several reconciliations).
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        op = operation(stack.get("applications.argoproj.io", APP))
        assert op.get("operation", {}).get("sync", {}).get("revision") != change, "auto-synced outside the window"
        time.sleep(3)
    assert probe(stack) != "delivered"
    assert "Sync prevented by sync window" in stack.log_tail("argocd-application-controller", 400)

    # The operator's manual sync (docs/troubleshooting.md): allowed by manualSync, it delivers the change.
    synced = stack.argocd_cli("app", "sync", APP, "--async")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    done = stack.wait_app(APP, synced_healthy(change), 420, f"Synced and Healthy at {change[:8]} by a manual sync")
    assert not operation(done)["operation"].get("initiatedBy", {}).get("automated")
    assert probe(stack) == "delivered"
