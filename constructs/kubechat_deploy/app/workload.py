"""The building block under the API and the web front end: a stateless HTTP Deployment with its
Service, ServiceAccount, autoscaler and disruption budget, secure and highly available by default.
Public constructs (api.py, web.py) say what differs; everything they share is decided here once."""
from __future__ import annotations

from dataclasses import dataclass, field

from cdk8s_plus_28 import k8s
from constructs import Construct

from kubechat_deploy import validation as v
from kubechat_deploy.labels import selector_labels, standard_labels
from kubechat_deploy.security.pod_security import container_security_context, pod_security_context
from kubechat_deploy.delivery.sync import Wave, wave


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
    ephemeral_storage_request: str = "64Mi"
    """Node-local disk request: the container's writable layer and logs. Default: 64Mi."""
    ephemeral_storage_limit: str = "512Mi"
    """Node-local disk limit. The kubelet evicts a pod whose writable layers, logs and emptyDir volumes
    together exceed the sum of its containers' limits, so this must cover the pod's emptyDir sizeLimits
    (tests/test_workloads.py checks every pod). Default: 512Mi."""

    def __post_init__(self) -> None:
        for name in ("cpu_request", "memory_request", "cpu_limit", "memory_limit", "ephemeral_storage_request",
                     "ephemeral_storage_limit"):
            v.quantity(f"resources.{name}", getattr(self, name))

    def render(self) -> k8s.ResourceRequirements:
        return k8s.ResourceRequirements(
            requests={"cpu": k8s.Quantity.from_string(self.cpu_request),
                      "memory": k8s.Quantity.from_string(self.memory_request),
                      "ephemeral-storage": k8s.Quantity.from_string(self.ephemeral_storage_request)},
            limits={"cpu": k8s.Quantity.from_string(self.cpu_limit),
                    "memory": k8s.Quantity.from_string(self.memory_limit),
                    "ephemeral-storage": k8s.Quantity.from_string(self.ephemeral_storage_limit)},
        )


@dataclass(frozen=True, kw_only=True)
class Scaling:
    """HorizontalPodAutoscaler bounds and targets; overlays patch the bounds per environment."""

    min_replicas: int = 1
    """Fewest replicas. Default: 1."""
    max_replicas: int = 3
    """Most replicas. Default: 3."""
    cpu_utilization: int = 70
    """Target average CPU utilization, percent of requests. Default: 70."""
    memory_utilization: int = 80
    """Target average memory utilization, percent of requests. Default: 80."""
    scale_down_stabilization_seconds: int = 300
    """How long the HPA waits before removing replicas (avoids flapping). Default: 300."""

    def __post_init__(self) -> None:
        v.at_least("scaling.min_replicas", self.min_replicas, 1)
        v.at_least("scaling.max_replicas", self.max_replicas, 1)
        if self.min_replicas > self.max_replicas:
            raise v.SettingsError("scaling.max_replicas", self.max_replicas,
                                  f"an integer >= scaling.min_replicas ({self.min_replicas})")
        for name in ("cpu_utilization", "memory_utilization"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 100:
                raise v.SettingsError(f"scaling.{name}", value, "an integer percentage from 1 to 100")
        v.at_least("scaling.scale_down_stabilization_seconds", self.scale_down_stabilization_seconds, 0)


@dataclass(frozen=True, kw_only=True)
class Probes:
    """HTTP paths of the probes (all on the `http` port)."""

    startup: str
    """Startup probe path."""
    readiness: str
    """Readiness probe path."""
    liveness: str | None = None
    """Liveness probe path, other than the readiness path; None: a TCP connect to the `http` port (the
    process is alive and accepting), for an app whose only health route is also its readiness. The same
    check for both restarts every pod when a dependency the readiness check includes fails. Default: None."""
    startup_budget_seconds: int = 120
    """How long a new pod may take to start before it is restarted. Default: 120."""

    def __post_init__(self) -> None:
        for name in ("startup", "readiness"):
            v.http_path(f"probes.{name}", getattr(self, name))
        if self.liveness is not None:
            v.http_path("probes.liveness", self.liveness)
            if self.liveness == self.readiness:
                raise v.SettingsError("probes.liveness", self.liveness,
                                      f"a path other than probes.readiness ({self.readiness!r}), or None for a TCP "
                                      "check: one failing dependency would restart every pod")
        v.at_least("probes.startup_budget_seconds", self.startup_budget_seconds, 5)


@dataclass(frozen=True, kw_only=True)
class WritableDir:
    """An emptyDir mounted where the read-only image must write (app contract)."""

    name: str
    path: str
    size_limit: str

    def __post_init__(self) -> None:
        v.dns_label("writable_dir.name", self.name)
        v.http_path("writable_dir.path", self.path)
        v.quantity("writable_dir.size_limit", self.size_limit)


@dataclass(frozen=True, kw_only=True)
class WorkloadSpec:
    """What a public construct tells the building block (resolved, validated props)."""

    name: str
    component: str
    container_name: str
    image: str
    ports: dict[str, int]
    probes: Probes
    resources: Resources
    scaling: Scaling
    run_as_user: int
    env: tuple[k8s.EnvVar, ...] = ()
    """Ordered: a value may refer to an earlier variable as $(NAME)."""
    config_maps: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    writable_dirs: tuple[WritableDir, ...] = ()
    read_only_volumes: tuple[tuple[k8s.Volume, k8s.VolumeMount], ...] = ()
    """Volumes mounted read-only beside the writable directories (a CA certificate)."""
    kubernetes_api_access: bool = False
    annotations: dict[str, str] = field(default_factory=dict)
    pre_stop_seconds: int = 5
    termination_grace_seconds: int = 30


def env_value(name: str, value: str) -> k8s.EnvVar:
    return k8s.EnvVar(name=name, value=value)


def env_from_secret(name: str, secret: str, key: str) -> k8s.EnvVar:
    return k8s.EnvVar(name=name, value_from=k8s.EnvVarSource(secret_key_ref=k8s.SecretKeySelector(name=secret, key=key)))


def env_from_config_map(name: str, config_map: str, key: str) -> k8s.EnvVar:
    return k8s.EnvVar(name=name, value_from=k8s.EnvVarSource(
        config_map_key_ref=k8s.ConfigMapKeySelector(name=config_map, key=key)))


REVISION_HASH_LABELS = ("pod-template-hash", "rollouts-pod-template-hash")
"""The label that tells one revision's pods from another's: the Deployment controller's, and the one Argo
Rollouts puts on the pods of a Rollout that takes over the Deployment (argo-rollouts
pkg/apis/rollouts/v1alpha1/types.go: DefaultRolloutUniqueLabelKey). Spreading counts only pods of the
same revision; a key a pod does not carry is ignored by the scheduler."""


class HttpWorkload(Construct):
    """Deployment + Service + ServiceAccount + HPA + PDB for one stateless HTTP component."""

    def __init__(self, scope: Construct, id: str, *, spec: WorkloadSpec) -> None:
        super().__init__(scope, id)
        if spec.termination_grace_seconds <= spec.pre_stop_seconds:
            raise v.SettingsError(f"{spec.component}.termination_grace_seconds", spec.termination_grace_seconds,
                                  f"more than the preStop delay ({spec.pre_stop_seconds} s) so connections can drain")
        self.name = spec.name
        self.service_name = spec.name
        self.service_account_name = spec.name
        self.ports = dict(spec.ports)
        self.labels = standard_labels(spec.component)
        self.selector = selector_labels(spec.component)
        meta = lambda: k8s.ObjectMeta(name=spec.name, labels=self.labels, annotations=wave(Wave.WORKLOADS))  # noqa: E731

        deployment_meta = k8s.ObjectMeta(name=spec.name, labels=self.labels,
                                         annotations={**wave(Wave.WORKLOADS), **spec.annotations})
        k8s.KubeServiceAccount(self, "service-account",
                               metadata=k8s.ObjectMeta(name=spec.name, labels=self.labels, annotations=wave(Wave.NAMESPACE)),
                               automount_service_account_token=spec.kubernetes_api_access)
        probe = lambda path, period, failures: k8s.Probe(  # noqa: E731
            http_get=k8s.HttpGetAction(path=path, port=k8s.IntOrString.from_string("http")),
            period_seconds=period, timeout_seconds=2, failure_threshold=failures)
        env_from = [k8s.EnvFromSource(config_map_ref=k8s.ConfigMapEnvSource(name=n)) for n in spec.config_maps]
        env_from += [k8s.EnvFromSource(secret_ref=k8s.SecretEnvSource(name=n)) for n in spec.secrets]
        container = k8s.Container(
            name=spec.container_name,
            image=spec.image,
            image_pull_policy="IfNotPresent",
            ports=[k8s.ContainerPort(name=n, container_port=p, protocol="TCP") for n, p in spec.ports.items()],
            env=list(spec.env) or None,
            env_from=env_from or None,
            startup_probe=probe(spec.probes.startup, 5, max(1, spec.probes.startup_budget_seconds // 5)),
            liveness_probe=probe(spec.probes.liveness, 10, 3) if spec.probes.liveness else k8s.Probe(
                tcp_socket=k8s.TcpSocketAction(port=k8s.IntOrString.from_string("http")),
                period_seconds=10, timeout_seconds=2, failure_threshold=3),
            readiness_probe=probe(spec.probes.readiness, 5, 2),
            # Endpoints are removed asynchronously: keep serving briefly so no new request hits a
            # stopping pod (the image ships /bin/sleep, see docs/app-contract.md).
            lifecycle=k8s.Lifecycle(pre_stop=k8s.LifecycleHandler(
                exec=k8s.ExecAction(command=["/bin/sleep", str(spec.pre_stop_seconds)]))),
            resources=spec.resources.render(),
            security_context=container_security_context(),
            volume_mounts=[*(k8s.VolumeMount(name=d.name, mount_path=d.path) for d in spec.writable_dirs),
                           *(mount for _, mount in spec.read_only_volumes)] or None,
        )
        spread = lambda key, when: k8s.TopologySpreadConstraint(  # noqa: E731
            max_skew=1, topology_key=key, when_unsatisfiable=when,
            label_selector=k8s.LabelSelector(match_labels=self.selector), match_label_keys=list(REVISION_HASH_LABELS))
        self.deployment = k8s.KubeDeployment(
            self, "deployment", metadata=deployment_meta,
            spec=k8s.DeploymentSpec(
                # No `replicas`: the HorizontalPodAutoscaler owns it (Argo CD would otherwise fight it).
                revision_history_limit=5,
                selector=k8s.LabelSelector(match_labels=self.selector),
                strategy=k8s.DeploymentStrategy(type="RollingUpdate", rolling_update=k8s.RollingUpdateDeployment(
                    max_surge=k8s.IntOrString.from_string("25%"), max_unavailable=k8s.IntOrString.from_number(0))),
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=self.labels),
                    spec=k8s.PodSpec(
                        service_account_name=self.service_account_name,
                        automount_service_account_token=spec.kubernetes_api_access,
                        enable_service_links=False,
                        termination_grace_period_seconds=spec.termination_grace_seconds,
                        security_context=pod_security_context(spec.run_as_user, spec.run_as_user),
                        topology_spread_constraints=[
                            spread("topology.kubernetes.io/zone", "ScheduleAnyway"),
                            spread("kubernetes.io/hostname", "DoNotSchedule"),
                        ],
                        containers=[container],
                        volumes=[*(k8s.Volume(name=d.name, empty_dir=k8s.EmptyDirVolumeSource(
                            size_limit=k8s.Quantity.from_string(d.size_limit))) for d in spec.writable_dirs),
                                 *(volume for volume, _ in spec.read_only_volumes)] or None,
                    ),
                ),
            ),
        )
        self.service = k8s.KubeService(self, "service", metadata=meta(), spec=k8s.ServiceSpec(
            type="ClusterIP", selector=self.selector,
            ports=[k8s.ServicePort(name=n, port=p, target_port=k8s.IntOrString.from_string(n), protocol="TCP")
                   for n, p in spec.ports.items()]))
        scaling = spec.scaling
        utilization = lambda resource, percent: k8s.MetricSpecV2(  # noqa: E731
            type="Resource", resource=k8s.ResourceMetricSourceV2(
                name=resource, target=k8s.MetricTargetV2(type="Utilization", average_utilization=percent)))
        k8s.KubeHorizontalPodAutoscalerV2(self, "hpa", metadata=k8s.ObjectMeta(
            name=spec.name, labels=self.labels, annotations=wave(Wave.AUTOSCALING)), spec=k8s.HorizontalPodAutoscalerSpecV2(
            scale_target_ref=k8s.CrossVersionObjectReferenceV2(api_version="apps/v1", kind="Deployment", name=spec.name),
            min_replicas=scaling.min_replicas, max_replicas=scaling.max_replicas,
            metrics=[utilization("cpu", scaling.cpu_utilization), utilization("memory", scaling.memory_utilization)],
            behavior=k8s.HorizontalPodAutoscalerBehaviorV2(scale_down=k8s.HpaScalingRulesV2(
                stabilization_window_seconds=scaling.scale_down_stabilization_seconds,
                policies=[k8s.HpaScalingPolicyV2(type="Pods", value=1, period_seconds=60)]))))
        k8s.KubePodDisruptionBudget(self, "pdb", metadata=meta(), spec=k8s.PodDisruptionBudgetSpec(
            # maxUnavailable (not minAvailable) never blocks a node drain when only one replica runs.
            max_unavailable=k8s.IntOrString.from_number(1),
            selector=k8s.LabelSelector(match_labels=self.selector),
            unhealthy_pod_eviction_policy="AlwaysAllow"))

    @property
    def pod_selector(self) -> dict[str, str]:
        return dict(self.selector)
