"""Helm (tools/helm) for the delivery tier's repo-server, at the version Argo CD v3.5.1 bundles (argo-cd v3.5.1
hack/tool-versions.sh helm4_version=4.2.1): Argo CD renders a Helm source with the `helm` on its PATH
(util/helm/cmd.go). Built into .cache/helm on first use; the stack's `provide_tool` puts it on the PATH."""
from __future__ import annotations

from pathlib import Path

from kubechat_tools.paths import CACHE
from testbed.argocd import go_module_version
from testbed.controlplane import build

MODULE = "helm.sh/helm/v4"
MODULES = {"helm": [(f"{MODULE}/cmd/helm", "helm")]}
BUILD_TIMES: dict[str, float] = {}


def version() -> str:
    return go_module_version("helm", MODULE)


def binaries() -> Path:
    return build(CACHE / "helm", MODULES, {"helm": f"-X {MODULE}/internal/version.version={version()}"}, BUILD_TIMES)
