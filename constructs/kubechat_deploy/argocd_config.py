"""Argo CD's own configuration that KubeChat's delivery depends on (platform piece dist/platform/argocd/,
also part of dist/platform/bootstrap so a new cluster gets it before the first sync).

Rendered as the `argocd-cm` ConfigMap of the Argo CD version pinned in versions.py, applied server-side
over the upstream install (only these keys are owned here):
- health checks that Argo CD lacks or gets wrong, in `argocd_health/*.lua` (one file per kind):
  child Applications (so the platform root's waves wait for the operators), CloudNativePG Backup (the
  pre-migration safety backup must complete before the migration hook), and CloudNativePG Cluster
  (the built-in check raises a Lua error on a Cluster with no status yet).
"""
from __future__ import annotations

from pathlib import Path

from constructs import Construct

from cdk8s_plus_28 import k8s

from .labels import MANAGED_BY
from .versions import ARGOCD

HEALTH_CHECKS = Path(__file__).with_name("argocd_health")
"""<group>_<Kind>.lua: the health check Argo CD runs for that kind (argocd-cm key
resource.customizations.health.<group>_<Kind>)."""


def health_customizations() -> dict[str, str]:
    return {f"resource.customizations.health.{path.stem}": path.read_text()
            for path in sorted(HEALTH_CHECKS.glob("*.lua"))}


class ArgoCdConfiguration(Construct):
    def __init__(self, scope: Construct, id: str, *, argocd_namespace: str) -> None:
        super().__init__(scope, id)
        # Argo CD's own labels on its ConfigMap (server-side apply merges them with the upstream install's).
        labels = {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd",
                  "app.kubernetes.io/managed-by": MANAGED_BY}
        k8s.KubeConfigMap(self, "argocd-cm", metadata=k8s.ObjectMeta(
            name="argocd-cm", namespace=argocd_namespace, labels=labels,
            annotations={"kubechat.io/argocd-version": ARGOCD.version}), data=health_customizations())
