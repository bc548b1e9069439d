"""dev only: pgAdmin (http://localhost:30050) and redis-commander (http://localhost:30081, both through
`make dev-open`: kubectl port-forward on 127.0.0.1 only), wired to the dev
database and cache. Third-party images that write into their own filesystem at start, so their
root filesystems stay writable (waived in lint-exceptions.yaml, dev only); everything else is
restricted as for KubeChat's own pods. Rendered as the component dist/components/dev-tools."""
from __future__ import annotations

import json
from dataclasses import dataclass

from cdk8s_plus_28 import k8s
from constructs import Construct

from kubechat_deploy import validation as v
from kubechat_deploy.data.database import KubeChatDatabase
from kubechat_deploy.labels import selector_labels, standard_labels
from kubechat_deploy.security.network import namespace_peer, pod_peer, ports
from kubechat_deploy.data.redis import KubeChatRedis
from kubechat_deploy.security.pod_security import pod_security_context
from kubechat_deploy.app.workload import Resources, env_from_secret, env_value


LOCAL_PORT = "kubechat.io/local-port"
"""Service annotation: the port on the laptop's 127.0.0.1 that `make dev-open` (scripts/dev_open.py) forwards."""


@dataclass(frozen=True, kw_only=True)
class DevToolsProps:
    """Images of the dev tools and the laptop ports `make dev-open` forwards to them."""

    pgadmin_image: str = "docker.io/dpage/pgadmin4:9.8"
    """pgAdmin image, pinned. Default: docker.io/dpage/pgadmin4:9.8."""
    pgadmin_local_port: int = 30050
    """Port on the laptop's 127.0.0.1 that `make dev-open` forwards to pgAdmin. Default: 30050."""
    redis_commander_image: str = "ghcr.io/joeferner/redis-commander:0.9.0"
    """redis-commander image, pinned. Default: ghcr.io/joeferner/redis-commander:0.9.0."""
    redis_commander_local_port: int = 30081
    """Port on the laptop's 127.0.0.1 that `make dev-open` forwards to redis-commander. Default: 30081."""
    login_secret: str = "kubechat-dev-tools"
    """Secret with pgAdmin's login (keys email, password), generated in the dev overlay. Default: kubechat-dev-tools."""

    def __post_init__(self) -> None:
        for name in ("pgadmin_local_port", "redis_commander_local_port"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1024 <= value <= 65535:
                raise v.SettingsError(f"dev_tools.{name}", value, "an unprivileged port from 1024 to 65535")
        for name in ("pgadmin_image", "redis_commander_image"):
            value = getattr(self, name)
            if ":" not in value or value.endswith(":latest"):
                raise v.SettingsError(f"dev_tools.{name}", value, "an image pinned to a version tag")


class DevTools(Construct):
    def __init__(self, scope: Construct, id: str, *, props: DevToolsProps, database: KubeChatDatabase,
                 redis: KubeChatRedis) -> None:
        super().__init__(scope, id)
        servers = {"Servers": {"1": {"Name": "kubechat (dev)", "Group": "KubeChat", "Host": database.rw_service_name,
                                     "Port": database.port, "MaintenanceDB": database.database,
                                     "Username": database.props.owner, "SSLMode": "require"}}}
        self._tool("pgadmin", "kubechat-pgadmin", props.pgadmin_image, 8080, props.pgadmin_local_port, uid=5050,
                   env=[env_value("PGADMIN_LISTEN_PORT", "8080"),
                        env_from_secret("PGADMIN_DEFAULT_EMAIL", props.login_secret, "email"),
                        env_from_secret("PGADMIN_DEFAULT_PASSWORD", props.login_secret, "password"),
                        env_value("PGADMIN_SERVER_JSON_FILE", "/pgadmin-config/servers.json"),
                        env_value("PGADMIN_CONFIG_UPGRADE_CHECK_ENABLED", "False")],
                   health="/misc/ping", writable={"pgadmin-data": "/var/lib/pgadmin", "tmp": "/tmp"},
                   config={"servers.json": json.dumps(servers, indent=2, sort_keys=True)},
                   reaches=(database.instance_pod_labels, database.port), resources=Resources(
                       cpu_request="50m", memory_request="192Mi", cpu_limit="500m", memory_limit="384Mi",
                       ephemeral_storage_limit="1Gi"))  # two 256Mi emptyDirs, logs and the writable layer
        self._tool("redis-commander", "kubechat-redis-commander", props.redis_commander_image, 8081,
                   props.redis_commander_local_port, uid=1000,
                   # Host, port and password apart (redis-commander's REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/REDIS_DB):
                   # its REDIS_HOSTS form is colon-separated, which a password with a colon breaks.
                   env=[env_from_secret("REDIS_PASSWORD", redis.password_secret, redis.password_key),
                        env_value("REDIS_HOST", redis.service_name), env_value("REDIS_PORT", str(redis.port)),
                        env_value("REDIS_DB", "0")],
                   health="/favicon.png", writable={"tmp": "/tmp"}, config=None,
                   reaches=(redis.pod_selector, redis.port), resources=Resources(
                       cpu_request="25m", memory_request="64Mi", cpu_limit="250m", memory_limit="128Mi"))

    def _tool(self, component, name, image, port, local_port, *, uid, env, health, writable, config, reaches,
              resources) -> None:
        labels, selector = standard_labels(component), selector_labels(component)
        meta = k8s.ObjectMeta(name=name, labels=labels)
        volumes = [k8s.Volume(name=n, empty_dir=k8s.EmptyDirVolumeSource(size_limit=k8s.Quantity.from_string("256Mi")))
                   for n in writable]
        mounts = [k8s.VolumeMount(name=n, mount_path=p) for n, p in writable.items()]
        if config:
            k8s.KubeConfigMap(self, f"{component}-config", metadata=meta, data=config)
            volumes.append(k8s.Volume(name="config", config_map=k8s.ConfigMapVolumeSource(name=name)))
            mounts.append(k8s.VolumeMount(name="config", mount_path="/pgadmin-config", read_only=True))
        probe = lambda period: k8s.Probe(http_get=k8s.HttpGetAction(  # noqa: E731
            path=health, port=k8s.IntOrString.from_string("http")), period_seconds=period, timeout_seconds=3,
            failure_threshold=6)
        k8s.KubeServiceAccount(self, f"{component}-sa", metadata=meta, automount_service_account_token=False)
        k8s.KubeDeployment(self, component, metadata=meta, spec=k8s.DeploymentSpec(
            replicas=1, selector=k8s.LabelSelector(match_labels=selector),
            template=k8s.PodTemplateSpec(metadata=k8s.ObjectMeta(labels=labels), spec=k8s.PodSpec(
                service_account_name=name, automount_service_account_token=False, enable_service_links=False,
                security_context=k8s.PodSecurityContext(
                    run_as_non_root=True, run_as_user=uid, run_as_group=uid, fs_group=uid,
                    seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault")),
                containers=[k8s.Container(
                    name=component, image=image, image_pull_policy="IfNotPresent", env=env,
                    ports=[k8s.ContainerPort(name="http", container_port=port, protocol="TCP")],
                    # Readiness asks the tool's health route; liveness only that the process accepts
                    # connections (kube-score pod-probes-identical).
                    readiness_probe=probe(10), liveness_probe=k8s.Probe(
                        tcp_socket=k8s.TcpSocketAction(port=k8s.IntOrString.from_string("http")), period_seconds=20,
                        timeout_seconds=3, failure_threshold=6),
                    resources=resources.render(),
                    security_context=k8s.SecurityContext(
                        allow_privilege_escalation=False, privileged=False, run_as_non_root=True,
                        read_only_root_filesystem=False, capabilities=k8s.Capabilities(drop=["ALL"]),
                        seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault")),
                    volume_mounts=mounts)],
                volumes=volumes))))
        # ClusterIP, reached only through `make dev-open` (kubectl port-forward on the laptop's 127.0.0.1, which
        # enters the pod's own network namespace: no NetworkPolicy admits anything from outside the namespace).
        k8s.KubeService(self, f"{component}-service", metadata=k8s.ObjectMeta(
            name=name, labels=labels, annotations={LOCAL_PORT: str(local_port)}), spec=k8s.ServiceSpec(
            selector=selector,
            ports=[k8s.ServicePort(name="http", port=port, target_port=k8s.IntOrString.from_string("http"),
                                   protocol="TCP")]))
        target, target_port = reaches
        k8s.KubeNetworkPolicy(self, f"{component}-policy", metadata=meta, spec=k8s.NetworkPolicySpec(
            pod_selector=k8s.LabelSelector(match_labels=selector), policy_types=["Ingress", "Egress"],
            ingress=[],
            egress=[k8s.NetworkPolicyEgressRule(to=[pod_peer(target)], ports=ports(target_port))]))
        k8s.KubeNetworkPolicy(self, f"{component}-target-policy", metadata=k8s.ObjectMeta(
            name=f"{name}-to-{target_port}", labels=labels), spec=k8s.NetworkPolicySpec(
            pod_selector=k8s.LabelSelector(match_labels=target), policy_types=["Ingress"],
            ingress=[k8s.NetworkPolicyIngressRule(from_=[pod_peer(selector)], ports=ports(target_port))]))
