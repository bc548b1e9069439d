"""Platform bootstrap: Argo CD Applications for every prerequisite, pinned to chart versions, under
one root Application (app of apps). A new cluster with Argo CD installed is bootstrapped with
`kubectl apply --server-side --field-manager=kubechat-platform -k dist/platform/bootstrap` (docs/platform.md): the root Application `kubechat-root`
syncs dist/platform/root/, whose Applications sync dist/platform/prerequisites/ and
dist/platform/delivery/ from git."""
from __future__ import annotations

import re
from dataclasses import dataclass

from constructs import Construct

import imports.argocd.io.argoproj as argo

from . import validation as v
from .platform_props import DeliveryProps, ScanningProps
from .labels import standard_labels
from .sync import WAVE


@dataclass(frozen=True)
class Prerequisite:
    name: str
    repo_url: str
    chart: str
    version: str
    """Chart version (exact). The app version it ships is in docs/upgrade.md's matrix."""
    namespace: str
    wave: int
    values: dict


PREREQUISITES: tuple[Prerequisite, ...] = (
    Prerequisite("cert-manager", "https://charts.jetstack.io", "cert-manager", "v1.21.1", "cert-manager", -10,
                 {"crds": {"enabled": True, "keep": True}, "prometheus": {"servicemonitor": {"enabled": True}}}),
    # Chart 0.29.0 ships CloudNativePG 1.30.0, the version of the CRDs in crds.yaml (cloudnative-pg/charts,
    # charts/cloudnative-pg/Chart.yaml at d1b5ad60: appVersion "1.30.0"; 0.28.0 shipped 1.29.0).
    Prerequisite("cloudnative-pg", "https://cloudnative-pg.github.io/charts", "cloudnative-pg", "0.29.0", "cnpg-system",
                 -10, {"config": {"clusterWide": True}}),
    Prerequisite("external-secrets", "https://charts.external-secrets.io", "external-secrets", "2.9.0",
                 "external-secrets", -10, {"installCRDs": True}),
    Prerequisite("kube-prometheus-stack", "https://prometheus-community.github.io/helm-charts", "kube-prometheus-stack",
                 "80.4.0", "monitoring", -10, {
                     "prometheus": {"prometheusSpec": {
                         "enforcedNamespaceLabel": "namespace",
                         "ruleSelectorNilUsesHelmValues": False, "serviceMonitorSelectorNilUsesHelmValues": False,
                         "podMonitorSelectorNilUsesHelmValues": False}},
                     "grafana": {"sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard",
                                                            "labelValue": "1", "searchNamespace": "ALL"}}}}),
    Prerequisite("plugin-barman-cloud", "https://cloudnative-pg.github.io/charts", "plugin-barman-cloud", "0.5.0",
                 "cnpg-system", -9, {}),
    Prerequisite("ingress-nginx", "https://kubernetes.github.io/ingress-nginx", "ingress-nginx", "4.13.3",
                 "ingress-nginx", -9, {"controller": {"config": {
                     "ssl-protocols": "TLSv1.2 TLSv1.3", "hsts": "true", "hsts-max-age": "31536000",
                     "hsts-include-subdomains": "true",
                     "global-allowed-response-headers": "Content-Security-Policy,X-Frame-Options,"
                                                        "X-Content-Type-Options,Referrer-Policy,Permissions-Policy"},
                     "metrics": {"enabled": True, "serviceMonitor": {"enabled": True}}}}),
    Prerequisite("argo-rollouts", "https://argoproj.github.io/argo-helm", "argo-rollouts", "2.40.5", "argo-rollouts",
                 -9, {}),
    Prerequisite("kyverno", "https://kyverno.github.io/kyverno", "kyverno", "3.6.0", "kyverno", -9, {}),
    # Scanned namespaces and severities come from ScanningProps (PlatformPrerequisites).
    Prerequisite("trivy-operator", "https://aquasecurity.github.io/helm-charts", "trivy-operator", "0.31.0",
                 "trivy-system", -8, {"serviceMonitor": {"enabled": True, "honorLabels": True}}),
    Prerequisite("reloader", "https://stakater.github.io/stakater-charts", "reloader", "2.2.5", "reloader", -8, {}),
)


def _application(scope, id, *, name, namespace, project, labels, wave, source, destination_namespace,
                 server) -> argo.Application:
    return argo.Application(scope, id, metadata={"name": name, "namespace": namespace, "labels": labels,
                                                 "annotations": {WAVE: str(wave)}},
                            spec=argo.ApplicationSpec(
                                project=project, source=source,
                                destination=argo.ApplicationSpecDestination(server=server, namespace=destination_namespace),
                                sync_policy=argo.ApplicationSpecSyncPolicy(
                                    automated=argo.ApplicationSpecSyncPolicyAutomated(prune=True, self_heal=True),
                                    retry=argo.ApplicationSpecSyncPolicyRetry(limit=5, backoff=argo.ApplicationSpecSyncPolicyRetryBackoff(
                                        duration="30s", factor=2, max_duration="10m")),
                                    sync_options=["CreateNamespace=true", "ServerSideApply=true"])))


class PlatformPrerequisites(Construct):
    """One Argo CD Application per prerequisite, in the platform project 'default', ordered by wave."""

    def __init__(self, scope: Construct, id: str, *, delivery: DeliveryProps, scanning: ScanningProps) -> None:
        super().__init__(scope, id)
        labels = standard_labels("platform")
        settings = {"trivy-operator": {"targetNamespaces": ",".join(scanning.namespaces),
                                       "trivy": {"severity": ",".join(scanning.severities),
                                                 "ignoreUnfixed": scanning.ignore_unfixed}}}
        for p in PREREQUISITES:
            values = {**p.values, **settings.get(p.name, {})}
            if not re.fullmatch(r"v?\d+\.\d+\.\d+", p.version):
                raise v.SettingsError(f"platform.{p.name}.version", p.version, "an exact chart version")
            _application(self, p.name, name=f"platform-{p.name}", namespace=delivery.argocd_namespace,
                         project="default", labels=labels, wave=p.wave, destination_namespace=p.namespace,
                         server=delivery.destination_server,
                         source=argo.ApplicationSpecSource(repo_url=p.repo_url, chart=p.chart, target_revision=p.version,
                                                           helm=argo.ApplicationSpecSourceHelm(release_name=p.name,
                                                                                               values_object=values or None)))


class PlatformRoot(Construct):
    """The root's children: the prerequisites, then KubeChat's delivery objects."""

    def __init__(self, scope: Construct, id: str, *, delivery: DeliveryProps) -> None:
        super().__init__(scope, id)
        labels = standard_labels("platform")
        for name, path, wave in (("platform-argocd", "dist/platform/argocd", -30),
                                 ("platform-prerequisites", "dist/platform/prerequisites", -20),
                                 ("kubechat-delivery", "dist/platform/delivery", 0)):
            _application(self, name, name=name, namespace=delivery.argocd_namespace, project="default",
                         labels=labels, wave=wave, destination_namespace=delivery.argocd_namespace,
                         server=delivery.destination_server,
                         source=argo.ApplicationSpecSource(repo_url=delivery.repo_url, target_revision=delivery.revision,
                                                           path=path))


class PlatformBootstrap(Construct):
    """The root Application: the one object applied by hand on a new cluster."""

    def __init__(self, scope: Construct, id: str, *, delivery: DeliveryProps) -> None:
        super().__init__(scope, id)
        _application(self, "root", name="kubechat-root", namespace=delivery.argocd_namespace, project="default",
                     labels=standard_labels("platform"), wave=0, destination_namespace=delivery.argocd_namespace,
                     server=delivery.destination_server,
                     source=argo.ApplicationSpecSource(repo_url=delivery.repo_url, target_revision=delivery.revision,
                                                       path="dist/platform/root"))
