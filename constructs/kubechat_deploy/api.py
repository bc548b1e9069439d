"""The KubeChat API: a Go service that talks to the Kubernetes API for its users and keeps the
audit trail. Deployment, Service, ServiceAccount and its non-secret configuration."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from cdk8s_plus_28 import k8s
from constructs import Construct

from . import validation as v
from .labels import selector_labels, standard_labels
from .security import container_security_context, pod_security_context


class LogLevel(str, Enum):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True, kw_only=True)
class Resources:
    """Requests and limits of one container; overlays patch them per environment."""

    cpu_request: str = "100m"
    """CPU request. Default: 100m."""
    memory_request: str = "128Mi"
    """Memory request. Default: 128Mi."""
    cpu_limit: str = "500m"
    """CPU limit. Default: 500m."""
    memory_limit: str = "256Mi"
    """Memory limit. Default: 256Mi."""

    def __post_init__(self) -> None:
        for name in ("cpu_request", "memory_request", "cpu_limit", "memory_limit"):
            v.quantity(f"resources.{name}", getattr(self, name))

    def render(self) -> k8s.ResourceRequirements:
        return k8s.ResourceRequirements(
            requests={"cpu": k8s.Quantity.from_string(self.cpu_request),
                      "memory": k8s.Quantity.from_string(self.memory_request)},
            limits={"cpu": k8s.Quantity.from_string(self.cpu_limit),
                    "memory": k8s.Quantity.from_string(self.memory_limit)},
        )


@dataclass(frozen=True, kw_only=True)
class ApiProps:
    """Settings of the API workload. Environment-neutral: overlays patch replicas, resources, image tags."""

    name: str = "kubechat-api"
    """Name of the Deployment, Service, ServiceAccount and ConfigMap. Default: kubechat-api."""
    image: str = "ghcr.io/kubechat/kubechat-api"
    """Image name without tag; each overlay pins the tag (production: the digest). Default: ghcr.io/kubechat/kubechat-api."""
    http_port: int = 8080
    """Port of the HTTP API and health endpoints (app contract). Default: 8080."""
    metrics_port: int = 9090
    """Port of the Prometheus /metrics endpoint, named `metrics` (app contract). Default: 9090."""
    replicas: int = 1
    """Replicas when no HorizontalPodAutoscaler owns them. Default: 1."""
    resources: Resources = field(default_factory=Resources)
    """Baseline requests and limits. Default: Resources()."""
    run_as_user: int = 10001
    """Non-root UID and GID the container runs as (>= 10000). Default: 10001."""
    log_level: LogLevel = LogLevel.INFO
    """LOG_LEVEL in the API's ConfigMap. Default: info."""
    termination_grace_seconds: int = 60
    """Time to drain streaming chat connections on shutdown. Default: 60."""

    def __post_init__(self) -> None:
        v.dns_label("api.name", self.name)
        v.image("api.image", self.image)
        v.port("api.http_port", self.http_port)
        v.port("api.metrics_port", self.metrics_port)
        if self.http_port == self.metrics_port:
            raise v.SettingsError("api.metrics_port", self.metrics_port, "a port different from api.http_port")
        v.at_least("api.replicas", self.replicas, 1)
        v.at_least("api.termination_grace_seconds", self.termination_grace_seconds, 1)
        if not isinstance(self.log_level, LogLevel):
            raise v.SettingsError("api.log_level", self.log_level, ", ".join(l.value for l in LogLevel))


class KubeChatApi(Construct):
    """The API Deployment with its Service, ServiceAccount and ConfigMap."""

    COMPONENT = "api"

    def __init__(self, scope: Construct, id: str, *, props: ApiProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.service_name = props.name
        self.service_account_name = props.name
        self.config_map_name = f"{props.name}-config"
        self.http_port_name = "http"
        self.metrics_port_name = "metrics"
        labels = standard_labels(self.COMPONENT)
        selector = selector_labels(self.COMPONENT)
        meta = lambda name: k8s.ObjectMeta(name=name, labels=labels)  # noqa: E731

        k8s.KubeServiceAccount(
            self, "service-account", metadata=meta(self.service_account_name),
            # The API reads cluster state on its users' behalf, so it needs its token; nothing else does.
            automount_service_account_token=True,
        )
        k8s.KubeConfigMap(
            self, "config", metadata=meta(self.config_map_name),
            data={"LOG_LEVEL": props.log_level.value, "KUBECHAT_ENVIRONMENT": "base"},
        )
        probe = lambda path, period, failures: k8s.Probe(  # noqa: E731
            http_get=k8s.HttpGetAction(path=path, port=k8s.IntOrString.from_string(self.http_port_name)),
            period_seconds=period, timeout_seconds=2, failure_threshold=failures,
        )
        container = k8s.Container(
            name="api",
            image=props.image,
            image_pull_policy="IfNotPresent",
            ports=[
                k8s.ContainerPort(name=self.http_port_name, container_port=props.http_port, protocol="TCP"),
                k8s.ContainerPort(name=self.metrics_port_name, container_port=props.metrics_port, protocol="TCP"),
            ],
            env_from=[k8s.EnvFromSource(config_map_ref=k8s.ConfigMapEnvSource(name=self.config_map_name))],
            # A Go binary starts in seconds; allow 150 s for first database connections and migrations checks.
            startup_probe=probe("/health/startup", 5, 30),
            liveness_probe=probe("/health/live", 10, 3),
            readiness_probe=probe("/health/ready", 5, 3),
            resources=props.resources.render(),
            security_context=container_security_context(),
            volume_mounts=[k8s.VolumeMount(name="tmp", mount_path="/tmp")],
        )
        self.deployment = k8s.KubeDeployment(
            self, "deployment", metadata=meta(props.name),
            spec=k8s.DeploymentSpec(
                replicas=props.replicas,
                revision_history_limit=5,
                selector=k8s.LabelSelector(match_labels=selector),
                strategy=k8s.DeploymentStrategy(
                    type="RollingUpdate",
                    rolling_update=k8s.RollingUpdateDeployment(
                        max_surge=k8s.IntOrString.from_string("25%"),
                        max_unavailable=k8s.IntOrString.from_number(0),
                    ),
                ),
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=labels),
                    spec=k8s.PodSpec(
                        service_account_name=self.service_account_name,
                        automount_service_account_token=True,
                        enable_service_links=False,
                        termination_grace_period_seconds=props.termination_grace_seconds,
                        security_context=pod_security_context(props.run_as_user, props.run_as_user),
                        containers=[container],
                        volumes=[k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(size_limit=k8s.Quantity.from_string("64Mi")))],
                    ),
                ),
            ),
        )
        self.service = k8s.KubeService(
            self, "service", metadata=meta(self.service_name),
            spec=k8s.ServiceSpec(
                type="ClusterIP",
                selector=selector,
                ports=[
                    k8s.ServicePort(name=self.http_port_name, port=props.http_port,
                                    target_port=k8s.IntOrString.from_string(self.http_port_name), protocol="TCP"),
                    k8s.ServicePort(name=self.metrics_port_name, port=props.metrics_port,
                                    target_port=k8s.IntOrString.from_string(self.metrics_port_name), protocol="TCP"),
                ],
            ),
        )
