"""Backups as rendered: physical (barman-cloud) in staging and production, logical dumps and
restore drills everywhere, the production safety backup, and render-time rejection of bad settings."""
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, find
from kubechat_tools.netpol import Endpoint, allowed, pods_of

WAVE = "argocd.argoproj.io/sync-wave"


def cronjob_container(docs, name):
    return find(docs, "CronJob", name)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("env, days", [("staging", 7), ("production", 30)])
def test_physical_backups_archive_wal_and_run_daily_with_retention(rendered, env, days):
    docs = rendered[env]
    store = find(docs, "ObjectStore", "kubechat-backups")["spec"]
    assert store["retentionPolicy"] == f"{days}d"
    assert store["configuration"]["destinationPath"].startswith(f"s3://kubechat-backups-{env}/")
    assert store["configuration"]["s3Credentials"]["accessKeyId"] == {"name": "kubechat-backup-credentials",
                                                                     "key": "ACCESS_KEY_ID"}
    find(docs, "ExternalSecret", "kubechat-backup-credentials")
    scheduled = find(docs, "ScheduledBackup", "kubechat-db-daily")["spec"]
    assert len(scheduled["schedule"].split()) == 6, "CloudNativePG's cron has six fields, seconds first"
    assert scheduled["method"] == "plugin" and scheduled["pluginConfiguration"]["name"] == "barman-cloud.cloudnative-pg.io"
    cluster = find(docs, "Cluster", "kubechat-db")["spec"]
    assert cluster["plugins"] == [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": True,
                                   "parameters": {"barmanObjectName": "kubechat-backups", "serverName": "kubechat-db"}}]
    assert re.fullmatch(r"\d+min", cluster["postgresql"]["parameters"]["archive_timeout"])


def test_dev_has_no_physical_backups(rendered):
    docs = rendered["dev"]
    assert not [d for d in docs if d["kind"] in ("ObjectStore", "ScheduledBackup", "Backup")]
    assert "plugins" not in find(docs, "Cluster", "kubechat-db")["spec"]


@pytest.mark.parametrize("env, target", [("dev", "file:///backups"), ("staging", "s3://"), ("production", "s3://")])
def test_logical_backup_and_drill_cronjobs(rendered, env, target):
    docs = rendered[env]
    for name, weekly in (("kubechat-logical-backup", False), ("kubechat-restore-drill", True)):
        cronjob = find(docs, "CronJob", name)["spec"]
        assert cronjob["concurrencyPolicy"] == "Forbid"
        job = cronjob["jobTemplate"]["spec"]
        assert job["backoffLimit"] >= 1 and job["activeDeadlineSeconds"] > 0
        assert (cronjob["schedule"].split()[4] != "*") is weekly
    scripts = find(docs, "ConfigMap", "kubechat-backup-scripts")["data"]
    assert scripts == {p.name: p.read_text() for p in sorted((ROOT / "jobs").glob("*.py"))}
    settings = next(d for d in docs if d["metadata"]["name"].startswith("kubechat-backup-settings-"))["data"]
    assert settings["BACKUP_TARGET"].startswith(target)
    assert int(settings["RETENTION_DAYS"]) >= 1 and int(settings["RETENTION_KEEP_NEWEST"]) >= 1
    assert cronjob_container(docs, "kubechat-restore-drill")["command"][-1] == "--scratch-server"


def test_dev_keeps_logical_backups_on_a_volume(rendered):
    docs = rendered["dev"]
    find(docs, "PersistentVolumeClaim", "kubechat-logical-backups")
    for name in ("kubechat-logical-backup", "kubechat-restore-drill"):
        volumes = find(docs, "CronJob", name)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
        backups = next(v for v in volumes if v["name"] == "backups")
        assert backups == {"name": "backups", "persistentVolumeClaim": {"claimName": "kubechat-logical-backups"}}


def test_production_takes_a_safety_backup_between_the_database_and_the_migration(rendered):
    """#26.2: once per schema version, not on every sync: an ordinary resource (no hook, which Argo CD recreates on
    every sync, retry and rollback) named after the release's SCHEMA_VERSION, kept after later releases without
    making the Application OutOfSync (Prune=false, IgnoreExtraneous: argo-cd v3.5.1 controller/state.go)."""
    from kubechat_tools.release import released_render, stand_in_digests

    docs = rendered["production"]
    release = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("kubechat-release"))
    schema = int(release["data"]["SCHEMA_VERSION"])
    backup = find(docs, "Backup", f"kubechat-db-pre-migration-schema-{schema}")
    annotations = backup["metadata"]["annotations"]
    assert "argocd.argoproj.io/hook" not in annotations
    assert annotations["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
    assert annotations["argocd.argoproj.io/compare-options"] == "IgnoreExtraneous"
    # The name follows the schema, not the release: a new version with the same schema names the same Backup (so
    # no new backup), a raised schema a new one.
    names = lambda docs: [d["metadata"]["name"] for d in docs if d["kind"] == "Backup"]  # noqa: E731
    assert names(released_render("production", "1.0.1", stand_in_digests())) == [backup["metadata"]["name"]]
    raised = released_render("production", "1.1.0", stand_in_digests(), schema=schema + 1)
    assert names(raised) == [f"kubechat-db-pre-migration-schema-{schema + 1}"]
    wave = lambda kind, name: int(find(docs, kind, name)["metadata"]["annotations"][WAVE])  # noqa: E731
    assert wave("Cluster", "kubechat-db") < int(annotations[WAVE]) < wave("Job", "kubechat-migrate")
    assert backup["spec"]["method"] == "plugin"
    for env in ("dev", "staging"):
        assert not [d for d in rendered[env] if d["kind"] == "Backup"]


@pytest.mark.parametrize("env", ["dev", "staging", "production"])
def test_backup_jobs_reach_only_what_they_need(rendered, env):
    docs = rendered[env]
    pods = pods_of(docs)
    backup, drill, db = pods["kubechat-logical-backup"], pods["kubechat-restore-drill"], pods["kubechat-db"]
    object_store = Endpoint(name="s3", ip="52.219.170.1")
    assert allowed(docs, backup, db, 5432) and allowed(docs, backup, object_store, 443)
    assert allowed(docs, drill, object_store, 443)
    assert not allowed(docs, drill, db, 5432), "the drill restores into its own scratch server"
    assert not allowed(docs, backup, pods["kubechat-redis"], 6379)


@pytest.mark.parametrize("env, file, old, new, message", [
    ("staging", "backups.yaml", "destinationPath: s3://kubechat-backups-staging/kubechat/physical",
     "destinationPath: s3://SET-IN-OVERLAY/kubechat", "spec.configuration.destinationPath='s3://SET-IN-OVERLAY/kubechat'"),
    ("production", "backups.yaml", "retentionPolicy: 30d", "retentionPolicy: 0d", "spec.retentionPolicy: '0d' does not match the schema's pattern ^[1-9][0-9]*[dwm]$"),  # the CRD's own
    ("production", "backup-settings.env", "RETENTION_DAYS=30", "RETENTION_DAYS=0", "RETENTION_DAYS='0'"),
    ("staging", "backup-settings.env", "BACKUP_TARGET=s3://kubechat-backups-staging/kubechat/logical",
     "BACKUP_TARGET=file:///backups", "BACKUP_TARGET='file:///backups'"),
    # Forgetting the object-store settings (the overlay's backups.yaml patch) is caught...
    ("staging", "kustomization.yaml", "  - path: backups.yaml\n", "", "destinationPath='s3://SET-IN-OVERLAY/kubechat'"),
    # ...and so is leaving out physical backups altogether.
    ("production", "kustomization.yaml", "  - path: backups.yaml\n", "", None),
    # #26.7: the backup jobs grow with the database: the drill holds the dump and the restored database (twice
    # its size), and each deadline grows with it (a fixed 7200 s failed every drill past some size).
    ("production", "backups.yaml", "storage: 200Gi", "storage: 100Gi",
     "CronJob/kubechat-restore-drill: scratch volume tmp = '100Gi' is smaller than 2 x the database "
     "(Cluster/kubechat-db spec.storage.size = '100Gi'); allowed: at least 200Gi"),
    ("production", "backups.yaml", "activeDeadlineSeconds: 15600", "activeDeadlineSeconds: 7200",
     "CronJob/kubechat-restore-drill: activeDeadlineSeconds = 7200 is too short for the database "
     "(Cluster/kubechat-db spec.storage.size = '100Gi'); allowed: at least 15600"),
    ("staging", "backups.yaml", "activeDeadlineSeconds: 3000", "activeDeadlineSeconds: 2400",
     "CronJob/kubechat-logical-backup: activeDeadlineSeconds = 2400 is too short for the database "
     "(Cluster/kubechat-db spec.storage.size = '20Gi'); allowed: at least 3000"),
    ("staging", "database.yaml", "size: 20Gi", "size: 30Gi", "allowed: at least 60Gi"),
])
def test_render_rejects_bad_backup_settings(tmp_path, env, file, old, new, message):
    shutil.copytree(ROOT / "overlays", tmp_path / "overlays")
    path = tmp_path / "overlays" / env / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    if message is None:
        path.write_text(path.read_text().replace("  - ../../dist/components/physical-backups\n", ""))
        message = "no ObjectStore: staging and production need physical backups"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "render.py"), "--dist", str(tmp_path / "dist"),
                             "--overlays", str(tmp_path / "overlays")], capture_output=True, text=True)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert f"environment '{env}'" in result.stderr


def test_bad_schedules_and_retention_are_rejected_in_python():
    from kubechat_deploy.data.backups import BackupProps
    from kubechat_deploy.validation import SettingsError

    for kwargs, field in (({"physical_schedule": "0 2 * * *"}, "backups.physical_schedule"),
                          ({"logical_schedule": "0 0 2 * * *"}, "backups.logical_schedule"),
                          ({"drill_schedule": "weekly"}, "backups.drill_schedule"),
                          ({"physical_retention_days": 0}, "backups.physical_retention_days"),
                          ({"logical_keep_newest": -1}, "backups.logical_keep_newest"),
                          ({"destination_path": "bucket/path"}, "backups.destination_path"),
                          ({"sidecar_memory_limit": "512MB"}, "backups.sidecar_memory_limit"),
                          ({"sidecar_memory_request": "1Gi"}, "backups.sidecar_memory_request")):
        with pytest.raises(SettingsError, match=re.escape(field) + ": invalid value"):
            BackupProps(**kwargs)


@pytest.mark.parametrize("env", ["staging", "production"])
def test_the_barman_cloud_sidecar_has_resources_of_its_own(rendered, env):
    """#26.7: the sidecar that archives WAL in every database pod got the LimitRange's default (256Mi, no CPU
    request). The ObjectStore's instanceSidecarConfiguration.resources is what plugin-barman-cloud v0.14.0 puts
    on the sidecar (internal/cnpgi/operator/lifecycle_resources.go, collectSidecarResourcesForPod); the field
    names are the pinned ObjectStore CRD's (the schema gate checks every rendered object against it)."""
    from kubechat_tools.gates import schema_gate

    store = find(rendered[env], "ObjectStore", "kubechat-backups")
    resources = store["spec"]["instanceSidecarConfiguration"]["resources"]
    assert resources == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    assert schema_gate([ROOT / "dist" / "rendered" / env]) == []
