"""NetworkPolicies: deny everything by default, then allow only the flows KubeChat needs.
Each allowed flow is one rule here; docs/architecture.md lists them and tests evaluate them."""
from __future__ import annotations

from dataclasses import dataclass

from cdk8s_plus_28 import k8s
from constructs import Construct

from kubechat_deploy import validation as v
from kubechat_deploy.app.api import KubeChatApi
from kubechat_deploy.data.backups import LogicalBackups
from kubechat_deploy.data.database import KubeChatDatabase
from kubechat_deploy.labels import standard_labels
from kubechat_deploy.data.migration import KubeChatMigration
from kubechat_deploy.data.redis import KubeChatRedis
from kubechat_deploy.app.smoke_test import SmokeTest
from kubechat_deploy.delivery.sync import Wave, wave
from kubechat_deploy.app.web import KubeChatWeb

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, kw_only=True)
class NetworkProps:
    """Where the cluster's shared components run; the policies admit traffic from them."""

    proxy_namespace: str = "traefik"
    """Namespace of the front door's proxy: where the platform runs Traefik (versions.TRAEFIK_NAMESPACE). Default: traefik."""
    legacy_proxy_namespaces: tuple[str, ...] = ()
    """Namespaces of a front door being replaced, admitted to the web and the API beside proxy_namespace while
    users still reach it: ("ingress-nginx",) from step 1 to step 4 of docs/platform.md, "Moving a running cluster
    from ingress-nginx". Default: none."""
    monitoring_namespace: str = "monitoring"
    """Namespace of Prometheus (kube-prometheus-stack). Default: monitoring."""
    dns_namespace: str = "kube-system"
    """Namespace of the cluster DNS pods (label k8s-app=kube-dns). Default: kube-system."""
    operator_namespace: str = "cnpg-system"
    """Namespace of the CloudNativePG operator, which manages the database pods. Default: cnpg-system."""
    operator_pod_labels: tuple[tuple[str, str], ...] = (("app.kubernetes.io/name", "cloudnative-pg"),
                                                        ("app.kubernetes.io/instance", "cloudnative-pg"))
    """Labels of the CloudNativePG operator's pods, the only pods of operator_namespace the database admits (other
    pods there, such as the barman-cloud plugin's, are not): the chart's selectorLabels (templates/_helpers.tpl of
    cloudnative-pg/charts at cloudnative-pg-v0.29.0: app.kubernetes.io/name is the chart's name,
    app.kubernetes.io/instance the release name, platform-cloudnative-pg's releaseName).
    Default: name and instance cloudnative-pg."""
    kubernetes_api_ports: tuple[int, ...] = (443, 6443)
    """Ports of the Kubernetes API server (Service and endpoints). Default: (443, 6443)."""

    def __post_init__(self) -> None:
        for name in ("proxy_namespace", "monitoring_namespace", "dns_namespace", "operator_namespace"):
            v.dns_label(f"network.{name}", getattr(self, name))
        for name in self.legacy_proxy_namespaces:
            v.dns_label("network.legacy_proxy_namespaces", name)
        if not self.operator_pod_labels:
            raise v.SettingsError("network.operator_pod_labels", self.operator_pod_labels,
                                  "at least one label of the operator's pods (an empty selector admits every pod)")
        for p in self.kubernetes_api_ports:
            v.port("network.kubernetes_api_ports", p)


def namespace_peer(name: str) -> k8s.NetworkPolicyPeer:
    return k8s.NetworkPolicyPeer(namespace_selector=k8s.LabelSelector(match_labels={NAMESPACE_NAME_LABEL: name}))


def pod_peer(selector: dict[str, str]) -> k8s.NetworkPolicyPeer:
    return k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector(match_labels=selector))


def job_peer(selector: dict[str, str], roles: tuple[str, ...]) -> k8s.NetworkPolicyPeer:
    """The operator's Job pods of these roles (cnpg.io/jobRole)."""
    return k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector(
        match_labels=selector or None,
        match_expressions=[k8s.LabelSelectorRequirement(key="cnpg.io/jobRole", operator="In", values=list(roles))]))


def ports(*numbers_or_names, protocol: str = "TCP") -> list[k8s.NetworkPolicyPort]:
    return [k8s.NetworkPolicyPort(
        port=k8s.IntOrString.from_number(p) if isinstance(p, int) else k8s.IntOrString.from_string(p),
        protocol=protocol) for p in numbers_or_names]


class KubeChatNetworkPolicies(Construct):
    def __init__(self, scope: Construct, id: str, *, props: NetworkProps, api: KubeChatApi, web: KubeChatWeb,
                 database: KubeChatDatabase, redis: KubeChatRedis, migration: KubeChatMigration,
                 backups: LogicalBackups, smoke_test: SmokeTest) -> None:
        super().__init__(scope, id)
        self.props = props
        self._labels = standard_labels("network")
        everything = k8s.LabelSelector()
        # The API server is not a pod and its address differs per cluster: allow its ports only.
        # (443 also carries the database backups to the object store.)
        kubernetes_api = k8s.NetworkPolicyEgressRule(ports=ports(*props.kubernetes_api_ports))
        monitoring = namespace_peer(props.monitoring_namespace)
        front_doors = [namespace_peer(ns) for ns in (props.proxy_namespace, *props.legacy_proxy_namespaces)]

        self.policy("default-deny", "default-deny-all", everything, ingress=[], egress=[])
        self.policy("dns", "allow-dns-egress", everything, egress=[k8s.NetworkPolicyEgressRule(
            to=[k8s.NetworkPolicyPeer(namespace_selector=namespace_peer(props.dns_namespace).namespace_selector,
                                      pod_selector=k8s.LabelSelector(match_labels={"k8s-app": "kube-dns"}))],
            ports=ports(53, protocol="UDP") + ports(53))])
        self.policy("api", api.props.name, api.pod_selector,
                    ingress=[
                        k8s.NetworkPolicyIngressRule(from_=[*front_doors, pod_peer(web.pod_selector),
                                                            pod_peer(smoke_test.pod_selector)],
                                                     ports=ports(api.http_port_name)),
                        k8s.NetworkPolicyIngressRule(from_=[monitoring], ports=ports(api.metrics_port_name)),
                    ],
                    egress=[
                        k8s.NetworkPolicyEgressRule(to=[pod_peer(database.pooler_pod_labels)], ports=ports(database.port)),
                        k8s.NetworkPolicyEgressRule(to=[pod_peer(redis.pod_selector)], ports=ports(redis.port)),
                        kubernetes_api,
                    ])
        self.policy("web", web.props.name, web.pod_selector,
                    ingress=[k8s.NetworkPolicyIngressRule(from_=[*front_doors, pod_peer(smoke_test.pod_selector)],
                                                          ports=ports(web.http_port_name))],
                    egress=[k8s.NetworkPolicyEgressRule(to=[pod_peer(api.pod_selector)],
                                                        ports=ports(api.props.http_port))])
        instances = pod_peer(database.instance_pod_labels)
        self.policy("pooler", database.pooler_name, database.pooler_pod_labels,
                    ingress=[k8s.NetworkPolicyIngressRule(from_=[pod_peer(api.pod_selector)], ports=ports(database.port)),
                             k8s.NetworkPolicyIngressRule(from_=[monitoring], ports=ports("metrics"))],
                    egress=[k8s.NetworkPolicyEgressRule(to=[instances], ports=ports(database.port)), kubernetes_api])
        join_jobs = job_peer(database.job_pod_labels, database.join_job_roles)
        any_instance = pod_peer(database.any_instance_pod_labels)
        object_store = k8s.NetworkPolicyEgressRule(ports=ports(*backups.props.object_store_ports))
        # Every CloudNativePG instance of the namespace: kubechat-db and a side-by-side recovery Cluster.
        self.policy("database", database.cluster_name, database.any_instance_pod_labels,
                    ingress=[
                        k8s.NetworkPolicyIngressRule(
                            from_=[pod_peer(database.pooler_pod_labels), pod_peer(migration.pod_selector),
                                   pod_peer(backups.backup_pod_labels), any_instance, join_jobs],
                            ports=ports(database.port)),
                        # The operator checks each instance's status endpoint and connects as superuser.
                        k8s.NetworkPolicyIngressRule(from_=[k8s.NetworkPolicyPeer(
                            namespace_selector=k8s.LabelSelector(match_labels={NAMESPACE_NAME_LABEL: props.operator_namespace}),
                            pod_selector=k8s.LabelSelector(match_labels=dict(props.operator_pod_labels)))],
                            ports=ports(8000, database.port)),
                        k8s.NetworkPolicyIngressRule(from_=[monitoring], ports=ports("metrics")),
                    ],
                    # Replication between instances, the API server, and WAL archiving and base backups to the
                    # object store (the barman-cloud plugin's sidecar runs in each instance pod).
                    egress=[k8s.NetworkPolicyEgressRule(to=[any_instance], ports=ports(database.port)), kubernetes_api,
                            object_store])
        # The operator's Job pods (default-deny would stop the Cluster from bootstrapping, replicas from
        # joining and `make restore-manifest`'s recovery Cluster from reading the object store): the instance
        # manager in each talks to the API server; a join copies the primary; a recovery reads the backups.
        self.policy("database-join", f"{database.cluster_name}-join-jobs", job_peer(database.job_pod_labels,
                                                                                    database.join_job_roles).pod_selector,
                    ingress=[], egress=[k8s.NetworkPolicyEgressRule(to=[any_instance], ports=ports(database.port)),
                                        kubernetes_api])
        self.policy("database-bootstrap", f"{database.cluster_name}-bootstrap-jobs",
                    job_peer(database.job_pod_labels, database.bootstrap_job_roles).pod_selector,
                    ingress=[], egress=[kubernetes_api, object_store])
        self.policy("redis", redis.service_name, redis.pod_selector,
                    ingress=[k8s.NetworkPolicyIngressRule(from_=[pod_peer(api.pod_selector)], ports=ports(redis.port)),
                             k8s.NetworkPolicyIngressRule(from_=[monitoring], ports=ports("metrics"))],
                    egress=[])
        self.policy("migration", migration.job_name, migration.pod_selector, ingress=[],
                    egress=[k8s.NetworkPolicyEgressRule(to=[instances], ports=ports(database.port))])
        # The object store's address is outside the cluster and differs per provider: its ports only.
        self.policy("logical-backup", "kubechat-logical-backup", backups.backup_pod_labels, ingress=[],
                    egress=[k8s.NetworkPolicyEgressRule(to=[instances], ports=ports(database.port)), object_store])
        self.policy("smoke-test", smoke_test.name, smoke_test.pod_selector, ingress=[],
                    egress=[k8s.NetworkPolicyEgressRule(to=[pod_peer(api.pod_selector)], ports=ports(api.props.http_port)),
                            k8s.NetworkPolicyEgressRule(to=[pod_peer(web.pod_selector)], ports=ports(web.props.http_port)),
                            # the public URL, through the ingress controller's load balancer
                            k8s.NetworkPolicyEgressRule(ports=ports(443))])
        self.policy("restore-drill", "kubechat-restore-drill", backups.drill_pod_labels, ingress=[],
                    egress=[object_store])

    def policy(self, id: str, name: str, pod_selector, *, ingress=None, egress=None) -> k8s.KubeNetworkPolicy:
        """One NetworkPolicy; a direction is governed only when its rule list is given ([] denies all)."""
        selector = pod_selector if isinstance(pod_selector, k8s.LabelSelector) else \
            k8s.LabelSelector(match_labels=pod_selector)
        types = [t for t, rules in (("Ingress", ingress), ("Egress", egress)) if rules is not None]
        return k8s.KubeNetworkPolicy(self, id, metadata=k8s.ObjectMeta(name=name, labels=self._labels,
                                                                            annotations=wave(Wave.NAMESPACE)),
                                     spec=k8s.NetworkPolicySpec(pod_selector=selector, policy_types=types,
                                                                ingress=ingress or None, egress=egress or None))
