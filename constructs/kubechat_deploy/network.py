"""NetworkPolicies: deny everything by default, then allow only the flows KubeChat needs.
Each allowed flow is one rule here; docs/architecture.md lists them."""
from __future__ import annotations

from dataclasses import dataclass

from cdk8s_plus_28 import k8s
from constructs import Construct

from . import validation as v
from .api import KubeChatApi
from .labels import standard_labels

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, kw_only=True)
class NetworkProps:
    """Where the cluster's shared components run; the policies admit traffic from them."""

    ingress_namespace: str = "ingress-nginx"
    """Namespace of the ingress controller. Default: ingress-nginx."""
    monitoring_namespace: str = "monitoring"
    """Namespace of Prometheus (kube-prometheus-stack). Default: monitoring."""
    dns_namespace: str = "kube-system"
    """Namespace of the cluster DNS pods. Default: kube-system."""
    kubernetes_api_ports: tuple[int, ...] = (443, 6443)
    """Ports of the Kubernetes API server (Service and endpoints). Default: (443, 6443)."""

    def __post_init__(self) -> None:
        for name in ("ingress_namespace", "monitoring_namespace", "dns_namespace"):
            v.dns_label(f"network.{name}", getattr(self, name))
        for p in self.kubernetes_api_ports:
            v.port("network.kubernetes_api_ports", p)


def _namespace(name: str) -> k8s.LabelSelector:
    return k8s.LabelSelector(match_labels={NAMESPACE_NAME_LABEL: name})


def _ports(*numbers_or_names, protocol: str = "TCP") -> list[k8s.NetworkPolicyPort]:
    return [k8s.NetworkPolicyPort(
        port=k8s.IntOrString.from_number(p) if isinstance(p, int) else k8s.IntOrString.from_string(p),
        protocol=protocol) for p in numbers_or_names]


class KubeChatNetworkPolicies(Construct):
    def __init__(self, scope: Construct, id: str, *, props: NetworkProps, api: KubeChatApi) -> None:
        super().__init__(scope, id)
        labels = standard_labels("network")
        meta = lambda name: k8s.ObjectMeta(name=name, labels=labels)  # noqa: E731
        everything = k8s.LabelSelector()

        k8s.KubeNetworkPolicy(self, "default-deny", metadata=meta("default-deny-all"), spec=k8s.NetworkPolicySpec(
            pod_selector=everything, policy_types=["Ingress", "Egress"]))
        k8s.KubeNetworkPolicy(self, "dns", metadata=meta("allow-dns-egress"), spec=k8s.NetworkPolicySpec(
            pod_selector=everything, policy_types=["Egress"],
            egress=[k8s.NetworkPolicyEgressRule(
                to=[k8s.NetworkPolicyPeer(namespace_selector=_namespace(props.dns_namespace),
                                          pod_selector=k8s.LabelSelector(match_labels={"k8s-app": "kube-dns"}))],
                ports=_ports(53, protocol="UDP") + _ports(53))]))
        api_pods = k8s.LabelSelector(match_labels=api.deployment.to_json()["spec"]["selector"]["matchLabels"])
        k8s.KubeNetworkPolicy(self, "api", metadata=meta(api.props.name), spec=k8s.NetworkPolicySpec(
            pod_selector=api_pods, policy_types=["Ingress", "Egress"],
            ingress=[
                k8s.NetworkPolicyIngressRule(
                    from_=[k8s.NetworkPolicyPeer(namespace_selector=_namespace(props.ingress_namespace))],
                    ports=_ports(api.http_port_name)),
                k8s.NetworkPolicyIngressRule(
                    from_=[k8s.NetworkPolicyPeer(namespace_selector=_namespace(props.monitoring_namespace))],
                    ports=_ports(api.metrics_port_name)),
            ],
            egress=[
                # The API server's address differs per cluster and is not a pod: allow its ports only.
                k8s.NetworkPolicyEgressRule(ports=_ports(*props.kubernetes_api_ports)),
            ]))
