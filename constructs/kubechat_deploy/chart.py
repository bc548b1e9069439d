"""Composition: the environment-neutral base chart and the charts rendered as Kustomize components
(opt-in structure that only some environments include)."""
from __future__ import annotations

from dataclasses import dataclass, field

from cdk8s import Chart
from constructs import Construct

from kubechat_deploy.security.admission import AdmissionPolicies, ImageDigestPolicy, KyvernoPolicies, SupplyChainProps
from kubechat_deploy.app.api import ApiProps, KubeChatApi
from kubechat_deploy.data.backups import BackupProps, LogicalBackups, PhysicalBackups, PreMigrationBackup
from kubechat_deploy.data.database import DatabaseProps, KubeChatDatabase
from kubechat_deploy.app.dev_tools import DevTools, DevToolsProps
from kubechat_deploy.data.migration import KubeChatMigration, MigrationProps
from kubechat_deploy.observability.monitoring import KubeChatMonitoring, MonitoringProps
from kubechat_deploy.data.redis import KubeChatRedis, RedisProps
from kubechat_deploy.layout import BASE_CHART, COMPONENT_PREFIX, PLATFORM_PREFIX
from kubechat_deploy.security.external_secrets import ExternalSecretsProps, KubeChatExternalSecrets
from kubechat_deploy.app.exposure import ExposureProps, PublicExposure
from kubechat_deploy.security.namespace import KubeChatNamespace, NamespaceProps
from kubechat_deploy.security.network import KubeChatNetworkPolicies, NetworkProps
from kubechat_deploy.delivery.progressive import ProgressiveDelivery, ProgressiveProps
from kubechat_deploy.security.rbac import ApiRbac
from kubechat_deploy.app.smoke_test import SmokeTest, SyncFailureRecord
from kubechat_deploy.validation import SettingsError
from kubechat_deploy.app.web import KubeChatWeb, WebProps



@dataclass(frozen=True, kw_only=True)
class KubeChatProps:
    """Settings of everything the environments render (the platform's are PlatformProps); each field's own
    docstring gives its defaults."""

    namespace: NamespaceProps = field(default_factory=NamespaceProps)
    """Namespace, quota and limits. Default: NamespaceProps()."""
    monitoring: MonitoringProps = field(default_factory=MonitoringProps)
    """How Prometheus discovers monitors. Default: MonitoringProps()."""
    database: DatabaseProps = field(default_factory=DatabaseProps)
    """PostgreSQL (CloudNativePG) and PgBouncer. Default: DatabaseProps()."""
    redis: RedisProps = field(default_factory=RedisProps)
    """Valkey cache. Default: RedisProps()."""
    backups: BackupProps = field(default_factory=BackupProps)
    """Physical and logical backups, restore drills. Default: BackupProps()."""
    migration: MigrationProps = field(default_factory=MigrationProps)
    """Schema migration Job. Default: MigrationProps()."""
    api: ApiProps = field(default_factory=ApiProps)
    """The API workload. Default: ApiProps()."""
    web: WebProps = field(default_factory=WebProps)
    """The web front end. Default: WebProps()."""
    network: NetworkProps = field(default_factory=NetworkProps)
    """Namespaces of the shared components the NetworkPolicies admit. Default: NetworkProps()."""
    exposure: ExposureProps = field(default_factory=ExposureProps)
    """Public exposure through the Gateway API with TLS (component public-gateway). Default: ExposureProps()."""
    progressive: ProgressiveProps = field(default_factory=ProgressiveProps)
    """Canary rollouts with analysis (component progressive-delivery). Default: ProgressiveProps()."""
    dev_tools: DevToolsProps = field(default_factory=DevToolsProps)
    """pgAdmin and redis-commander for dev (component dev-tools). Default: DevToolsProps()."""
    external_secrets: ExternalSecretsProps = field(default_factory=ExternalSecretsProps)
    """Secrets from the secret store (component external-secrets). Default: ExternalSecretsProps()."""
    supply_chain: SupplyChainProps = field(default_factory=SupplyChainProps)
    """Admission policies: signed, scanned images from allowed registries. Default: SupplyChainProps()."""

    def __post_init__(self) -> None:
        # Every image KubeChat renders must pass its own admission policies.
        images = {"api.image": self.api.image, "web.image": self.web.image, "redis.image": self.redis.image,
                  "redis.exporter_image": self.redis.exporter_image, "database.image": self.database.image,
                  "migration.image": self.migration.image, "backups.job_image": self.backups.job_image,
                  "dev_tools.pgadmin_image": self.dev_tools.pgadmin_image,
                  "dev_tools.redis_commander_image": self.dev_tools.redis_commander_image}
        for name, image in images.items():
            if not self.supply_chain.image_allowed(image):
                raise SettingsError(name, image, "an image under supply_chain.allowed_registries: "
                                    + ", ".join(self.supply_chain.allowed_registries))


class KubeChatChart(Chart):
    """The base every environment builds on."""

    def __init__(self, scope: Construct, id: str, *, props: KubeChatProps) -> None:
        super().__init__(scope, id, disable_resource_name_hashes=True)
        self.kubechat_namespace = KubeChatNamespace(self, "namespace", props=props.namespace)
        self.database = KubeChatDatabase(self, "database", props=props.database, monitoring=props.monitoring)
        self.redis = KubeChatRedis(self, "redis", props=props.redis, monitoring=props.monitoring)
        self.migration = KubeChatMigration(self, "migration", props=props.migration, database=self.database)
        self.backups = LogicalBackups(self, "backups", props=props.backups, database=self.database,
                                      release_config_map=props.migration.release_config_map)
        self.api = KubeChatApi(self, "api", props=props.api, database=self.database, redis=self.redis)
        self.web = KubeChatWeb(self, "web", props=props.web, api=self.api)
        self.rbac = ApiRbac(self, "rbac", api=self.api)
        self.smoke_test = SmokeTest(self, "smoke-test", api=self.api, web=self.web)
        self.sync_failure = SyncFailureRecord(self, "sync-failed", service_account=self.smoke_test.name)
        self.monitoring = KubeChatMonitoring(self, "monitoring", props=props.monitoring,
                                             api_service=self.api.service_name,
                                             api_labels=self.api.workload.labels,
                                             api_metrics_port=self.api.metrics_port_name)
        self.kyverno = KyvernoPolicies(self, "kyverno", props=props.supply_chain, namespace=self.kubechat_namespace.name)
        self.admission = AdmissionPolicies(self, "admission", props=props.supply_chain,
                                           namespace=self.kubechat_namespace.name)
        self.network = KubeChatNetworkPolicies(self, "network", props=props.network, api=self.api, web=self.web,
                                               database=self.database, redis=self.redis, migration=self.migration,
                                               backups=self.backups, smoke_test=self.smoke_test)


class PublicGatewayComponent(Chart):
    def __init__(self, scope: Construct, *, props: KubeChatProps, base: KubeChatChart) -> None:
        super().__init__(scope, COMPONENT_PREFIX + "public-gateway", disable_resource_name_hashes=True)
        self.exposure = PublicExposure(self, "exposure", props=props.exposure, api=base.api, web=base.web,
                                       proxy_namespace=props.network.proxy_namespace)


class ExternalSecretsComponent(Chart):
    def __init__(self, scope: Construct, *, props: KubeChatProps, base: KubeChatChart) -> None:
        super().__init__(scope, COMPONENT_PREFIX + "external-secrets", disable_resource_name_hashes=True)
        self.secrets = KubeChatExternalSecrets(self, "secrets", props=props.external_secrets, api=base.api,
                                               redis=base.redis, database=base.database)


class DevToolsComponent(Chart):
    def __init__(self, scope: Construct, *, props: KubeChatProps, base: KubeChatChart) -> None:
        super().__init__(scope, COMPONENT_PREFIX + "dev-tools", disable_resource_name_hashes=True)
        self.tools = DevTools(self, "tools", props=props.dev_tools, database=base.database, redis=base.redis)


class PhysicalBackupsComponent(Chart):
    def __init__(self, scope: Construct, *, props: KubeChatProps, base: KubeChatChart) -> None:
        super().__init__(scope, COMPONENT_PREFIX + "physical-backups", disable_resource_name_hashes=True)
        self.backups = PhysicalBackups(self, "backups", props=props.backups, database=base.database)


class PreMigrationBackupComponent(Chart):
    def __init__(self, scope: Construct, *, props: KubeChatProps, base: KubeChatChart) -> None:
        super().__init__(scope, COMPONENT_PREFIX + "pre-migration-backup", disable_resource_name_hashes=True)
        self.backup = PreMigrationBackup(self, "backup", database=base.database)


class ProgressiveDeliveryComponent(Chart):
    def __init__(self, scope: Construct, *, props: KubeChatProps, base: KubeChatChart) -> None:
        super().__init__(scope, COMPONENT_PREFIX + "progressive-delivery", disable_resource_name_hashes=True)
        self.rollouts = ProgressiveDelivery(self, "rollouts", props=props.progressive, api=base.api, web=base.web)


class ImageDigestsComponent(Chart):
    def __init__(self, scope: Construct, *, props: KubeChatProps, base: KubeChatChart) -> None:
        super().__init__(scope, COMPONENT_PREFIX + "image-digests", disable_resource_name_hashes=True)
        self.policy = ImageDigestPolicy(self, "policy", props=props.supply_chain, namespace=base.kubechat_namespace.name)
