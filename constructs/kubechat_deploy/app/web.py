"""The KubeChat web front end: a Next.js server that serves the UI and calls the API in-cluster."""
from __future__ import annotations

from dataclasses import dataclass, field

from cdk8s_plus_28 import k8s
from constructs import Construct

from kubechat_deploy import validation as v
from kubechat_deploy.app.api import KubeChatApi
from kubechat_deploy.app.workload import HttpWorkload, Probes, Resources, Scaling, WorkloadSpec, WritableDir, env_value


@dataclass(frozen=True, kw_only=True)
class WebProps:
    """Settings of the web workload. Environment-neutral: overlays patch scaling, resources, image tags."""

    name: str = "kubechat-web"
    """Name of the Deployment, Service, ServiceAccount, HPA and PDB. Default: kubechat-web."""
    image: str = "ghcr.io/kubechat/kubechat-web"
    """Image name without tag; each overlay pins the tag. Default: ghcr.io/kubechat/kubechat-web."""
    http_port: int = 3000
    """Port of the Next.js server (app contract). Default: 3000."""
    resources: Resources = field(default_factory=lambda: Resources(
        cpu_request="100m", memory_request="192Mi", cpu_limit="500m", memory_limit="384Mi",
        ephemeral_storage_request="128Mi", ephemeral_storage_limit="1Gi"))
    """Baseline requests and limits. Default: 100m/192Mi requests, 500m/384Mi limits; ephemeral storage
    128Mi/1Gi (the Next.js cache and /tmp emptyDirs count against it)."""
    scaling: Scaling = field(default_factory=Scaling)
    """HPA bounds and targets. Default: Scaling() (1 to 3 replicas)."""
    run_as_user: int = 10001
    """Non-root UID and GID (>= 10000). Default: 10001."""
    pre_stop_seconds: int = 5
    """Delay before SIGTERM. Default: 5."""
    termination_grace_seconds: int = 30
    """preStop plus Next.js's own shutdown. Default: 30."""

    def __post_init__(self) -> None:
        v.dns_label("web.name", self.name)
        v.image("web.image", self.image)
        v.port("web.http_port", self.http_port)
        v.at_least("web.pre_stop_seconds", self.pre_stop_seconds, 0)
        v.at_least("web.termination_grace_seconds", self.termination_grace_seconds, 1)


CSP_CONFIG_MAP = "kubechat-web-content-security-policy"
"""The pages' Content-Security-Policy (key CONTENT_SECURITY_POLICY, `{nonce}` where the app puts each response's
nonce: docs/app-contract.md), rendered with the public Gateway (app/exposure.py): a Next.js App Router page
hydrates with inline scripts, which only a nonce (or 'unsafe-inline') admits, and a proxy cannot set a
per-response nonce. Optional: without a public Gateway (dev) there is none."""


class KubeChatWeb(Construct):
    """The front end: Deployment, Service, ServiceAccount without a token, HPA and PDB."""

    COMPONENT = "web"

    def __init__(self, scope: Construct, id: str, *, props: WebProps, api: KubeChatApi) -> None:
        super().__init__(scope, id)
        self.props = props
        self.http_port_name = "http"
        self.workload = HttpWorkload(self, "workload", spec=WorkloadSpec(
            name=props.name,
            component=self.COMPONENT,
            container_name="web",
            image=props.image,
            ports={self.http_port_name: props.http_port},
            # The app's one health route (docs/app-contract.md) decides readiness; liveness is a TCP connect.
            probes=Probes(startup="/api/health", readiness="/api/health",
                          startup_budget_seconds=60),
            resources=props.resources,
            scaling=props.scaling,
            run_as_user=props.run_as_user,
            env=(
                env_value("API_BASE_URL", f"http://{api.service_name}:{api.props.http_port}"),
                env_value("PORT", str(props.http_port)),
                env_value("HOSTNAME", "0.0.0.0"),
                env_value("NEXT_TELEMETRY_DISABLED", "1"),
                env_value("NODE_ENV", "production"),
                k8s.EnvVar(name="CONTENT_SECURITY_POLICY", value_from=k8s.EnvVarSource(config_map_key_ref=k8s.ConfigMapKeySelector(
                    name=CSP_CONFIG_MAP, key="CONTENT_SECURITY_POLICY", optional=True))),
            ),
            writable_dirs=(WritableDir(name="tmp", path="/tmp", size_limit="64Mi"),
                           WritableDir(name="next-cache", path="/app/.next/cache", size_limit="256Mi")),
            kubernetes_api_access=False,
            pre_stop_seconds=props.pre_stop_seconds,
            termination_grace_seconds=props.termination_grace_seconds,
        ))
        self.service_name = self.workload.service_name
        self.service_account_name = self.workload.service_account_name
        self.pod_selector = self.workload.pod_selector
        self.deployment = self.workload.deployment
