"""PostgreSQL on CloudNativePG: the Cluster (operator-managed failover, app database and owner
created at bootstrap with an operator-managed credentials Secret), a PgBouncer Pooler the API
connects through, and a PodMonitor for the operator's metrics."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from cdk8s_plus_28 import k8s
from constructs import Construct

import imports.cnpg.io.cnpg.postgresql as pg
import imports.monitoring.com.coreos.monitoring as mon

from kubechat_deploy import validation as v
from kubechat_deploy.data.migration_files import API_ROLE
from kubechat_deploy.labels import standard_labels
from kubechat_deploy.observability.monitoring import MonitoringProps
from kubechat_deploy.delivery.sync import KEEP, Wave, wave


@dataclass(frozen=True, kw_only=True)
class DatabaseProps:
    """Settings of the PostgreSQL cluster and its pooler; overlays patch instances, storage and size."""

    name: str = "kubechat-db"
    """Name of the CloudNativePG Cluster; its Services are <name>-rw/-ro/-r. Default: kubechat-db."""
    image: str = ("ghcr.io/cloudnative-pg/postgresql:17.11-202608170816-standard-trixie"
                  "@sha256:91e0de662d53895a45f1396f4ee1a75daeb0c26fc87853afc9c8f43e01fdaa21")
    """PostgreSQL image (16 or newer), pinned by its full tag and digest: the `standard` flavour (backups go
    through the barman-cloud plugin, so the deprecated `system` flavour is not needed), as CloudNativePG's
    own catalog lists it (cloudnative-pg/artifacts image-catalogs/catalog-standard-trixie.yaml at
    da879047). Never a rolling tag such as `17.6` (deprecated, postgres-containers README "Deprecated
    Rolling Tags"). Default: ghcr.io/cloudnative-pg/postgresql:17.11-202608170816-standard-trixie@sha256:91e0de66..."""
    instances: int = 1
    """PostgreSQL instances (1 primary + replicas). Default: 1."""
    storage_size: str = "5Gi"
    """Data volume size per instance. Default: 5Gi."""
    storage_class: str | None = None
    """StorageClass of the data volumes; None uses the cluster default. Default: None."""
    database: str = "kubechat"
    """Application database created at bootstrap. Default: kubechat."""
    owner: str = "kubechat"
    """Owner role of the application database. Default: kubechat."""
    max_connections: int = 200
    """PostgreSQL max_connections. Default: 200."""
    superuser_reserved_connections: int = 3
    """Connections kept for superusers (the operator). Default: 3."""
    cpu_request: str = "250m"
    """CPU request per instance. Default: 250m."""
    memory: str = "1Gi"
    """Memory request and limit per instance (equal: PostgreSQL must not be OOM-killed by overcommit). Default: 1Gi."""
    pooler_instances: int = 1
    """PgBouncer pods. Default: 1."""
    pool_size: int = 20
    """PgBouncer default_pool_size: server connections per database and user. Default: 20."""
    reserve_pool_size: int = 5
    """PgBouncer reserve_pool_size: extra server connections under load. Default: 5."""
    max_client_connections: int = 500
    """PgBouncer max_client_conn: client connections one pooler pod accepts. Default: 500."""

    def __post_init__(self) -> None:
        v.dns_label("database.name", self.name)
        v.image("database.image", self.image.split(":")[0])
        tag = self.image.split("@")[0].rsplit(":", 1)[-1]
        match = re.fullmatch(r"(\d+)\.\d+(-\d{12})?-(minimal|standard|system)-[a-z]+", tag)
        if not match or int(match.group(1)) < 16:
            raise v.SettingsError("database.image", self.image,
                                  "a PostgreSQL 16 or newer image with a tag naming its flavour and distribution, "
                                  "ideally fully qualified with its digest, e.g. ghcr.io/cloudnative-pg/postgresql:"
                                  "17.11-202608170816-standard-trixie@sha256:... (not a deprecated rolling tag such "
                                  "as 17.6)")
        v.at_least("database.instances", self.instances, 1)
        v.quantity("database.storage_size", self.storage_size)
        if self.storage_size.startswith(("0", "-")):
            raise v.SettingsError("database.storage_size", self.storage_size, "a positive size such as 5Gi")
        if self.storage_class is not None:
            v.dns_subdomain("database.storage_class", self.storage_class)
        for name in ("database", "owner"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.isidentifier() or value != value.lower():
                raise v.SettingsError(f"database.{name}", value, "a lowercase PostgreSQL identifier")
        v.at_least("database.max_connections", self.max_connections, 20)
        v.at_least("database.superuser_reserved_connections", self.superuser_reserved_connections, 1)
        v.quantity("database.cpu_request", self.cpu_request)
        v.quantity("database.memory", self.memory)
        v.at_least("database.pooler_instances", self.pooler_instances, 1)
        v.at_least("database.pool_size", self.pool_size, 1)
        v.at_least("database.reserve_pool_size", self.reserve_pool_size, 0)
        v.at_least("database.max_client_connections", self.max_client_connections, 1)


class KubeChatDatabase(Construct):
    API_ROLE = API_ROLE
    """The API's database role: migrations/0006_least_privilege.up.sql grants it the application's tables, and
    on the audit trail only SELECT and INSERT of the columns a writer chooses."""
    BACKUP_ROLE = "kubechat_backup"
    """The logical backups' role: reads everything (PostgreSQL's predefined role pg_read_all_data), writes nothing."""
    CA_DIR = "/etc/kubechat/database-ca"
    """Where the clients mount the database's CA certificate."""

    def __init__(self, scope: Construct, id: str, *, props: DatabaseProps, monitoring: MonitoringProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.cluster_name = props.name
        self.rw_service_name = f"{props.name}-rw"
        """Primary's Service: for the migration Job (session features) and administration."""
        self.app_secret_name = f"{props.name}-app"
        """Operator-managed Secret with the owner's username and password (keys username, password): the
        migration hook's only. The owner owns the audit trail's tables and triggers."""
        self.api_role = self.API_ROLE
        self.api_secret_name = f"{props.name}-api"
        """The API role's credentials (keys username, password): an ExternalSecret in staging and
        production, generated in dev. CloudNativePG sets the role's password from it."""
        self.backup_role = self.BACKUP_ROLE
        self.backup_secret_name = f"{props.name}-backup"
        """The logical backups' read-only role's credentials, made as the API role's are."""
        self.role_secrets = {self.api_role: self.api_secret_name, self.backup_role: self.backup_secret_name}
        """Each managed role and the Secret its password comes from."""
        self.ca_secret_name = f"{props.name}-ca"
        """Operator-made Secret of the CA that signs the instances' certificate, which PgBouncer presents to its
        clients too (key ca.crt; its ca.key is never mounted)."""
        self.ca_file = f"{self.CA_DIR}/ca.crt"
        self.tls_query = f"sslmode=verify-full&sslrootcert={self.ca_file}"
        """libpq's parameters for a client that checks the server is the one the CA signed for the name it dialled."""
        self.pooler_name = f"{props.name}-pooler-rw"
        self.pooler_service_name = self.pooler_name
        """Where the API connects: PgBouncer in transaction mode in front of the primary."""
        self.port = 5432
        self.database = props.database
        self.instance_pod_labels = {"cnpg.io/cluster": props.name, "cnpg.io/podRole": "instance"}
        self.pooler_pod_labels = {"cnpg.io/poolerName": self.pooler_name}
        # The operator's Job pods carry cnpg.io/jobRole instead of cnpg.io/podRole (CloudNativePG v1.30.0
        # pkg/specs/jobs.go CreatePrimaryJob; roles there and in pkg/reconciler/majorupgrade/job.go).
        # Selected without the cluster's name: the side-by-side recovery Cluster of `make restore-manifest`
        # (kubechat-db-r<stamp>) must bootstrap and archive in the same namespace under the same policies.
        self.job_pod_labels: dict[str, str] = {}
        self.any_instance_pod_labels = {"cnpg.io/podRole": "instance"}
        self.join_job_roles = ("join",)
        """Jobs that copy the primary (pg_basebackup over the replication protocol, port 5432)."""
        self.bootstrap_job_roles = ("initdb", "full-recovery", "snapshot-recovery", "major-upgrade")
        """Jobs that create or recover the data directory: the API server, and (recovery) the object store."""
        labels = standard_labels("database")

        storage = {"size": props.storage_size, "resize_in_use_volumes": True}
        if props.storage_class:
            storage["storage_class"] = props.storage_class
        pg.Cluster(self, "cluster", metadata={"name": props.name, "labels": labels,
                                              "annotations": {**wave(Wave.DATA), **KEEP}},
                   spec=pg.ClusterSpec(
                       instances=props.instances,
                       image_name=props.image,
                       primary_update_strategy=pg.ClusterSpecPrimaryUpdateStrategy.UNSUPERVISED,
                       enable_superuser_access=False,
                       storage=pg.ClusterSpecStorage(**storage),
                       resources=pg.ClusterSpecResources(
                           requests={"cpu": pg.ClusterSpecResourcesRequests.from_string(props.cpu_request),
                                     "memory": pg.ClusterSpecResourcesRequests.from_string(props.memory)},
                           limits={"memory": pg.ClusterSpecResourcesLimits.from_string(props.memory)}),
                       affinity=pg.ClusterSpecAffinity(enable_pod_anti_affinity=True,
                                                       pod_anti_affinity_type="preferred",
                                                       topology_key="kubernetes.io/hostname"),
                       bootstrap=pg.ClusterSpecBootstrap(initdb=pg.ClusterSpecBootstrapInitdb(
                           database=props.database, owner=props.owner, data_checksums=True, encoding="UTF8")),
                       # The API's and the backups' own roles, so the owner (who could rewrite the audit trail)
                       # is the migrations' only. The instance manager creates them and sets each password from
                       # its Secret, whose `username` must equal the role's name (CloudNativePG v1.30.0
                       # internal/management/controller/roles/runnable.go getPassword,
                       # internal/management/utils/secrets.go GetUserPasswordFromSecret); a changed Secret is
                       # applied when it carries the label cnpg.io/reload (internal/controller/cluster_predicates.go
                       # isUsefulClusterSecret).
                       # Clients verify the server's name (sslmode=verify-full). The instances' certificate names
                       # the -rw/-r/-ro Services (CloudNativePG v1.30.0 api/v1/cluster_funcs.go
                       # GetClusterAltDNSNames) and these; PgBouncer presents the same certificate to its clients
                       # (api/v1/pooler_funcs.go GetClientTLSSecretNameOrDefault: the Cluster's server TLS Secret),
                       # so the pooler's Service, which the API dials, is named here. The operator re-issues a
                       # certificate whose names differ (pkg/certs/k8s.go, DoAltDNSNamesMatch).
                       certificates=pg.ClusterSpecCertificates(server_alt_dns_names=[self.pooler_service_name]),
                       managed=pg.ClusterSpecManaged(roles=[
                           pg.ClusterSpecManagedRoles(
                               name=self.API_ROLE,
                               comment="KubeChat API: the application's tables; the audit trail read and append only",
                               ensure=pg.ClusterSpecManagedRolesEnsure.PRESENT, login=True, inherit=False,
                               password_secret=pg.ClusterSpecManagedRolesPasswordSecret(name=self.api_secret_name)),
                           pg.ClusterSpecManagedRoles(
                               name=self.BACKUP_ROLE,
                               comment="KubeChat logical backups: read only",
                               ensure=pg.ClusterSpecManagedRolesEnsure.PRESENT, login=True, inherit=True,
                               in_roles=["pg_read_all_data"],
                               password_secret=pg.ClusterSpecManagedRolesPasswordSecret(name=self.backup_secret_name)),
                       ]),
                       postgresql=pg.ClusterSpecPostgresql(parameters={
                           "max_connections": str(props.max_connections),
                           "superuser_reserved_connections": str(props.superuser_reserved_connections),
                           "shared_buffers": "256MB",
                           "effective_cache_size": "768MB",
                           "work_mem": "4MB",
                           "maintenance_work_mem": "64MB",
                           "wal_compression": "on",
                           "checkpoint_completion_target": "0.9",
                           "random_page_cost": "1.1",
                           "log_min_duration_statement": "1000",
                           "idle_in_transaction_session_timeout": "60000",
                           "log_checkpoints": "on",
                           "log_lock_waits": "on",
                       }),
                   ))
        pg.Pooler(self, "pooler", metadata={"name": self.pooler_name, "labels": labels,
                                            "annotations": wave(Wave.DATA)},
                  spec=pg.PoolerSpec(
                      cluster=pg.PoolerSpecCluster(name=props.name),
                      instances=props.pooler_instances,
                      type=pg.PoolerSpecType.RW,
                      # The operator copies this template into the pooler's Deployment (CloudNativePG
                      # pkg/specs/pgbouncer/deployments.go: podspec.NewFrom(pooler.Spec.Template)): the
                      # PgBouncer pods prefer different nodes, so a node drain or loss leaves one serving.
                      template=pg.PoolerSpecTemplate(spec=pg.PoolerSpecTemplateSpec(affinity=self._pooler_spread(), containers=[
                          pg.PoolerSpecTemplateSpecContainers(name="pgbouncer", resources=pg.PoolerSpecTemplateSpecContainersResources(
                              requests={"cpu": pg.PoolerSpecTemplateSpecContainersResourcesRequests.from_string("50m"),
                                        "memory": pg.PoolerSpecTemplateSpecContainersResourcesRequests.from_string("64Mi")},
                              limits={"memory": pg.PoolerSpecTemplateSpecContainersResourcesLimits.from_string("128Mi")}))])),
                      pgbouncer=pg.PoolerSpecPgbouncer(
                          pool_mode=pg.PoolerSpecPgbouncerPoolMode.TRANSACTION,
                          parameters={
                              "max_client_conn": str(props.max_client_connections),
                              "default_pool_size": str(props.pool_size),
                              "reserve_pool_size": str(props.reserve_pool_size),
                              "server_idle_timeout": "300",
                          })))
        # The operator makes PodDisruptionBudgets for the instances but none for a Pooler (nothing under
        # pkg/specs/pgbouncer/ or the pooler controller creates one): at most one PgBouncer pod is evicted at
        # a time. maxUnavailable, not minAvailable, so a single-pooler environment (dev) still drains.
        k8s.KubePodDisruptionBudget(self, "pooler-pdb", metadata=k8s.ObjectMeta(name=self.pooler_name, labels=labels,
                                                                                annotations=wave(Wave.DATA)),
                                    spec=k8s.PodDisruptionBudgetSpec(
                                        max_unavailable=k8s.IntOrString.from_number(1),
                                        # a crash-looping PgBouncer pod never blocks a drain
                                        unhealthy_pod_eviction_policy="AlwaysAllow",
                                        selector=k8s.LabelSelector(match_labels=self.pooler_pod_labels)))
        # Pooler pods carry cnpg.io/cluster too (CloudNativePG pkg/specs/pgbouncer/deployments.go), so the
        # database monitor selects instances by their role, and the pooler's as the operator's own pooler
        # PodMonitor does (pkg/specs/pgbouncer/podmonitor.go: cnpg.io/poolerName + cnpg.io/podRole=pooler).
        for id_, name, selector in (("cluster-monitor", props.name, self.instance_pod_labels),
                                    ("pooler-monitor", self.pooler_name,
                                     {**self.pooler_pod_labels, "cnpg.io/podRole": "pooler"})):
            mon.PodMonitor(self, id_, metadata={"name": name, "labels": {**labels, **monitoring.discovery_labels},
                                                     "annotations": wave(Wave.DATA)},
                           spec=mon.PodMonitorSpec(
                               selector=mon.PodMonitorSpecSelector(match_labels=selector),
                               pod_metrics_endpoints=[mon.PodMonitorSpecPodMetricsEndpoints(port="metrics")]))

    def ca_volume(self) -> k8s.Volume:
        """The CA certificate alone (never the CA's key, which the same Secret holds)."""
        return k8s.Volume(name="database-ca", secret=k8s.SecretVolumeSource(
            secret_name=self.ca_secret_name, items=[k8s.KeyToPath(key="ca.crt", path="ca.crt")]))

    def ca_mount(self) -> k8s.VolumeMount:
        return k8s.VolumeMount(name="database-ca", mount_path=self.CA_DIR, read_only=True)

    def _pooler_spread(self) -> pg.PoolerSpecTemplateSpecAffinity:
        """PgBouncer pods prefer different nodes (by the label the operator gives them)."""
        prefix = "PoolerSpecTemplateSpecAffinityPodAntiAffinityPreferredDuringSchedulingIgnoredDuringExecution"
        term = getattr(pg, prefix + "PodAffinityTerm")(
            label_selector=getattr(pg, prefix + "PodAffinityTermLabelSelector")(match_labels=self.pooler_pod_labels),
            topology_key="kubernetes.io/hostname")
        return pg.PoolerSpecTemplateSpecAffinity(pod_anti_affinity=pg.PoolerSpecTemplateSpecAffinityPodAntiAffinity(
            preferred_during_scheduling_ignored_during_execution=[getattr(pg, prefix)(weight=100, pod_affinity_term=term)]))
