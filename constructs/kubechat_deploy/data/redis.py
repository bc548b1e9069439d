"""Valkey (the BSD-licensed fork of Redis, protocol-compatible with Redis 7.2) for sessions and
caches: a single-instance StatefulSet with password auth, append-only persistence on a PVC and a
redis_exporter sidecar for metrics. Why Valkey and not Redis 7.4+: docs/data-tier.md."""
from __future__ import annotations

from dataclasses import dataclass

from cdk8s_plus_28 import k8s
from constructs import Construct

import imports.monitoring.com.coreos.monitoring as mon

from kubechat_deploy import validation as v
from kubechat_deploy.labels import RELOAD, selector_labels, standard_labels
from kubechat_deploy.observability.monitoring import MonitoringProps
from kubechat_deploy.security.pod_security import container_security_context, pod_security_context
from kubechat_deploy.delivery.sync import KEEP, Wave, wave
from kubechat_deploy.app.workload import Resources, env_from_secret, env_value


@dataclass(frozen=True, kw_only=True)
class RedisProps:
    """Settings of the cache; overlays patch storage, memory and maxmemory per environment."""

    name: str = "kubechat-redis"
    """Name of the StatefulSet and Services. Default: kubechat-redis."""
    image: str = "docker.io/valkey/valkey:8.1.4-alpine"
    """Valkey image, pinned. Default: docker.io/valkey/valkey:8.1.4-alpine."""
    exporter_image: str = "docker.io/oliver006/redis_exporter:v1.80.0"
    """redis_exporter image, pinned. Default: docker.io/oliver006/redis_exporter:v1.80.0."""
    password_secret: str = "kubechat-redis"
    """Secret holding the password under key `password` (dev: generated; else External Secrets). Default: kubechat-redis."""
    storage_size: str = "1Gi"
    """Append-only file volume. Default: 1Gi."""
    maxmemory: str = "128mb"
    """Valkey maxmemory: at most half the container's memory limit, because rewriting the append-only file
    forks the server and, under writes, the copy-on-write child can need as much memory again ("up to 2
    times the memory normally used", Redis administration docs, which Valkey inherits); the render refuses
    more. Default: 128mb."""
    resources: Resources = Resources(cpu_request="50m", memory_request="256Mi", cpu_limit="500m", memory_limit="256Mi")
    """Valkey container resources. Default: 50m/256Mi requests, 500m/256Mi limits."""
    run_as_user: int = 10001
    """UID/GID (>= 10000). Default: 10001."""

    def __post_init__(self) -> None:
        v.dns_label("redis.name", self.name)
        for field_name in ("image", "exporter_image"):
            value = getattr(self, field_name)
            if ":" not in value or value.endswith(":latest"):
                raise v.SettingsError(f"redis.{field_name}", value, "an image pinned to a version tag")
        v.dns_subdomain("redis.password_secret", self.password_secret)
        v.quantity("redis.storage_size", self.storage_size)
        if not self.maxmemory[:-2].isdigit() or self.maxmemory[-2:] not in ("mb", "gb"):
            raise v.SettingsError("redis.maxmemory", self.maxmemory, "a size such as 128mb or 2gb")


class KubeChatRedis(Construct):
    COMPONENT = "redis"

    def __init__(self, scope: Construct, id: str, *, props: RedisProps, monitoring: MonitoringProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.service_name = props.name
        self.port = 6379
        self.metrics_port = 9121
        self.password_secret = props.password_secret
        self.password_key = "password"
        labels = standard_labels(self.COMPONENT)
        self.pod_selector = selector_labels(self.COMPONENT)
        meta = lambda name, **extra: k8s.ObjectMeta(name=name, labels=labels, annotations=wave(Wave.DATA))  # noqa: E731
        password = env_from_secret("REDIS_PASSWORD", props.password_secret, self.password_key)
        tcp = lambda period, failures: k8s.Probe(  # noqa: E731
            tcp_socket=k8s.TcpSocketAction(port=k8s.IntOrString.from_string("redis")),
            period_seconds=period, failure_threshold=failures, timeout_seconds=2)
        server = k8s.Container(
            name="valkey",
            image=props.image,
            image_pull_policy="IfNotPresent",
            args=["--port", str(self.port), "--dir", "/data", "--appendonly", "yes", "--appendfsync", "everysec",
                  "--save", "", "--maxmemory", "$(REDIS_MAXMEMORY)", "--maxmemory-policy", "volatile-lru",
                  "--requirepass", "$(REDIS_PASSWORD)"],
            env=[password, env_value("REDIS_MAXMEMORY", props.maxmemory),
                 # valkey-cli reads the password from here, so the probe needs no shell.
                 env_from_secret("REDISCLI_AUTH", props.password_secret, self.password_key)],
            ports=[k8s.ContainerPort(name="redis", container_port=self.port, protocol="TCP")],
            startup_probe=tcp(5, 24),
            liveness_probe=tcp(10, 3),
            readiness_probe=k8s.Probe(exec=k8s.ExecAction(command=["valkey-cli", "ping"]),
                                      period_seconds=5, timeout_seconds=2, failure_threshold=3),
            resources=props.resources.render(),
            security_context=container_security_context(),
            volume_mounts=[k8s.VolumeMount(name="data", mount_path="/data"),
                           k8s.VolumeMount(name="tmp", mount_path="/tmp")],
        )
        http = lambda path, period: k8s.Probe(  # noqa: E731
            http_get=k8s.HttpGetAction(path=path, port=k8s.IntOrString.from_string("metrics")),
            period_seconds=period, timeout_seconds=2, failure_threshold=3)
        exporter = k8s.Container(
            name="exporter",
            image=props.exporter_image,
            image_pull_policy="IfNotPresent",
            env=[env_value("REDIS_ADDR", f"redis://localhost:{self.port}"), password],
            ports=[k8s.ContainerPort(name="metrics", container_port=self.metrics_port, protocol="TCP")],
            # Liveness only: a failing exporter is restarted, but never makes the cache pod unready (the
            # pod's readiness is the cache's own, docs/app-contract.md "What the API's readiness needs").
            liveness_probe=http("/health", 15),
            resources=Resources(cpu_request="10m", memory_request="32Mi", cpu_limit="100m",
                                memory_limit="64Mi").render(),
            security_context=container_security_context(),
        )
        # A rotated password (External Secrets, staging and production) takes effect only in a new pod: Reloader
        # restarts it (the API restarts too, docs/security.md: a few seconds of refused sessions).
        self.stateful_set = k8s.KubeStatefulSet(
            self, "statefulset", metadata=k8s.ObjectMeta(name=props.name, labels=labels,
                                                         annotations={**wave(Wave.DATA), RELOAD: props.password_secret}),
            spec=k8s.StatefulSetSpec(
                service_name=f"{props.name}-headless",
                replicas=1,
                selector=k8s.LabelSelector(match_labels=self.pod_selector),
                persistent_volume_claim_retention_policy=k8s.StatefulSetPersistentVolumeClaimRetentionPolicy(
                    when_deleted="Retain", when_scaled="Retain"),
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=labels),
                    spec=k8s.PodSpec(
                        service_account_name=props.name,
                        automount_service_account_token=False,
                        enable_service_links=False,
                        termination_grace_period_seconds=30,
                        security_context=pod_security_context(props.run_as_user, props.run_as_user),
                        containers=[server, exporter],
                        volumes=[k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(
                            size_limit=k8s.Quantity.from_string("16Mi")))],
                    )),
                volume_claim_templates=[k8s.KubePersistentVolumeClaimProps(
                    metadata=k8s.ObjectMeta(name="data", labels=labels, annotations=KEEP),
                    spec=k8s.PersistentVolumeClaimSpec(
                        access_modes=["ReadWriteOnce"],
                        resources=k8s.ResourceRequirements(
                            requests={"storage": k8s.Quantity.from_string(props.storage_size)})))],
            ))
        k8s.KubeServiceAccount(self, "service-account", metadata=meta(props.name), automount_service_account_token=False)
        ports = [k8s.ServicePort(name="redis", port=self.port, target_port=k8s.IntOrString.from_string("redis")),
                 k8s.ServicePort(name="metrics", port=self.metrics_port, target_port=k8s.IntOrString.from_string("metrics"))]
        k8s.KubeService(self, "service", metadata=meta(props.name),
                        spec=k8s.ServiceSpec(type="ClusterIP", selector=self.pod_selector, ports=ports))
        k8s.KubeService(self, "headless", metadata=meta(f"{props.name}-headless"),
                        spec=k8s.ServiceSpec(cluster_ip="None", selector=self.pod_selector, ports=ports[:1]))
        mon.ServiceMonitor(self, "monitor", metadata={"name": props.name, "labels": {**labels, **monitoring.discovery_labels},
                                                     "annotations": wave(Wave.DATA)},
                           spec=mon.ServiceMonitorSpec(
                               selector=mon.ServiceMonitorSpecSelector(match_labels=labels),
                               endpoints=[mon.ServiceMonitorSpecEndpoints(port="metrics", interval="30s")]))
