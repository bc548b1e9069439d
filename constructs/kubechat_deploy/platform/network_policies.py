"""NetworkPolicies of the platform's own namespaces: Prometheus, Alertmanager and Grafana (monitoring) and Loki
(logging) answer without authentication, so only the pods that need them may reach them.

monitoring: its own pods (Grafana -> Prometheus and Alertmanager, Prometheus -> Alertmanager, Prometheus
scraping the stack), Argo Rollouts' controller (the canaries' AnalysisRuns query Prometheus on 9090), and the
API server, which is not a pod, calling the Prometheus Operator's admission webhook (kube-prometheus-stack
88.3.0 values.yaml prometheusOperator.tls.internalPort 10250, templates/prometheus-operator/deployment.yaml;
its pods are labelled app.kubernetes.io/name: <chart>-prometheus-operator, templates/prometheus-operator/
_prometheus-operator.tpl). logging: its own pods (Alloy -> Loki) and monitoring's (Grafana's Loki data source).
Egress stays open: Prometheus scrapes every namespace and Alertmanager posts to the on-call tool.
`kubectl port-forward` (how Grafana is reached without an ingress) enters the pod itself and is not
filtered. Exposing Grafana through the front door needs a policy admitting the front door's namespace."""
from __future__ import annotations

from cdk8s_plus_28 import k8s
from constructs import Construct

from kubechat_deploy.labels import standard_labels

NAME_LABEL = "kubernetes.io/metadata.name"
PROMETHEUS_PORT = 9090
OPERATOR_WEBHOOK_PORT = 10250
OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "kube-prometheus-stack-prometheus-operator"}


def _namespace(name: str) -> k8s.NetworkPolicyPeer:
    return k8s.NetworkPolicyPeer(namespace_selector=k8s.LabelSelector(match_labels={NAME_LABEL: name}))


def _port(port: int) -> list[k8s.NetworkPolicyPort]:
    return [k8s.NetworkPolicyPort(port=k8s.IntOrString.from_number(port), protocol="TCP")]


class NamespaceIsolation(Construct):
    """Deny every ingress into `namespace` but from its own pods and from `extra` (name -> (pod labels or None
    for every pod, peers, port or None for every port))."""

    def __init__(self, scope: Construct, id: str, *, namespace: str, component: str,
                 extra: dict[str, tuple[dict | None, list[k8s.NetworkPolicyPeer], int | None]]) -> None:
        super().__init__(scope, id)
        labels = standard_labels(component)
        meta = lambda name: k8s.ObjectMeta(name=name, namespace=namespace, labels=labels)  # noqa: E731
        every_pod = k8s.LabelSelector()
        k8s.KubeNetworkPolicy(self, "default-deny", metadata=meta("default-deny-ingress"), spec=k8s.NetworkPolicySpec(
            pod_selector=every_pod, policy_types=["Ingress"]))
        k8s.KubeNetworkPolicy(self, "same-namespace", metadata=meta("allow-same-namespace"), spec=k8s.NetworkPolicySpec(
            pod_selector=every_pod, policy_types=["Ingress"],
            ingress=[k8s.NetworkPolicyIngressRule(from_=[k8s.NetworkPolicyPeer(pod_selector=every_pod)])]))
        for name, (pods, peers, port) in extra.items():
            k8s.KubeNetworkPolicy(self, name, metadata=meta(name), spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels=pods) if pods else every_pod, policy_types=["Ingress"],
                ingress=[k8s.NetworkPolicyIngressRule(from_=peers, ports=_port(port) if port else None)]))


def monitoring_isolation(scope: Construct, *, namespace: str, rollouts_namespace: str) -> NamespaceIsolation:
    anywhere = [k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr="0.0.0.0/0")),
                k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr="::/0"))]
    return NamespaceIsolation(scope, "monitoring-isolation", namespace=namespace, component="monitoring", extra={
        "allow-prometheus-queries-from-argo-rollouts": (None, [_namespace(rollouts_namespace)], PROMETHEUS_PORT),
        "allow-operator-webhook-from-the-api-server": (OPERATOR_POD_LABELS, anywhere, OPERATOR_WEBHOOK_PORT),
    })


def logging_isolation(scope: Construct, *, namespace: str, monitoring_namespace: str) -> NamespaceIsolation:
    return NamespaceIsolation(scope, "logging-isolation", namespace=namespace, component="logging", extra={
        "allow-grafana-from-monitoring": (None, [_namespace(monitoring_namespace)], None),
    })
