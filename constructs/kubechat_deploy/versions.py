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
CERT_MANAGER = Pin("cert-manager", "v1.21.1", "github.com/cert-manager/cert-manager")
"""cert-manager (the platform's cert-manager chart has the same version as its app)."""
ACME_HTTP01_SOLVER_IMAGE = f"quay.io/jetstack/cert-manager-acmesolver:{CERT_MANAGER.version}"
"""The image cert-manager runs the HTTP-01 solver pod from, in the Certificate's namespace: the default
of its controller's --acme-http01-solver-image flag (cert-manager's controller configuration defaults:
defaultACMEHTTP01SolverImage = fmt.Sprintf("quay.io/jetstack/cert-manager-acmesolver:%s", util.AppVersion))."""
ACME_HTTP01_SOLVER_PORT = 8089
"""The solver pod's port (cert-manager pkg/issuer/acme/http/pod.go: acmeSolverListenPort)."""
ACME_HTTP01_SOLVER_LABEL = "acme.cert-manager.io/http01-solver"
"""Label cert-manager puts on solver pods, value "true" (pkg/issuer/acme/http/pod.go: podLabels)."""
