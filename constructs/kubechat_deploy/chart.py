"""The KubeChat chart: composes the application's constructs into one environment-neutral base."""
from __future__ import annotations

from dataclasses import dataclass, field

from cdk8s import Chart
from constructs import Construct

from .api import ApiProps, KubeChatApi
from .namespace import KubeChatNamespace
from .network import KubeChatNetworkPolicies, NetworkProps


@dataclass(frozen=True, kw_only=True)
class KubeChatProps:
    """Settings of the whole base; each field's own docstring gives its defaults."""

    api: ApiProps = field(default_factory=ApiProps)
    """The API workload. Default: ApiProps()."""
    network: NetworkProps = field(default_factory=NetworkProps)
    """Namespaces of the shared components the NetworkPolicies admit. Default: NetworkProps()."""


class KubeChatChart(Chart):
    def __init__(self, scope: Construct, id: str, *, props: KubeChatProps) -> None:
        super().__init__(scope, id, disable_resource_name_hashes=True)
        self.kubechat_namespace = KubeChatNamespace(self, "namespace")
        self.api = KubeChatApi(self, "api", props=props.api)
        self.network = KubeChatNetworkPolicies(self, "network", props=props.network, api=self.api)
