"""Backups. Physical: CloudNativePG with the barman-cloud plugin archives WAL continuously to an
S3-compatible object store and takes scheduled base backups (component physical-backups, staging
and production). Logical: a nightly pg_dump CronJob and a weekly restore-drill CronJob, running the
scripts of jobs/ shipped in a ConfigMap (base, every environment: dev keeps dumps on a PVC).
Production also takes an on-demand physical backup before every sync's migration (component
pre-migration-backup)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cdk8s import ApiObject, JsonPatch
from cdk8s_plus_28 import k8s
from constructs import Construct

import imports.barman_cloud.io.cnpg.barmancloud as barman
import imports.cnpg.io.cnpg.postgresql as pg

from kubechat_deploy import validation as v
from kubechat_deploy.data.database import KubeChatDatabase
from kubechat_deploy.data.sizing import DRILL_SCRATCH_FACTOR, backup_deadline_seconds, drill_deadline_seconds, scaled
from kubechat_deploy.security.external_secrets import external_secret
from kubechat_deploy.labels import selector_labels, standard_labels
from kubechat_deploy.layout import RENDER_AS_PATCH
from kubechat_deploy.security.pod_security import container_security_context, pod_security_context
from kubechat_deploy.delivery.sync import KEPT_AFTER_RELEASE, PER_SCHEMA_LABEL, Wave, wave
from kubechat_deploy.app.workload import Resources, env_from_config_map, env_from_secret, env_value

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PLUGIN = "barman-cloud.cloudnative-pg.io"


@dataclass(frozen=True, kw_only=True)
class BackupProps:
    """Schedules, retention and where backups go; overlays patch the object store per environment."""

    object_store: str = "kubechat-backups"
    """Name of the barman-cloud ObjectStore. Default: kubechat-backups."""
    destination_path: str = "s3://SET-IN-OVERLAY/kubechat"
    """s3://bucket/path of base backups and WAL; overlays must set it (render rejects the placeholder). Default: s3://SET-IN-OVERLAY/kubechat."""
    endpoint_url: str = "https://s3.amazonaws.com"
    """S3-compatible endpoint. Default: https://s3.amazonaws.com."""
    credentials_secret: str = "kubechat-backup-credentials"
    """Secret with ACCESS_KEY_ID and ACCESS_SECRET_KEY, synced by External Secrets. Default: kubechat-backup-credentials."""
    credentials_store: str = "secret-store"
    """The environment's ClusterSecretStore the credentials come from, named as ExternalSecretsProps.cluster_secret_store (prefixed per environment). Default: secret-store."""
    credentials_remote_key: str = "kubechat/ENVIRONMENT/backup"
    """Remote key of those credentials; overlays set kubechat/<env>/backup. Default: kubechat/ENVIRONMENT/backup."""
    physical_schedule: str = "0 0 2 * * *"
    """ScheduledBackup cron, six fields, seconds first (CloudNativePG). Default: 0 0 2 * * * (02:00 daily)."""
    physical_retention_days: int = 30
    """Base backups and WAL kept this many days (ObjectStore retentionPolicy). Default: 30."""
    archive_timeout: str = "5min"
    """A WAL segment is archived at least this often, so a quiet database still archives. Default: 5min."""
    logical_schedule: str = "30 3 * * *"
    """Logical backup CronJob schedule. Default: 30 3 * * * (03:30 daily)."""
    logical_retention_days: int = 30
    """Logical dumps older than this are deleted... Default: 30."""
    logical_keep_newest: int = 7
    """...but never one of the newest this many. Default: 7."""
    drill_schedule: str = "0 5 * * 0"
    """Restore drill CronJob schedule. Default: 0 5 * * 0 (Sundays 05:00)."""
    job_image: str = ("ghcr.io/cloudnative-pg/postgresql:17.11-202608170816-system-trixie"
                      "@sha256:ecaa395084a5f8831fd2655dbffc98b554473526265f53113ec969de6fc15848")
    """Image of the backup and drill jobs: PostgreSQL 17 client and server, Python 3 with boto3 and
    psycopg2 (the barman-cloud tools, which only the `system` flavour carries: deprecated upstream, so
    replace it when CloudNativePG removes it), pinned by full tag and digest as CloudNativePG's catalog
    lists it (cloudnative-pg/artifacts image-catalogs/catalog-system-trixie.yaml at da879047).
    Default: ghcr.io/cloudnative-pg/postgresql:17.11-202608170816-system-trixie@sha256:ecaa3950..."""
    scratch_size: str | None = None
    """Scratch volume of the logical backup (/tmp: the whole dump): a volume claimed per run from the default
    storage class, never node disk. Default: the database's storage size (DatabaseProps.storage_size); an
    overlay that patches the Cluster's storage patches this too, and the render refuses a smaller one."""
    drill_scratch_size: str | None = None
    """Scratch volume of the restore drill (/tmp: the downloaded dump and the database restored from it, both
    up to the database's size). Default: twice the database's storage size; the render refuses less."""
    object_store_ports: tuple[int, ...] = (443,)
    """Ports the jobs may reach the object store on (add 9000 for a MinIO endpoint). Default: (443,)."""
    sidecar_cpu_request: str = "100m"
    """CPU request of the barman-cloud sidecar in each database pod (WAL archiving, up to 4 archivers at
    once, and base backups), set through the ObjectStore's instanceSidecarConfiguration (without it the
    sidecar gets the namespace's LimitRange default). No CPU limit, as for PostgreSQL itself: a throttled
    archiver lets WAL pile up. Default: 100m."""
    sidecar_memory_request: str = "256Mi"
    """Memory request of the barman-cloud sidecar. Default: 256Mi."""
    sidecar_memory_limit: str = "512Mi"
    """Memory limit of the barman-cloud sidecar (4 parallel WAL archivers and a base backup with 2 jobs,
    each a Python process). Default: 512Mi."""

    def __post_init__(self) -> None:
        v.dns_label("backups.object_store", self.object_store)
        for name in ("scratch_size", "drill_scratch_size"):
            if getattr(self, name) is not None:
                v.quantity(f"backups.{name}", getattr(self, name))
        for name in ("sidecar_cpu_request", "sidecar_memory_request", "sidecar_memory_limit"):
            v.quantity(f"backups.{name}", getattr(self, name))
        if v.bytes_of(self.sidecar_memory_request) > v.bytes_of(self.sidecar_memory_limit):
            raise v.SettingsError("backups.sidecar_memory_request", self.sidecar_memory_request,
                                  f"at most backups.sidecar_memory_limit ({self.sidecar_memory_limit})")
        if not self.destination_path.startswith("s3://") or len(self.destination_path) < 8:
            raise v.SettingsError("backups.destination_path", self.destination_path, "s3://bucket/path")
        if not self.endpoint_url.startswith(("https://", "http://")):
            raise v.SettingsError("backups.endpoint_url", self.endpoint_url, "an http(s):// URL")
        v.dns_subdomain("backups.credentials_secret", self.credentials_secret)
        v.cron("backups.physical_schedule", self.physical_schedule, seconds=True)
        v.cron("backups.logical_schedule", self.logical_schedule)
        v.cron("backups.drill_schedule", self.drill_schedule)
        v.at_least("backups.physical_retention_days", self.physical_retention_days, 1)
        v.at_least("backups.logical_retention_days", self.logical_retention_days, 1)
        v.at_least("backups.logical_keep_newest", self.logical_keep_newest, 1)
        if not self.archive_timeout[:-3].isdigit() or not self.archive_timeout.endswith("min"):
            raise v.SettingsError("backups.archive_timeout", self.archive_timeout, "minutes, such as 5min")
        for p in self.object_store_ports:
            v.port("backups.object_store_ports", p)


class PhysicalBackups(Construct):
    """ObjectStore, ScheduledBackup, credentials, and the patch that makes the Cluster archive WAL."""

    def __init__(self, scope: Construct, id: str, *, props: BackupProps, database: KubeChatDatabase) -> None:
        super().__init__(scope, id)
        labels = standard_labels("backup")
        external_secret(self, "credentials", name=props.credentials_secret, labels=labels,
                        store=props.credentials_store, remote_key=props.credentials_remote_key, refresh="1h")
        secret_key = lambda key: {"name": props.credentials_secret, "key": key}  # noqa: E731
        barman.ObjectStore(self, "object-store", metadata={"name": props.object_store, "labels": labels,
                                                            "annotations": wave(Wave.CONFIGURATION)},
                           spec=barman.ObjectStoreSpec(
                               retention_policy=f"{props.physical_retention_days}d",
                               # The plugin copies these onto its sidecar in every instance pod (plugin-barman-cloud
                               # v0.14.0 internal/cnpgi/operator/lifecycle_resources.go, collectSidecarResourcesForPod).
                               instance_sidecar_configuration=barman.ObjectStoreSpecInstanceSidecarConfiguration(
                                   resources=barman.ObjectStoreSpecInstanceSidecarConfigurationResources(
                                       requests={"cpu": barman.ObjectStoreSpecInstanceSidecarConfigurationResourcesRequests.from_string(props.sidecar_cpu_request),
                                                 "memory": barman.ObjectStoreSpecInstanceSidecarConfigurationResourcesRequests.from_string(props.sidecar_memory_request)},
                                       limits={"memory": barman.ObjectStoreSpecInstanceSidecarConfigurationResourcesLimits.from_string(props.sidecar_memory_limit)})),
                               configuration=barman.ObjectStoreSpecConfiguration(
                                   destination_path=props.destination_path,
                                   endpoint_url=props.endpoint_url,
                                   s3_credentials=barman.ObjectStoreSpecConfigurationS3Credentials(
                                       access_key_id=barman.ObjectStoreSpecConfigurationS3CredentialsAccessKeyId(
                                           **secret_key("ACCESS_KEY_ID")),
                                       secret_access_key=barman.ObjectStoreSpecConfigurationS3CredentialsSecretAccessKey(
                                           **secret_key("ACCESS_SECRET_KEY"))),
                                   wal=barman.ObjectStoreSpecConfigurationWal(
                                       compression=barman.ObjectStoreSpecConfigurationWalCompression.GZIP, max_parallel=4),
                                   data=barman.ObjectStoreSpecConfigurationData(
                                       compression=barman.ObjectStoreSpecConfigurationDataCompression.GZIP, jobs=2))))
        pg.ScheduledBackup(self, "scheduled", metadata={"name": f"{database.cluster_name}-daily", "labels": labels,
                                                         "annotations": wave(Wave.DATA)},
                           spec=pg.ScheduledBackupSpec(
                               cluster=pg.ScheduledBackupSpecCluster(name=database.cluster_name),
                               schedule=props.physical_schedule,
                               immediate=True,
                               backup_owner_reference=pg.ScheduledBackupSpecBackupOwnerReference.SELF,
                               method=pg.ScheduledBackupSpecMethod.PLUGIN,
                               plugin_configuration=pg.ScheduledBackupSpecPluginConfiguration(name=PLUGIN)))
        cluster_patch = ApiObject(self, "cluster-patch", api_version="postgresql.cnpg.io/v1", kind="Cluster",
                                  metadata={"name": database.cluster_name, "annotations": dict(RENDER_AS_PATCH)})
        cluster_patch.add_json_patch(JsonPatch.add("/spec", {
            "plugins": [{"name": PLUGIN, "isWALArchiver": True,
                         "parameters": {"barmanObjectName": props.object_store, "serverName": database.cluster_name}}],
            "postgresql": {"parameters": {"archive_timeout": props.archive_timeout}},
        }))


class PreMigrationBackup(Construct):
    """An on-demand physical backup before a release's migration raises the schema (production). An ordinary
    resource, not a hook: it is named after the release's SCHEMA_VERSION (the environment's transformers append
    it), so Argo CD creates it, and CloudNativePG takes it, once per schema version: a release that keeps the
    schema, a retry and a rollback find it there and wait for nothing. The migration (the next wave) waits
    until it completed (the health check in docs/platform.md). Kept after later releases (Prune=false,
    IgnoreExtraneous): a rollback to a schema finds that schema's backup."""

    def __init__(self, scope: Construct, id: str, *, database: KubeChatDatabase) -> None:
        super().__init__(scope, id)
        self.name_prefix = f"{database.cluster_name}-pre-migration-schema"
        pg.Backup(self, "backup", metadata={"name": self.name_prefix,
                                            "labels": {**standard_labels("backup"), PER_SCHEMA_LABEL: "true"},
                                            "annotations": {**wave(Wave.SAFETY_BACKUP), **KEPT_AFTER_RELEASE}},
                  spec=pg.BackupSpec(cluster=pg.BackupSpecCluster(name=database.cluster_name),
                                     method=pg.BackupSpecMethod.PLUGIN,
                                     plugin_configuration=pg.BackupSpecPluginConfiguration(name=PLUGIN)))


POSTGRES_IMAGE_UID = 26
"""The postgres user of CloudNativePG's PostgreSQL images, which the jobs run (the operator runs its own
instances with it: api/v1/cluster_types.go, DefaultPostgresUID = 26)."""


class LogicalBackups(Construct):
    """The nightly pg_dump CronJob and the weekly restore drill, with their scripts and settings."""

    COMPONENT = "backup"

    def __init__(self, scope: Construct, id: str, *, props: BackupProps, database: KubeChatDatabase,
                 release_config_map: str, scripts: Path = PROJECT_ROOT / "jobs") -> None:
        super().__init__(scope, id)
        self.props = props
        size = database.props.storage_size
        self.scratch_size = props.scratch_size or size
        self.drill_scratch_size = props.drill_scratch_size or scaled(size, DRILL_SCRATCH_FACTOR)
        self.scripts_config_map = "kubechat-backup-scripts"
        self.settings_config_map = "kubechat-backup-settings"
        """Each overlay generates it: BACKUP_TARGET, S3_ENDPOINT_URL, RETENTION_DAYS, RETENTION_KEEP_NEWEST."""
        self.volume_claim = "kubechat-logical-backups"
        self.backup_pod_labels = selector_labels("logical-backup")
        self.drill_pod_labels = selector_labels("restore-drill")
        labels = standard_labels(self.COMPONENT)
        k8s.KubeConfigMap(self, "scripts", metadata=k8s.ObjectMeta(
            name=self.scripts_config_map, labels=labels, annotations=wave(Wave.CONFIGURATION)),
            data={p.name: p.read_text() for p in sorted(scripts.glob("*.py"))})
        k8s.KubeServiceAccount(self, "service-account", metadata=k8s.ObjectMeta(
            name="kubechat-backup", labels=labels, annotations=wave(Wave.NAMESPACE)),
            automount_service_account_token=False)
        credentials = [
            k8s.EnvVar(name=name, value_from=k8s.EnvVarSource(secret_key_ref=k8s.SecretKeySelector(
                name=props.credentials_secret, key=key, optional=True)))
            for name, key in (("AWS_ACCESS_KEY_ID", "ACCESS_KEY_ID"), ("AWS_SECRET_ACCESS_KEY", "ACCESS_SECRET_KEY"))]
        settings = [k8s.EnvFromSource(config_map_ref=k8s.ConfigMapEnvSource(name=self.settings_config_map))]
        self._cronjob("logical-backup", "kubechat-logical-backup", props.logical_schedule, self.backup_pod_labels,
                      ["python3", "/scripts/logical_backup.py"],
                      env=[env_value("PGHOST", database.rw_service_name), env_value("PGPORT", str(database.port)),
                           env_value("PGDATABASE", database.database), env_value("PGSSLMODE", "verify-full"),
                           env_value("PGSSLROOTCERT", database.ca_file),
                           # The read-only backup role, not the owner (docs/security.md, "Database roles").
                           env_from_secret("PGUSER", database.backup_secret_name, "username"),
                           env_from_secret("PGPASSWORD", database.backup_secret_name, "password"), *credentials],
                      env_from=settings, deadline=backup_deadline_seconds(size), scratch=self.scratch_size,
                      database_ca=(database.ca_volume(), database.ca_mount()))
        self._cronjob("restore-drill", "kubechat-restore-drill", props.drill_schedule, self.drill_pod_labels,
                      ["python3", "/scripts/restore_drill.py", "--scratch-server"],
                      env=[env_from_config_map("EXPECTED_SCHEMA_VERSION", release_config_map, "SCHEMA_VERSION"),
                           env_value("PG_BIN", "/usr/lib/postgresql/17/bin"), *credentials],
                      env_from=settings, deadline=drill_deadline_seconds(size), scratch=self.drill_scratch_size)

    def _cronjob(self, component, name, schedule, pod_labels, command, *, env, env_from, deadline, scratch,
                 database_ca: tuple[k8s.Volume, k8s.VolumeMount] | None = None) -> None:
        labels = {**standard_labels(component), **pod_labels}
        k8s.KubeCronJob(self, component, metadata=k8s.ObjectMeta(name=name, labels=labels,
                                                                   annotations=wave(Wave.WORKLOADS)),
                        spec=k8s.CronJobSpec(
                            schedule=schedule,
                            concurrency_policy="Forbid",
                            starting_deadline_seconds=3600,
                            successful_jobs_history_limit=1,
                            failed_jobs_history_limit=1,
                            job_template=k8s.JobTemplateSpec(spec=k8s.JobSpec(
                                backoff_limit=2,
                                # A finished Job's pod keeps its scratch volume (claimed against the
                                # namespace's storage quota) until the Job is deleted: an hour to read its
                                # logs (Loki keeps them), then it goes. The failure alerts read the
                                # CronJob's schedule and success times, not kept Jobs.
                                ttl_seconds_after_finished=3600,
                                active_deadline_seconds=deadline,
                                template=k8s.PodTemplateSpec(
                                    metadata=k8s.ObjectMeta(labels=labels),
                                    spec=k8s.PodSpec(
                                        restart_policy="Never",
                                        service_account_name="kubechat-backup",
                                        automount_service_account_token=False,
                                        # The image's own postgres user: initdb (the drill's scratch server)
                                        # fails for a UID without a passwd entry in the image.
                                        security_context=pod_security_context(POSTGRES_IMAGE_UID, POSTGRES_IMAGE_UID),
                                        containers=[k8s.Container(
                                            name=component, image=self.props.job_image, image_pull_policy="IfNotPresent",
                                            command=command, env=env, env_from=env_from,
                                            resources=Resources(cpu_request="100m", memory_request="256Mi",
                                                                cpu_limit="1", memory_limit="1Gi").render(),
                                            security_context=container_security_context(),
                                            volume_mounts=[
                                                k8s.VolumeMount(name="scripts", mount_path="/scripts", read_only=True),
                                                k8s.VolumeMount(name="backups", mount_path="/backups"),
                                                k8s.VolumeMount(name="tmp", mount_path="/tmp"),
                                                *([database_ca[1]] if database_ca else [])])],
                                        volumes=[
                                            k8s.Volume(name="scripts", config_map=k8s.ConfigMapVolumeSource(
                                                name=self.scripts_config_map)),
                                            # dev replaces this with the PVC kubechat-logical-backups
                                            k8s.Volume(name="backups", empty_dir=k8s.EmptyDirVolumeSource(
                                                size_limit=k8s.Quantity.from_string("1Mi"))),
                                            # Sized like the database and claimed per run (a generic ephemeral
                                            # volume: deleted with the pod), so a large database never fills
                                            # the node's disk.
                                            k8s.Volume(name="tmp", ephemeral=k8s.EphemeralVolumeSource(
                                                volume_claim_template=k8s.PersistentVolumeClaimTemplate(
                                                    metadata=k8s.ObjectMeta(labels=labels),
                                                    spec=k8s.PersistentVolumeClaimSpec(
                                                        access_modes=["ReadWriteOnce"],
                                                        resources=k8s.ResourceRequirements(requests={
                                                            "storage": k8s.Quantity.from_string(scratch)}))))),
                                            *([database_ca[0]] if database_ca else [])],
                                    ))))))
