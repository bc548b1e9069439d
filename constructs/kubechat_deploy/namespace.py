"""KubeChat's namespace, with Pod Security admission enforcing the "restricted" profile.
Overlays rename it per environment (Kustomize `namespace:`)."""
from __future__ import annotations

from cdk8s_plus_28 import k8s
from constructs import Construct

from .labels import PART_OF, MANAGED_BY
from .validation import dns_label

PSA_LEVEL = "restricted"


class KubeChatNamespace(Construct):
    def __init__(self, scope: Construct, id: str, *, name: str = "kubechat") -> None:
        super().__init__(scope, id)
        self.name = dns_label("namespace.name", name)
        psa = {f"pod-security.kubernetes.io/{mode}": PSA_LEVEL for mode in ("enforce", "audit", "warn")}
        psa.update({f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("enforce", "audit", "warn")})
        k8s.KubeNamespace(self, "namespace", metadata=k8s.ObjectMeta(
            name=self.name,
            labels={**psa, "app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": MANAGED_BY},
        ))
