"""Settings of the cluster-wide platform pieces, kept apart from their constructs so the per-environment
charts never load the large Argo CD type library (render time: see README, Benchmark)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from kubechat_deploy import validation as v

GRAFANA_NAMESPACE = "monitoring"
"""Where kube-prometheus-stack runs Grafana (its Prerequisite's namespace)."""
GRAFANA_SERVICE_ACCOUNT = "kube-prometheus-stack-grafana"
"""Grafana's ServiceAccount: the grafana chart's fullname, release `kube-prometheus-stack` + `-grafana`."""
GRAFANA_DASHBOARDS_ROLE = "kubechat-grafana-dashboards"
"""The Role Grafana's sidecars read ConfigMaps through, in its own namespace (the platform's) and in each
KubeChat namespace (the environment's, bound to Grafana's ServiceAccount): ConfigMaps only, never Secrets."""


@dataclass(frozen=True, kw_only=True)
class DeliveryProps:
    """Where Argo CD finds this repository and how it syncs each environment."""

    repo_url: str = "https://github.com/kubechat/kubechat-deploy.git"
    """Git repository Argo CD reads the overlays from. Default: https://github.com/kubechat/kubechat-deploy.git."""
    revision: str = "main"
    """Branch that changes are merged to; the first environment (below) follows it. Default: main."""
    first_environment: str = "staging"
    """The delivered environment that follows `revision` directly. Every other one follows its promotion
    branch, `promotion_branch_prefix` + its name, which only `scripts/release.py promote` moves, and only to a
    revision this environment has synced and is Healthy at (docs/upgrade.md, "Promotion"). Default: staging."""
    promotion_branch_prefix: str = "promoted/"
    """Prefix of the promotion branches: production follows `promoted/production`. Default: promoted/."""
    argocd_namespace: str = "argocd"
    """Namespace of Argo CD (where Applications live). Default: argocd."""
    project: str = "kubechat"
    """Prefix of the environments' AppProjects: each delivered environment has its own, <project>-<env>
    (delivery/access.py). Default: kubechat."""
    destination_server: str = "https://kubernetes.default.svc"
    """Cluster of the platform's own Applications (prerequisites, root, delivery): the cluster Argo CD runs
    in. KubeChat's environments are not delivered here but to the clusters labelled below. Default: in-cluster."""
    production_sync_window: str = "0 8 * * 1-4"
    """Cron start of the window in which production may auto-sync (Mon-Thu 08:00 UTC)... Default: 0 8 * * 1-4."""
    production_sync_window_duration: str = "9h"
    """...and its length; outside it, changes wait (manual syncs stay allowed for emergencies). Default: 9h."""
    notification_service: str = "kubechat-deployments"
    """Argo CD notifications webhook service that receives failed syncs and degraded health of KubeChat's
    Applications (argocd-notifications-cm service.webhook.<name>; the Applications subscribe to it). It posts
    JSON {"text": ...}, what Slack, Mattermost and Rocket.Chat incoming webhooks take. Default: kubechat-deployments."""
    notification_webhook_remote_key: str = "kubechat/platform/argocd-notifications"
    """Remote key, in the ClusterSecretStore below, whose property `webhook-url` is the webhook's address (a
    secret: an incoming-webhook URL carries its token). External Secrets writes it into Argo CD's
    argocd-notifications-secret. Default: kubechat/platform/argocd-notifications."""
    secret_store: str = "kubechat-platform-secret-store"
    """ClusterSecretStore of the platform's secrets, usable only from Argo CD's and the monitoring namespaces (docs/install.md creates it). Default: kubechat-platform-secret-store."""
    argocd_url: str = "https://argocd.example.com"
    """Argo CD's address, for the links in notifications (set it in main.py). Default: https://argocd.example.com."""
    overlay_root: str = "overlays"
    """Folder holding one overlay per environment. Default: overlays."""
    environment_label: str = "kubechat.io/environment"
    """Label of an Argo CD cluster Secret naming the environment that cluster runs (docs/install.md): the
    ApplicationSet creates one Application per labelled cluster. Default: kubechat.io/environment."""
    environments: tuple[str, ...] = ("staging", "production")
    """Environments Argo CD delivers, each an overlay under overlays/, to the cluster labelled with its
    name (one cluster per environment: a second region is a second overlay, docs/install.md). dev is the
    laptop environment (make dev-deploy) and is never delivered by Argo CD. Default: (staging, production)."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"(https://|git@|ssh://)\S+", self.repo_url):
            raise v.SettingsError("delivery.repo_url", self.repo_url, "an https://, ssh:// or git@ repository URL")
        if not self.revision or " " in self.revision:
            raise v.SettingsError("delivery.revision", self.revision, "a branch, tag or commit")
        v.dns_label("delivery.argocd_namespace", self.argocd_namespace)
        v.dns_label("delivery.project", self.project)
        if not self.environments or any(e in ("dev", "components") or not re.fullmatch(r"[a-z][a-z0-9-]{0,40}", e)
                                        for e in self.environments):
            raise v.SettingsError("delivery.environments", self.environments,
                                  "names of overlays under overlays/ such as staging, production, production-eu; never dev "
                                  "(deployed with make dev-deploy, never by Argo CD onto a shared cluster)")
        if not re.fullmatch(r"([a-z0-9.-]+/)?[a-z0-9A-Z._-]+", self.environment_label):
            raise v.SettingsError("delivery.environment_label", self.environment_label, "a Kubernetes label key")
        if self.first_environment not in self.environments:
            raise v.SettingsError("delivery.first_environment", self.first_environment,
                                  f"one of delivery.environments ({', '.join(self.environments)})")
        if not re.fullmatch(r"[a-z][a-z0-9._-]*/", self.promotion_branch_prefix):
            raise v.SettingsError("delivery.promotion_branch_prefix", self.promotion_branch_prefix,
                                  "a branch folder ending in /, such as promoted/")
        v.cron("delivery.production_sync_window", self.production_sync_window)
        v.dns_label("delivery.notification_service", self.notification_service)
        v.dns_label("delivery.secret_store", self.secret_store)
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", self.argocd_url):
            raise v.SettingsError("delivery.argocd_url", self.argocd_url, "an http(s):// address")
        if not re.fullmatch(r"\d+[hm]", self.production_sync_window_duration):
            raise v.SettingsError("delivery.production_sync_window_duration", self.production_sync_window_duration,
                                  "a duration in hours or minutes, e.g. 9h")


@dataclass(frozen=True, kw_only=True)
class LoggingProps:
    """Where the log stack runs and which chart versions; pin and review upgrades like any release."""

    namespace: str = "logging"
    """Namespace of Loki and Alloy. Default: logging."""
    argocd_namespace: str = "argocd"
    """Namespace Argo CD watches for Applications. Default: argocd."""
    project: str = "platform"
    """Argo CD project of the platform Applications (delivery/access.py: the platform project). Default: platform."""
    loki_chart_version: str = "6.28.0"
    """grafana/loki chart version. Default: 6.28.0."""
    alloy_chart_version: str = "0.12.6"
    """grafana/alloy chart version. Default: 0.12.6."""
    retention: str = "744h"
    """How long Loki keeps logs (31 days). Default: 744h."""
    namespaces_regex: str = "kubechat-.*"
    """Namespaces whose pod logs Alloy collects. Default: kubechat-.*."""

    def __post_init__(self) -> None:
        for name in ("namespace", "argocd_namespace", "project"):
            v.dns_label(f"logging.{name}", getattr(self, name))
        for name in ("loki_chart_version", "alloy_chart_version"):
            if not re.fullmatch(r"\d+\.\d+\.\d+", getattr(self, name)):
                raise v.SettingsError(f"logging.{name}", getattr(self, name), "an exact chart version such as 6.28.0")
        if not re.fullmatch(r"\d+h", self.retention):
            raise v.SettingsError("logging.retention", self.retention, "hours, such as 744h")


@dataclass(frozen=True, kw_only=True)
class AlertingProps:
    """Where KubeChat's alerts go: Alertmanager (kube-prometheus-stack) routes each alert by severity to one of
    two webhooks of the site's on-call tool (Opsgenie, Grafana OnCall, incident.io and others take
    Alertmanager's webhook payload): pages for what wakes someone, tickets for the rest."""

    remote_key: str = "kubechat/platform/alertmanager"
    """Remote key, in the ClusterSecretStore below, with the properties `pages-url` and `tickets-url` (the
    webhook addresses carry the integrations' tokens: secrets). Default: kubechat/platform/alertmanager."""
    secret_store: str = "kubechat-platform-secret-store"
    """ClusterSecretStore of the platform's secrets. Default: kubechat-platform-secret-store."""
    page_severities: tuple[str, ...] = ("critical",)
    """Severities that page (the rules' `severity` label); every other alert is a ticket. Default: (critical,)."""
    repeat_interval: str = "4h"
    """How often a still-firing alert is sent again. Default: 4h."""

    def __post_init__(self) -> None:
        v.dns_label("alerting.secret_store", self.secret_store)
        if not self.page_severities or any(not re.fullmatch(r"[a-z]+", s) for s in self.page_severities):
            raise v.SettingsError("alerting.page_severities", self.page_severities,
                                  "one or more severities such as critical")
        if not re.fullmatch(r"\d+[hm]", self.repeat_interval):
            raise v.SettingsError("alerting.repeat_interval", self.repeat_interval, "a duration such as 4h")


@dataclass(frozen=True, kw_only=True)
class ScanningProps:
    """Trivy Operator (platform prerequisite): what it scans continuously, for KubeChatCriticalVulnerability."""

    namespaces: tuple[str, ...] = ("kubechat-dev", "kubechat-staging", "kubechat-production")
    """Namespaces whose running workloads are scanned. Default: the three KubeChat environments."""
    severities: tuple[str, ...] = ("CRITICAL", "HIGH", "MEDIUM")
    """Severities written into VulnerabilityReports and metrics. Default: CRITICAL, HIGH, MEDIUM."""
    ignore_unfixed: bool = True
    """Leave out vulnerabilities without a fixed version (nothing to upgrade to yet). Default: True."""

    def __post_init__(self) -> None:
        if not self.namespaces:
            raise v.SettingsError("scanning.namespaces", self.namespaces, "at least one namespace")
        for namespace in self.namespaces:
            v.dns_label("scanning.namespaces", namespace)
        allowed = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
        if not self.severities or any(s not in allowed for s in self.severities) or "CRITICAL" not in self.severities:
            raise v.SettingsError("scanning.severities", self.severities,
                                  f"a non-empty subset of {', '.join(allowed)} that includes CRITICAL (the alert needs it)")


SERVICE_TYPES = ("LoadBalancer", "NodePort", "HostPort")


@dataclass(frozen=True, kw_only=True)
class FrontDoorProps:
    """How users reach Traefik, the front door (platform prerequisites, platform-traefik; docs/platform.md "Clusters
    without a load balancer")."""

    service_type: str = "LoadBalancer"
    """'LoadBalancer': the cloud's (or MetalLB's) load balancer gives Traefik's Service an address; Argo CD assesses
    the Service Progressing until it has one, so a cluster without a load-balancer provider never finishes its
    bootstrap. 'NodePort': the nodes running a Traefik pod serve it on node_ports (externalTrafficPolicy Local:
    the others drop it; put a load balancer that health-checks the nodes in front). 'HostPort': each node running
    a Traefik pod serves it on 80 and 443 (the pods' ports published on the node; the Service stays ClusterIP;
    updates replace a pod before starting its successor, since no spare node has the ports free). Default:
    'LoadBalancer'."""
    node_ports: tuple[int, int] = (30080, 30443)
    """HTTP and HTTPS node ports for 'NodePort', within the cluster's node port range. Default: (30080, 30443)."""

    def __post_init__(self) -> None:
        if self.service_type not in SERVICE_TYPES:
            raise v.SettingsError("front_door.service_type", self.service_type, f"one of {', '.join(SERVICE_TYPES)}")
        if len(self.node_ports) != 2 or len(set(self.node_ports)) != 2 or \
                any(not isinstance(port, int) or not 30000 <= port <= 32767 for port in self.node_ports):
            raise v.SettingsError("front_door.node_ports", self.node_ports,
                                  "two different ports (HTTP, HTTPS) in the default node port range 30000-32767")


@dataclass(frozen=True, kw_only=True)
class MetricsServerProps:
    """The resource metrics API the HorizontalPodAutoscalers read (platform prerequisite platform-metrics-server;
    docs/platform.md)."""

    install: bool = True
    """Install metrics-server with the platform. False where the cluster already runs one (most managed
    offerings, or an earlier manual install): the chart's objects have the same names (Deployment
    kube-system/metrics-server, APIService v1beta1.metrics.k8s.io) with another pod selector, so installing over
    it fails the sync and can take the metrics API down. Default: True."""
    kubelet_insecure_tls: bool = False
    """Scrape the kubelets without checking their serving certificates (`--kubelet-insecure-tls`). Needed where
    the kubelets serve self-signed certificates (kubeadm's default, kind): otherwise metrics-server never becomes
    ready and the bootstrap stops at its wave. Prefer turning on the kubelets' serving-certificate rotation
    (serverTLSBootstrap) and leaving this False. Default: False."""


@dataclass(frozen=True, kw_only=True)
class ArgoCdAccessProps:
    """Who may do what in Argo CD (argocd-rbac-cm, delivery/access.py, docs/security.md "Argo CD access"): the
    groups of your SSO (Dex or OIDC, `groups` claim) mapped to roles. Everyone else who can log in reads only."""

    staging_deployers: tuple[str, ...] = ("kubechat-developers",)
    """SSO groups that may sync, roll back and change staging's Applications. Default: (kubechat-developers,)."""
    production_deployers: tuple[str, ...] = ("kubechat-release-managers",)
    """SSO groups that may sync, roll back and change production's Applications: manual syncs are allowed
    outside production's sync window (an emergency fix or rollback), to these groups only. Default:
    (kubechat-release-managers,)."""
    platform_admins: tuple[str, ...] = ("kubechat-platform-admins",)
    """SSO groups that administer Argo CD (projects, clusters, repositories, the platform's Applications).
    Default: (kubechat-platform-admins,)."""
    local_admin: bool = True
    """Argo CD's built-in `admin` user. Set False (argocd-cm `admin.enabled: "false"`) once SSO is configured
    and a platform admin has logged in through it (docs/security.md). Default: True."""

    def __post_init__(self) -> None:
        for name in ("staging_deployers", "production_deployers", "platform_admins"):
            groups = getattr(self, name)
            if not isinstance(groups, tuple) or any(not re.fullmatch(r"[^\s,#]+", g) for g in groups):
                raise v.SettingsError(f"argocd_access.{name}", groups,
                                      "a tuple of SSO group names without spaces, commas or #")


@dataclass(frozen=True, kw_only=True)
class PlatformProps:
    """Settings of the cluster-wide platform pieces (dist/platform/); each field's own docstring gives its
    defaults. The platform reads only these, never the application's settings."""

    delivery: DeliveryProps = field(default_factory=DeliveryProps)
    """Argo CD project and ApplicationSet (platform delivery). Default: DeliveryProps()."""
    logging: LoggingProps = field(default_factory=LoggingProps)
    """Optional log aggregation, Loki and Alloy (platform logging). Default: LoggingProps()."""
    scanning: ScanningProps = field(default_factory=ScanningProps)
    """Continuous vulnerability scanning by Trivy Operator (platform prerequisites). Default: ScanningProps()."""
    alerting: AlertingProps = field(default_factory=AlertingProps)
    """Alertmanager's routing of KubeChat's alerts (platform prerequisites, kube-prometheus-stack). Default: AlertingProps()."""
    argocd_access: ArgoCdAccessProps = field(default_factory=ArgoCdAccessProps)
    """Argo CD's roles and who holds them (argocd-rbac-cm). Default: ArgoCdAccessProps()."""
    metrics_server: MetricsServerProps = field(default_factory=MetricsServerProps)
    """Whether the platform installs metrics-server, and how it reaches the kubelets. Default: MetricsServerProps()."""
    front_door: FrontDoorProps = field(default_factory=FrontDoorProps)
    """How users reach Traefik: load balancer, node ports or host ports (platform prerequisites). Default: FrontDoorProps()."""
