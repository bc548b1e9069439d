"""Schema migrations: the SQL files of migrations/ shipped as a ConfigMap, applied by one Argo CD
Sync-hook Job after the database is healthy and before the new API pods roll. The Job runs
jobs/migrate_up.sh: golang-migrate up to the release's SCHEMA_VERSION (the overlay's `kubechat-release`
ConfigMap), never down: a rollback to a release with a lower SCHEMA_VERSION leaves the newer schema in
place (expand/contract, docs/data-tier.md). Going down is docs/upgrade.md's explicit procedure."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cdk8s_plus_28 import k8s
from constructs import Construct

from kubechat_deploy import validation as v
from kubechat_deploy.data.database import KubeChatDatabase
from kubechat_deploy.labels import selector_labels, standard_labels
from kubechat_deploy.security.pod_security import container_security_context, pod_security_context
from kubechat_deploy.delivery.sync import Wave, sync_hook, wave
from kubechat_deploy.app.workload import Resources, env_from_config_map, env_from_secret, env_value

PROJECT_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True, kw_only=True)
class MigrationProps:
    """Settings of the migration Job."""

    name: str = "kubechat-migrate"
    """Name of the Job and its ServiceAccount. Default: kubechat-migrate."""
    image: str = "docker.io/migrate/migrate:v4.19.1"
    """golang-migrate image; the tests drive the same version's CLI. Default: docker.io/migrate/migrate:v4.19.1."""
    folder: Path = field(default_factory=lambda: PROJECT_ROOT / "migrations")
    """Folder of NNNN_name.up.sql / .down.sql files. Default: <project>/migrations."""
    release_config_map: str = "kubechat-release"
    """ConfigMap each overlay generates with SCHEMA_VERSION (the release's target). Default: kubechat-release."""
    deadline_seconds: int = 900
    """The Job fails (and the sync with it) after this long. Default: 900."""
    run_as_user: int = 10001
    """UID/GID (>= 10000). Default: 10001."""

    def __post_init__(self) -> None:
        v.dns_label("migration.name", self.name)
        if ":" not in self.image or self.image.endswith(":latest"):
            raise v.SettingsError("migration.image", self.image, "an image pinned to a version tag")
        if not self.folder.is_dir():
            raise v.SettingsError("migration.folder", str(self.folder), "an existing folder of migrations")
        v.at_least("migration.deadline_seconds", self.deadline_seconds, 60)


class KubeChatMigration(Construct):
    COMPONENT = "migration"

    def __init__(self, scope: Construct, id: str, *, props: MigrationProps, database: KubeChatDatabase) -> None:
        super().__init__(scope, id)
        from kubechat_deploy.data.migration_files import check_expand_contract, load_migrations  # the checks `make test` runs

        migrations = load_migrations(props.folder)
        check_expand_contract(props.folder)
        self.config_map_name = "kubechat-migrations"
        self.job_name = props.name
        self.pod_selector = selector_labels(self.COMPONENT)
        labels = standard_labels(self.COMPONENT)
        files = {"migrate_up.sh": (PROJECT_ROOT / "jobs" / "migrate_up.sh").read_text()}
        for m in migrations:
            files[m.up.name] = m.up.read_text()
            files[m.down.name] = m.down.read_text()
        k8s.KubeConfigMap(self, "files", metadata=k8s.ObjectMeta(
            name=self.config_map_name, labels=labels, annotations=wave(Wave.CONFIGURATION)), data=files)
        k8s.KubeServiceAccount(self, "service-account", metadata=k8s.ObjectMeta(name=props.name, labels=labels, annotations=wave(Wave.NAMESPACE)),
                               automount_service_account_token=False)
        # Directly to the primary, not through PgBouncer: golang-migrate holds an advisory lock for the
        # whole run, which transaction pooling would break.
        url = (f"postgres://$(DB_USER):$(DB_PASSWORD)@{database.rw_service_name}:{database.port}/"
               f"{database.database}?{database.tls_query}")
        k8s.KubeJob(self, "job", metadata=k8s.ObjectMeta(name=props.name, labels=labels,
                                                         annotations=sync_hook(Wave.MIGRATION)),
                    spec=k8s.JobSpec(
                        backoff_limit=2,
                        active_deadline_seconds=props.deadline_seconds,
                        template=k8s.PodTemplateSpec(
                            metadata=k8s.ObjectMeta(labels=labels),
                            spec=k8s.PodSpec(
                                restart_policy="Never",
                                service_account_name=props.name,
                                automount_service_account_token=False,
                                security_context=pod_security_context(props.run_as_user, props.run_as_user),
                                containers=[k8s.Container(
                                    name="migrate",
                                    image=props.image,
                                    image_pull_policy="IfNotPresent",
                                    env=[env_from_secret("DB_USER", database.app_secret_name, "username"),
                                         env_from_secret("DB_PASSWORD", database.app_secret_name, "password"),
                                         env_value("DATABASE_URL", url),
                                         env_from_config_map("SCHEMA_VERSION", props.release_config_map,
                                                             "SCHEMA_VERSION")],
                                    command=["/bin/sh", "/migrations/migrate_up.sh"],
                                    resources=Resources(cpu_request="50m", memory_request="64Mi", cpu_limit="500m",
                                                        memory_limit="128Mi").render(),
                                    security_context=container_security_context(),
                                    volume_mounts=[k8s.VolumeMount(name="migrations", mount_path="/migrations",
                                                                   read_only=True), database.ca_mount()],
                                )],
                                volumes=[k8s.Volume(name="migrations", config_map=k8s.ConfigMapVolumeSource(
                                    name=self.config_map_name)), database.ca_volume()],
                            ))))
