"""Argo CD's own configuration that KubeChat's delivery depends on (platform piece dist/platform/argocd/,
also part of dist/platform/bootstrap so a new cluster gets it before the first sync).

Rendered as the `argocd-cm` ConfigMap of the Argo CD version pinned in versions.py, applied server-side
over the upstream install with a field manager of its own (`kubectl apply --server-side
--field-manager=kubechat-platform`, docs/install.md), so the install's keys (resource.exclusions, ...)
stay: only these keys are owned here:
- health checks that Argo CD lacks or gets wrong, in `argocd_health/*.lua` (one file per kind):
  child Applications (so the platform root's waves wait for the operators), CloudNativePG Backup (the
  pre-migration safety backup must complete before the migration hook), and CloudNativePG Cluster
  (the built-in check raises a Lua error on a Cluster with no status yet).
"""
from __future__ import annotations

from pathlib import Path

from constructs import Construct

from cdk8s_plus_28 import k8s

from kubechat_deploy.versions import ARGOCD

HEALTH_CHECKS = Path(__file__).with_name("argocd_health")
"""<group>_<Kind>.lua: the health check Argo CD runs for that kind (argocd-cm key
resource.customizations.health.<group>_<Kind>)."""


def health_customizations() -> dict[str, str]:
    return {f"resource.customizations.health.{path.stem}": path.read_text()
            for path in sorted(HEALTH_CHECKS.glob("*.lua"))}


class ArgoCdConfiguration(Construct):
    def __init__(self, scope: Construct, id: str, *, argocd_namespace: str) -> None:
        super().__init__(scope, id)
        # Only the label Argo CD's settings watcher selects on (the install sets the same value): no label
        # another manager of argocd-cm (Helm, a self-managing Argo CD) would fight over.
        labels = {"app.kubernetes.io/part-of": "argocd"}
        k8s.KubeConfigMap(self, "argocd-cm", metadata=k8s.ObjectMeta(
            name="argocd-cm", namespace=argocd_namespace, labels=labels,
            annotations={"kubechat.io/argocd-version": ARGOCD.version}), data=health_customizations())
