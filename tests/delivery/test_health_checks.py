"""16.5 and 16.11: the health checks of the platform's argocd-cm (dist/platform/argocd), evaluated by the
real Argo CD v3.5.1 (`argocd admin settings resource-overrides health`, the Lua runtime the
application-controller uses), each compared with what Argo CD does without them (an argocd-cm with no
customizations: its built-in checks, resource_customizations/<group>/<Kind>/health.lua in argoproj/argo-cd).

Before this project rendered an argocd-cm, a CloudNativePG Cluster with no status yet made the built-in
check raise a Lua error (the first case below shows it on the real binary): that error is what aborted the
first sync attempt on a real cluster."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from testbed.argocd import binaries
from kubechat_tools.paths import DIST

pytestmark = pytest.mark.delivery

PROJECT_CM = DIST / "platform" / "argocd" / "configmap-argocd-cm.yaml"
EMPTY_CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm", "namespace": "argocd"}, "data": {}}


@pytest.fixture(scope="module")
def argocd() -> Path:
    return binaries() / "argocd"


def health(argocd: Path, obj: dict, cm: Path, tmp_path: Path) -> tuple[int, str, str]:
    """(exit code, STATUS, output) as the real Argo CD assesses obj with the given argocd-cm."""
    resource = tmp_path / "resource.yaml"
    resource.write_text(yaml.safe_dump(obj))
    result = subprocess.run([str(argocd), "admin", "settings", "resource-overrides", "health", str(resource),
                             "--argocd-cm-path", str(cm)], capture_output=True, text=True, timeout=120,
                            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    status = next((line.split(":", 1)[1].strip() for line in result.stdout.splitlines() if line.startswith("STATUS:")), "")
    return result.returncode, status, result.stdout + result.stderr


@pytest.fixture()
def builtin(tmp_path) -> Path:
    path = tmp_path / "empty-argocd-cm.yaml"
    path.write_text(yaml.safe_dump(EMPTY_CM))
    return path


def cluster(status: dict | None) -> dict:
    doc = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "db", "namespace": "kubechat-staging"},
           "spec": {"instances": 3, "storage": {"size": "10Gi"}}}
    if status is not None:
        doc["status"] = status
    return doc


def backup(phase: str | None) -> dict:
    doc = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup", "metadata": {"name": "pre-migration", "namespace": "kubechat-production"},
           "spec": {"cluster": {"name": "db"}, "method": "plugin"}}
    if phase:
        doc["status"] = {"phase": phase, **({"error": "no space left"} if phase == "failed" else {})}
    return doc


def application(health_status: str | None) -> dict:
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "child", "namespace": "argocd"},
           "spec": {"project": "default", "destination": {"server": "https://kubernetes.default.svc"},
                    "source": {"repoURL": "https://example.invalid/repo.git", "path": "."}}}
    if health_status:
        doc["status"] = {"health": {"status": health_status}}
    return doc


def test_a_cluster_without_status_is_progressing_where_the_builtin_check_errors(argocd, builtin, tmp_path):
    code, _, output = health(argocd, cluster(None), builtin, tmp_path)
    assert code != 0 and "phaseReason" in output, f"Argo CD's built-in Cluster check no longer fails here:\n{output}"
    code, status, output = health(argocd, cluster(None), PROJECT_CM, tmp_path)
    assert (code, status) == (0, "Progressing"), output


@pytest.mark.parametrize("phase,expected", [
    ("Cluster in healthy state", "Healthy"),
    ("Setting up primary", "Progressing"),
    ("Failing over", "Degraded"),
])
def test_a_cluster_with_status_is_assessed_as_argo_cd_itself_does(argocd, builtin, tmp_path, phase, expected):
    obj = cluster({"phase": phase, "phaseReason": "", "conditions": [{"type": "Ready", "status": "True"}]})
    ours = health(argocd, obj, PROJECT_CM, tmp_path)
    theirs = health(argocd, obj, builtin, tmp_path)
    assert ours[1] == theirs[1] == expected, (ours, theirs)


@pytest.mark.parametrize("phase,expected", [
    ("Applying configuration", "Progressing"),
    ("Switchover in progress", "Progressing"),
    ("Primary instance is being restarted in-place", "Progressing"),
    ("Primary instance is being restarted without a switchover", "Progressing"),
    ("Online upgrade in progress", "Progressing"),
    ("Cluster cannot proceed to reconciliation due to an error while interacting with plugins", "Degraded"),
    ("Invalid cluster definition", "Degraded"),
])
def test_a_routine_change_is_progressing_and_every_failure_phase_degraded(argocd, builtin, tmp_path, phase, expected):
    """#26.6: Argo CD's built-in check calls the phases of a routine change Degraded (a running sync then fails:
    a release changing a restart-requiring parameter failed at wave -1) and two failure phases Unknown. The
    phase names are CloudNativePG v1.30.0's (api/v1/cluster_types.go: PhaseApplyingConfiguration,
    PhaseSwitchover, PhaseInplacePrimaryRestart, PhaseInplaceDeletePrimaryRestart, PhaseOnlineUpgrading,
    PhaseFailurePlugin, PhaseDefinitionInvalid)."""
    obj = cluster({"phase": phase, "phaseReason": "reason", "conditions": [{"type": "Ready", "status": "False"}]})
    assert health(argocd, obj, PROJECT_CM, tmp_path)[1] == expected
    assert health(argocd, obj, builtin, tmp_path)[1] == ("Degraded" if expected == "Progressing" else "Unknown"), \
        "Argo CD's built-in check changed for this phase: review argocd_health/postgresql.cnpg.io_Cluster.lua"


@pytest.mark.parametrize("phase,expected", [
    (None, "Progressing"), ("running", "Progressing"), ("completed", "Healthy"), ("failed", "Degraded"),
    ("invalid backup definition", "Degraded")])
def test_the_pre_migration_backup_gates_the_migration(argocd, builtin, tmp_path, phase, expected):
    """Without a check Argo CD treats a Backup as Healthy as soon as it exists, so a Backup hook would not
    hold the migration; with the project's check it does until the backup completed."""
    assert health(argocd, backup(phase), PROJECT_CM, tmp_path)[1] == expected
    if phase is None:
        assert health(argocd, backup(None), builtin, tmp_path)[1] in ("", "Healthy"), \
            "Argo CD gained a built-in Backup check: review argocd_health/postgresql.cnpg.io_Backup.lua"


@pytest.mark.parametrize("child,expected", [
    (None, "Progressing"), ("Progressing", "Progressing"), ("Healthy", "Healthy"), ("Degraded", "Degraded")])
def test_a_child_application_reports_its_own_health(argocd, builtin, tmp_path, child, expected):
    """Sync waves between child Applications wait only if the parent sees their health (Argo CD 1.8 removed
    the built-in Application check: docs/operator-manual/upgrading/1.7-1.8.md)."""
    assert health(argocd, application(child), PROJECT_CM, tmp_path)[1] == expected
    if child == "Progressing":
        assert health(argocd, application(child), builtin, tmp_path)[1] in ("", "Healthy")


def cronjob(*, managed: bool, last_schedule: str, last_success: str | None, active: bool = False) -> dict:
    labels = {"app.kubernetes.io/managed-by": "kubechat-deploy"} if managed else {"app.kubernetes.io/name": "other"}
    status = {"lastScheduleTime": last_schedule, **({"lastSuccessfulTime": last_success} if last_success else {}),
              **({"active": [{"kind": "Job", "name": "run", "namespace": "kubechat-production"}]} if active else {})}
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "kubechat-logical-backup", "namespace": "kubechat-production", "labels": labels},
            "spec": {"schedule": "30 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1"}]}}}}},
            "status": status}


FAILED_RUN = {"last_schedule": "2026-12-06T03:30:00Z", "last_success": "2026-12-05T03:31:07Z"}
OK_RUN = {"last_schedule": "2026-12-06T03:30:00Z", "last_success": "2026-12-06T03:31:07Z"}


def test_a_failed_scheduled_run_of_kubechat_does_not_degrade_its_cronjob(argocd, builtin, tmp_path):
    """#26.1: Argo CD's built-in check calls a CronJob whose last run failed Degraded, and a Degraded resource
    fails a running sync: one failed backup or drill held every later release. The project's check keeps the
    built-in assessment for every other CronJob and calls KubeChat's Healthy, saying the run failed."""
    ours_code, ours, output = health(argocd, cronjob(managed=True, **FAILED_RUN), PROJECT_CM, tmp_path)
    assert (ours_code, ours) == (0, "Healthy") and "The last run failed" in output, output
    assert health(argocd, cronjob(managed=True, **FAILED_RUN), builtin, tmp_path)[1] == "Degraded"
    # Another application's CronJob: exactly the built-in verdicts.
    for case in (FAILED_RUN, OK_RUN, {**FAILED_RUN, "active": True}, {"last_schedule": "2026-12-06T03:30:00Z", "last_success": None}):
        obj = cronjob(managed=False, **case)
        assert health(argocd, obj, PROJECT_CM, tmp_path)[1] == health(argocd, obj, builtin, tmp_path)[1], case
    assert health(argocd, cronjob(managed=False, **FAILED_RUN), PROJECT_CM, tmp_path)[1] == "Degraded"
    assert health(argocd, cronjob(managed=True, **OK_RUN), PROJECT_CM, tmp_path)[1] == "Healthy"
