"""The versions of the programs KubeChat's delivery runs under, in one place. The CRDs in crds.yaml,
the delivery tier's builds (tools/argocd, tools/rollouts) and docs/install.md follow these pins;
tests/delivery/test_versions.py fails when they disagree."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    """The application's release tag, e.g. v3.5.1."""
    module: str
    """Its Go module, as the delivery tier builds it."""


ARGOCD = Pin("argo-cd", "v3.5.1", "github.com/argoproj/argo-cd/v3")
"""Argo CD, installed by the platform team from the upstream manifests of this tag (docs/install.md)."""
ARGO_ROLLOUTS = Pin("argo-rollouts", "v1.9.1", "github.com/argoproj/argo-rollouts")
"""Argo Rollouts' controller (the platform's argo-rollouts chart must ship this app version)."""
