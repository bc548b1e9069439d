"""#26.1: a failed run of a scheduled job (the logical backup, the restore drill) does not hold the next
release. With the real Argo CD: staging's logical-backup CronJob records a failed last run (its status as the
CronJob controller writes it after a failed Job: lastScheduleTime after lastSuccessfulTime, nothing active),
then a release is committed; the sync must end Synced and Healthy at that commit, and the CronJob shows the
failure in its health message."""
from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from testbed.argocd import synced_healthy

from .conftest import publish_under_test
from .test_health_checks import PROJECT_CM, health

pytestmark = pytest.mark.delivery

APP_ENV = "staging"
CRONJOB = "kubechat-logical-backup"


def stamp(seconds_ago: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_failed_run(plane, namespace: str) -> dict:
    """The last run a minute ago failed, the one before (a day ago) succeeded. Times relative to now, so the
    CronJob controller of the control plane finds no missed schedule to start."""
    status = {"lastScheduleTime": stamp(60), "lastSuccessfulTime": stamp(86400)}
    subprocess.run([str(plane.bin / "kubectl"), "--kubeconfig", str(plane.kubeconfig), "-n", namespace, "patch",
                    "cronjob", CRONJOB, "--subresource", "status", "--type", "merge", "-p", json.dumps({"status": status})],
                   check=True, capture_output=True, text=True)
    return status


def test_a_release_syncs_although_the_last_backup_failed(stack, delivery, tmp_path):
    app = next(a for a, env in delivery.items() if env == APP_ENV)
    namespace = f"kubechat-{APP_ENV}"
    failed = record_failed_run(stack.plane, namespace)
    cronjob = stack.get("cronjobs", CRONJOB, namespace)
    assert cronjob["status"]["lastSuccessfulTime"] < cronjob["status"]["lastScheduleTime"]

    # A release: a setting of staging changes, committed as usual. A backup setting: a change the API's pods
    # would roll for starts a canary, whose analysis needs the Prometheus only the canary tests run.
    work = stack.remote.work
    publish_under_test(stack.remote, "staging before the release")
    settings = work / "overlays" / APP_ENV / "backup-settings.env"
    text = settings.read_text()
    assert "RETENTION_DAYS=7" in text, "staging's backup-settings.env no longer sets RETENTION_DAYS=7: pick another"
    settings.write_text(text.replace("RETENTION_DAYS=7", "RETENTION_DAYS=8"))
    release = stack.remote._commit("a release after a failed backup")
    stack.refresh(app)
    stack.wait_app(app, synced_healthy(release), 420, f"Synced and Healthy at {release[:8]}")

    # The Application is Healthy with the failed run recorded (Argo CD 3 keeps resource health out of the
    # Application's status); the message the project's check gives that CronJob, from the real Lua runtime:
    live = stack.get("cronjobs", CRONJOB, namespace)
    code, status, output = health(stack.bin / "argocd", live, PROJECT_CM, tmp_path)
    assert (code, status) == (0, "Healthy") and "The last run failed" in output, output
    assert stack.get("cronjobs", CRONJOB, namespace)["status"]["lastSuccessfulTime"] == failed["lastSuccessfulTime"]
    # The release landed: the backup job reads the new setting.
    job = stack.get("cronjobs", CRONJOB, namespace)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    config = next(e["configMapRef"]["name"] for e in job["envFrom"]
                  if e.get("configMapRef", {}).get("name", "").startswith("kubechat-backup-settings"))
    assert stack.get("configmaps", config, namespace)["data"]["RETENTION_DAYS"] == "8"
