"""The KubeChat API: a Go service that talks to the Kubernetes API for its users and keeps the
audit trail (docs/app-contract.md). Its configuration comes from a ConfigMap and a Secret that each
overlay provides under the names this construct exposes."""
from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct

from kubechat_deploy import validation as v
from kubechat_deploy.data.database import KubeChatDatabase
from kubechat_deploy.data.redis import KubeChatRedis
from kubechat_deploy.labels import RELOAD
from kubechat_deploy.app.workload import (HttpWorkload, Probes, Resources, Scaling, WorkloadSpec, WritableDir, env_from_secret,
                       env_value)


@dataclass(frozen=True, kw_only=True)
class ApiProps:
    """Settings of the API workload. Environment-neutral: overlays patch scaling, resources, image tags."""

    name: str = "kubechat-api"
    """Name of the Deployment, Service, ServiceAccount, HPA and PDB. Default: kubechat-api."""
    image: str = "ghcr.io/kubechat/kubechat-api"
    """Image name without tag; each overlay pins the tag (production: the digest). Default: ghcr.io/kubechat/kubechat-api."""
    http_port: int = 8080
    """Port of the HTTP API and health endpoints (app contract). Default: 8080."""
    metrics_port: int = 9090
    """Port of the Prometheus /metrics endpoint, named `metrics` (app contract). Default: 9090."""
    resources: Resources = field(default_factory=Resources)
    """Baseline requests and limits. Default: Resources() (100m/128Mi requests, 500m/256Mi limits)."""
    scaling: Scaling = field(default_factory=Scaling)
    """HPA bounds and targets. Default: Scaling() (1 to 3 replicas)."""
    run_as_user: int = 10001
    """Non-root UID and GID the container runs as (>= 10000). Default: 10001."""
    database_pool_size: int = 10
    """DATABASE_MAX_CONNECTIONS: connections each API pod opens to the pooler. Default: 10."""
    pre_stop_seconds: int = 10
    """Delay before SIGTERM so endpoints and the ingress stop routing to the pod. Default: 10."""
    termination_grace_seconds: int = 75
    """preStop plus the time the API drains streaming chat connections (SHUTDOWN_TIMEOUT 60 s). Default: 75."""

    def __post_init__(self) -> None:
        v.dns_label("api.name", self.name)
        v.image("api.image", self.image)
        v.port("api.http_port", self.http_port)
        v.port("api.metrics_port", self.metrics_port)
        if self.http_port == self.metrics_port:
            raise v.SettingsError("api.metrics_port", self.metrics_port, "a port different from api.http_port")
        v.at_least("api.database_pool_size", self.database_pool_size, 1)
        v.at_least("api.pre_stop_seconds", self.pre_stop_seconds, 0)
        v.at_least("api.termination_grace_seconds", self.termination_grace_seconds, 1)


class KubeChatApi(Construct):
    """The API: Deployment, Service (http, metrics), ServiceAccount with a token, HPA and PDB."""

    COMPONENT = "api"

    def __init__(self, scope: Construct, id: str, *, props: ApiProps, database: KubeChatDatabase,
                 redis: KubeChatRedis) -> None:
        super().__init__(scope, id)
        self.props = props
        self.config_map_name = f"{props.name}-config"
        """ConfigMap every overlay generates: LOG_LEVEL, CORS_ALLOWED_ORIGINS, KUBECHAT_ENVIRONMENT, FEATURE_*."""
        self.secret_name = f"{props.name}-secrets"
        """Secret every overlay provides: JWT_SIGNING_KEY."""
        self.http_port_name = "http"
        self.metrics_port_name = "metrics"
        self.workload = HttpWorkload(self, "workload", spec=WorkloadSpec(
            name=props.name,
            component=self.COMPONENT,
            container_name="api",
            image=props.image,
            ports={self.http_port_name: props.http_port, self.metrics_port_name: props.metrics_port},
            probes=Probes(startup="/health/startup", liveness="/health/live", readiness="/health/ready",
                          startup_budget_seconds=120),
            resources=props.resources,
            scaling=props.scaling,
            run_as_user=props.run_as_user,
            env=(
                env_value("HTTP_PORT", str(props.http_port)),
                env_value("METRICS_PORT", str(props.metrics_port)),
                env_value("SHUTDOWN_TIMEOUT_SECONDS", str(props.termination_grace_seconds - props.pre_stop_seconds - 5)),
                # Through PgBouncer (transaction pooling) as the API's own role, never the owner: it can read
                # and append to the audit trail, not rewrite it (migrations/0006_least_privilege.up.sql). The
                # server is verified against the database's CA for the name dialled. The credentials stay out
                # of the URL: the role's password comes from the secret store and may hold any character
                # (docs/app-contract.md): libpq's own PGUSER and PGPASSWORD, which libpq, pgx, lib/pq,
                # node-postgres and psycopg read by themselves for a URL without credentials.
                env_from_secret("PGUSER", database.api_secret_name, "username"),
                env_from_secret("PGPASSWORD", database.api_secret_name, "password"),
                env_value("DATABASE_URL", f"postgres://{database.pooler_service_name}:{database.port}/"
                                          f"{database.database}?{database.tls_query}"),
                env_value("DATABASE_MAX_CONNECTIONS", str(props.database_pool_size)),
                # The cache's address without credentials, and its password apart: a password from the secret
                # store may hold any character, and one with @ / : % inside a URL breaks the URL
                # (docs/app-contract.md: REDIS_PASSWORD, when set, is the password the API authenticates with).
                env_from_secret("REDIS_PASSWORD", redis.password_secret, redis.password_key),
                env_value("REDIS_URL", f"redis://{redis.service_name}:{redis.port}/0"),
            ),
            config_maps=(self.config_map_name,),
            secrets=(self.secret_name,),
            writable_dirs=(WritableDir(name="tmp", path="/tmp", size_limit="64Mi"),),
            read_only_volumes=((database.ca_volume(), database.ca_mount()),),
            # The API reads cluster state on its users' behalf: the only workload that gets a token.
            kubernetes_api_access=True,
            # Stakater Reloader rolls the pods when External Secrets rotates a secret they read (staging,
            # production): their own, the cache's password and their database role's (a comma-separated list:
            # reloader v1.4.22 pkg/common/common.go splits the annotation's value on commas).
            annotations={RELOAD: f"{self.secret_name},{redis.password_secret},{database.api_secret_name}"},
            pre_stop_seconds=props.pre_stop_seconds,
            termination_grace_seconds=props.termination_grace_seconds,
        ))
        self.service_name = self.workload.service_name
        self.service_account_name = self.workload.service_account_name
        self.pod_selector = self.workload.pod_selector
        self.deployment = self.workload.deployment
