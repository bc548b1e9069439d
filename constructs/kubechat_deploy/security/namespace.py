"""KubeChat's namespace: Pod Security admission enforcing "restricted", a ResourceQuota and a
LimitRange. Overlays rename it per environment and patch the quota."""
from __future__ import annotations

from dataclasses import dataclass

from cdk8s_plus_28 import k8s
from constructs import Construct

from kubechat_deploy import validation as v
from kubechat_deploy.labels import MANAGED_BY, PART_OF, standard_labels
from kubechat_deploy.delivery.sync import KEEP, Wave, wave

PSA_LEVEL = "restricted"


@dataclass(frozen=True, kw_only=True)
class NamespaceProps:
    """Namespace-wide guard rails. The quota bounds what the namespace may request in total."""

    name: str = "kubechat"
    """Namespace name in the base; each overlay renames it (kubechat-<env>). Default: kubechat."""
    quota_requests_cpu: str = "4"
    """ResourceQuota requests.cpu. Default: 4."""
    quota_requests_memory: str = "8Gi"
    """ResourceQuota requests.memory. Default: 8Gi."""
    quota_limits_memory: str = "16Gi"
    """ResourceQuota limits.memory. Default: 16Gi."""
    quota_storage: str = "100Gi"
    """ResourceQuota requests.storage (all PVCs). Default: 100Gi."""
    quota_pods: int = 50
    """ResourceQuota pods. Default: 50."""

    def __post_init__(self) -> None:
        v.dns_label("namespace.name", self.name)
        for name in ("quota_requests_cpu", "quota_requests_memory", "quota_limits_memory",
                     "quota_storage"):
            v.quantity(f"namespace.{name}", getattr(self, name))
        v.at_least("namespace.quota_pods", self.quota_pods, 1)


class KubeChatNamespace(Construct):
    def __init__(self, scope: Construct, id: str, *, props: NamespaceProps) -> None:
        super().__init__(scope, id)
        self.name = props.name
        psa = {f"pod-security.kubernetes.io/{mode}": PSA_LEVEL for mode in ("enforce", "audit", "warn")}
        psa.update({f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("enforce", "audit", "warn")})
        k8s.KubeNamespace(self, "namespace", metadata=k8s.ObjectMeta(
            # Never deleted with its Application (nor pruned): deleting the namespace would delete the
            # database Cluster and its volumes inside it, whatever their own Delete=false says.
            name=self.name, annotations={**wave(Wave.NAMESPACE), **KEEP},
            labels={**psa, "app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": MANAGED_BY},
        ))
        q = k8s.Quantity.from_string
        labels = standard_labels("namespace")
        k8s.KubeResourceQuota(self, "quota", metadata=k8s.ObjectMeta(name="kubechat-quota", labels=labels,
                                                                         annotations=wave(Wave.NAMESPACE)),
                              spec=k8s.ResourceQuotaSpec(hard={
                                  "requests.cpu": q(props.quota_requests_cpu),
                                  "requests.memory": q(props.quota_requests_memory),
                                  "limits.memory": q(props.quota_limits_memory),
                                  "requests.storage": q(props.quota_storage),
                                  "pods": q(str(props.quota_pods)),
                              }))
        # Defaults for a container that states no resources (the quota would otherwise reject it).
        # No default CPU limit and no CPU quota on limits: the operator-made PostgreSQL pods set no
        # CPU limit on purpose (throttling a database hurts every request), and must not get one.
        k8s.KubeLimitRange(self, "limits", metadata=k8s.ObjectMeta(name="kubechat-limits", labels=labels,
                                                                       annotations=wave(Wave.NAMESPACE)),
                           spec=k8s.LimitRangeSpec(limits=[k8s.LimitRangeItem(
                               type="Container",
                               default_request={"cpu": q("50m"), "memory": q("64Mi")},
                               default={"memory": q("256Mi")},
                               max={"memory": q("16Gi")})]))
