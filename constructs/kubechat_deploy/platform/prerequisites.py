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

from kubechat_deploy import validation as v
from kubechat_deploy.layout import ENVIRONMENTS
from kubechat_deploy.platform.props import (GRAFANA_DASHBOARDS_ROLE, GRAFANA_NAMESPACE, AlertingProps, DeliveryProps,
                                            FrontDoorProps, MetricsServerProps, ScanningProps)
from kubechat_deploy.labels import standard_labels
from kubechat_deploy.delivery.sync import KEEP, WAVE
from kubechat_deploy.delivery.access import PLATFORM_PROJECT
from kubechat_deploy.versions import TRAEFIK_ENTRYPOINTS, TRAEFIK_GATEWAY_CLASS, TRAEFIK_NAMESPACE, operator


TRAEFIK_API_GROUP = "traefik.io"
STREAM_READ_TIMEOUT = "3600s"
"""How long a connection to the HTTPS entry point may stay open reading: the longest chat stream."""
TLS_CIPHER_SUITES = ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                     "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                     "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256")
"""TLS 1.2's forward-secret AEAD suites (TLS 1.3's are Go's own and always these kinds)."""


def grafana_values() -> dict:
    """Grafana's sidecars read dashboards and datasources from ConfigMaps only, in its own namespace and the
    KubeChat namespaces only. The grafana chart 12.10.4 (kube-prometheus-stack 88.3.0's dependency) otherwise
    gives its ServiceAccount a ClusterRole reading every ConfigMap and Secret of the cluster whenever a sidecar
    is enabled (grafana-community/helm-charts charts/grafana/templates/clusterrole.yaml); with `rbac.namespaced`
    it makes no ClusterRole and binds `rbac.useExistingRole` in its namespace (templates/rolebinding.yaml), here
    the Role that `extraObjects` creates there (templates/extra-manifests.yaml); each environment binds the same
    Role name in its own namespace. `resource: configmap` sets the sidecars' RESOURCE (templates/_pod.tpl)."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": GRAFANA_DASHBOARDS_ROLE},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]}
    return {"rbac": {"namespaced": True, "useExistingRole": GRAFANA_DASHBOARDS_ROLE},
            "extraObjects": [role],
            "sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard", "labelValue": "1",
                                       "resource": "configmap",
                                       "searchNamespace": [GRAFANA_NAMESPACE, *(f"kubechat-{e}" for e in ENVIRONMENTS)]},
                        "datasources": {"resource": "configmap"}}}


def traefik_values() -> dict:
    """The traefik chart 41.6.0 values (traefik/values.yaml of that chart) for the front door:
    - the Gateway API provider and the CRD provider (Middleware filters and the canaries' TraefikServices are
      its kinds: traefik v3.7.13 pkg/provider/kubernetes/gateway/httproute.go resolves an ExtensionRef or a
      TraefikService backendRef only through what the CRD provider registers); no Ingress provider, no
      IngressClass, no chart-made Gateway (each environment renders its own), the GatewayClass `traefik`;
    - the `default` TLSOption: TLS 1.2 at least with forward-secret AEAD suites; strict TLS options (the
      mitigation of GHSA-g55h-rg46-x9c5, core.strictTLSOptions, v3.7.11 and later);
    - two replicas behind a PodDisruptionBudget; Prometheus metrics with a ServiceMonitor that keeps the
      series' own `service` label (honorLabels: the Service's target label would rename it exported_service),
      with buckets fine enough for a p95 around the analyses' thresholds;
    - safeNaming off, as pinned here rather than left to the default: the series' `service` names
      (`<namespace>-<service>-<port>@kubernetescrd`, which the web canary analysis and the dashboards select)
      follow from it (pkg/provider/kubernetes/crd/kubernetes_http.go fullServiceName);
    - the TLSOption `default` read only from Traefik's own namespace (defaultTLSResourcesNamespace: one named
      `default` elsewhere would otherwise compete with it, pkg/provider/kubernetes/crd/kubernetes.go);
    - the websecure entry point's readTimeout at an hour: Traefik v3's default of 60 s
      (pkg/config/static/static_config.go DefaultReadTimeout) is a deadline on the connection, which ends a
      server-sent event stream of the chat after a minute;
    - the Service's externalTrafficPolicy Local: the client's own address reaches Traefik, which the API's
      rate limit counts (a Cluster policy would count the nodes' addresses: every user behind one node would
      share one limit)."""
    return {
        "deployment": {"replicas": 2},
        "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "core": {"strictTLSOptions": True},
        "ingressClass": {"enabled": False},
        "gateway": {"enabled": False},
        "gatewayClass": {"enabled": True, "name": TRAEFIK_GATEWAY_CLASS},
        "providers": {"kubernetesCRD": {"enabled": True, "safeNaming": False,
                                        "defaultTLSResourcesNamespace": TRAEFIK_NAMESPACE},
                      "kubernetesIngress": {"enabled": False}, "kubernetesGateway": {"enabled": True}},
        "ports": {"web": {"port": TRAEFIK_ENTRYPOINTS["http"]},
                  "websecure": {"port": TRAEFIK_ENTRYPOINTS["https"],
                                "transport": {"respondingTimeouts": {"readTimeout": STREAM_READ_TIMEOUT}}}},
        "service": {"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}},
        "tlsOptions": {"default": {"minVersion": "VersionTLS12", "cipherSuites": list(TLS_CIPHER_SUITES)}},
        "metrics": {"prometheus": {"buckets": "0.05,0.1,0.25,0.5,1,2.5,5,10",
                                   "service": {"enabled": True},
                                   "serviceMonitor": {"enabled": True, "honorLabels": True}}},
    }


def traefik_exposure(values: dict, front_door: FrontDoorProps) -> dict:
    """traefik_values with the front door's Service type (FrontDoorProps.service_type), in chart 41.6.0's values:
    `service.spec` goes into the Service's spec (templates/service.yaml), `ports.<name>.nodePort` and
    `ports.<name>.hostPort` into its ports and the pods' (templates/_service.tpl, _podtemplate.tpl), and
    `updateStrategy` into the Deployment's strategy.
    externalTrafficPolicy Local stays for both Service types that have it (the API's rate limit counts the
    client's own address); a host port is the node's own, so the client's address arrives as it is."""
    if front_door.service_type == "LoadBalancer":
        return values
    if front_door.service_type == "NodePort":
        values = _set(values, "service.spec.type", "NodePort")
        for name, port in zip(("web", "websecure"), front_door.node_ports):
            values = _set(values, f"ports.{name}.nodePort", port)
        return values
    values = _set(values, "service.spec", {"type": "ClusterIP"})
    for name, port in (("web", 80), ("websecure", 443)):
        values = _set(values, f"ports.{name}.hostPort", port)
    # The chart's update surges a pod first (maxSurge 1, maxUnavailable 0), which needs a node with 80 and 443
    # free: none may have them, and the update would wait forever. Replace one pod at a time instead.
    return _set(values, "updateStrategy", {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})


@dataclass(frozen=True)
class Prerequisite:
    name: str
    """Name in the pin table (versions.OPERATORS): the chart, its version and any override come from there."""
    namespace: str
    wave: int
    values: dict


PREREQUISITES: tuple[Prerequisite, ...] = (
    # honorLabels: cert-manager's series carry the Certificate's own `namespace`; without it the scrape's
    # namespace (cert-manager) wins and the environments' certificate alerts, which the operator confines to
    # their namespace (enforcedNamespaceLabel), never match (cert-manager v1.21.1
    # deploy/charts/cert-manager/values.yaml prometheus.servicemonitor.honorLabels, default false).
    # The Gateway API's CRDs first: cert-manager (HTTP-01 through an HTTPRoute) and Traefik watch its kinds.
    Prerequisite("gateway-api", TRAEFIK_NAMESPACE, -12, {}),
    # config.gatewayAPI.enabled: the HTTP-01 solver creates an HTTPRoute to its pod (gatewayHTTPRoute; cert-manager
    # v1.21.1 pkg/apis/config/controller/v1alpha1/types.go GatewayAPIConfig, the chart's `config` is that
    # ControllerConfiguration; pkg/controller/context.go starts the Gateway API informers only when it is set).
    Prerequisite("cert-manager", "cert-manager", -10,
                 {"crds": {"enabled": True, "keep": True},
                  "config": {"apiVersion": "controller.config.cert-manager.io/v1alpha1",
                             "kind": "ControllerConfiguration", "gatewayAPI": {"enabled": True}},
                  "prometheus": {"servicemonitor": {"enabled": True, "honorLabels": True}}}),
    Prerequisite("cloudnative-pg", "cnpg-system", -10, {"config": {"clusterWide": True}}),
    # The chart aggregates ExternalSecret create rights into the built-in edit and admin roles by default
    # (external-secrets chart 2.9.0 templates/rbac.yaml, `rbac.aggregateToEdit`/`aggregateToAdmin` at cc5bfbc2):
    # any namespace editor could then point an ExternalSecret at a store. Only viewing stays aggregated.
    Prerequisite("external-secrets", "external-secrets", -10,
                 {"installCRDs": True, "rbac": {"aggregateToEdit": False, "aggregateToAdmin": False}}),
    # First: its CRDs (ServiceMonitor, PodMonitor) must exist before the charts that enable monitors.
    Prerequisite("kube-prometheus-stack", "monitoring", -11, {
                     "prometheus": {"prometheusSpec": {
                         "enforcedNamespaceLabel": "namespace",
                         "ruleSelectorNilUsesHelmValues": False, "serviceMonitorSelectorNilUsesHelmValues": False,
                         "podMonitorSelectorNilUsesHelmValues": False}},
                     "grafana": grafana_values()}),
    Prerequisite("plugin-barman-cloud", "cnpg-system", -9, {}),
    Prerequisite("traefik", TRAEFIK_NAMESPACE, -9, traefik_values()),
    # Before the environments' HPAs (their wave needs the metrics API). Two replicas behind a PodDisruptionBudget:
    # while none runs, every HPA in the cluster stops scaling (metrics-server chart 3.13.1 values.yaml: replicas 1,
    # podDisruptionBudget off by default). kube-system, where the chart's documentation installs it.
    Prerequisite("metrics-server", "kube-system", -9, {
        "replicas": 2, "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
        # On two nodes where there are (the chart sets no spreading: affinity and topologySpreadConstraints empty),
        # so losing one node does not stop every HPA; on a one-node cluster both still run there.
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "metrics-server",
                                                                         "app.kubernetes.io/instance": "metrics-server"}}}]}),
    # Canary traffic is split by weight in a TraefikService (trafficRouting.traefik); the controller's default
    # API group is Traefik v2's traefik.containo.us (argo-rollouts v1.9.1 utils/defaults/defaults.go
    # DefaultTraefikAPIGroup; flags in cmd/rollouts-controller/main.go), which Traefik v3 no longer serves. The
    # chart passes controller.extraArgs to the controller's container and its ClusterRole already covers
    # traefik.io traefikservices (argoproj/argo-helm 8796aeaa, chart 2.41.0: templates/controller/deployment.yaml,
    # templates/_helpers.tpl providerRBAC.providers.traefik, true by default).
    Prerequisite("argo-rollouts", "argo-rollouts", -9, {"controller": {"extraArgs": [
        f"--traefik-api-group={TRAEFIK_API_GROUP}", f"--traefik-api-version={TRAEFIK_API_GROUP}/v1alpha1"]}}),
    # Three admission controllers, spread by the chart's default anti-affinity, behind a PodDisruptionBudget:
    # KubeChat's policies fail closed, so one replica would stop every pod creation during its restart or a
    # drain (kyverno/kyverno charts/kyverno/values.yaml at tag v1.19.0: admissionController.replicas,
    # .antiAffinity.enabled true by default, .podDisruptionBudget "always enabled if replicas > 1").
    Prerequisite("kyverno", "kyverno", -9, {"admissionController": {
        "replicas": 3, "podDisruptionBudget": {"enabled": True, "minAvailable": 1}}}),
    # Scanned namespaces and severities come from ScanningProps (PlatformPrerequisites).
    Prerequisite("trivy-operator", "trivy-system", -8, {"serviceMonitor": {"enabled": True, "honorLabels": True}}),
    Prerequisite("reloader", "reloader", -8, {}),
)


def _application(scope, id, *, name, namespace, project, labels, wave, source=None, sources=None,
                 destination_namespace, server) -> argo.Application:
    return argo.Application(scope, id, metadata={"name": name, "namespace": namespace, "labels": labels,
                                                 "annotations": {WAVE: str(wave)}},
                            spec=argo.ApplicationSpec(
                                project=project, source=source, sources=sources,
                                destination=argo.ApplicationSpecDestination(server=server, namespace=destination_namespace),
                                sync_policy=argo.ApplicationSpecSyncPolicy(
                                    automated=argo.ApplicationSpecSyncPolicyAutomated(prune=True, self_heal=True),
                                    retry=argo.ApplicationSpecSyncPolicyRetry(limit=5, backoff=argo.ApplicationSpecSyncPolicyRetryBackoff(
                                        duration="30s", factor=2, max_duration="10m")),
                                    sync_options=["CreateNamespace=true", "ServerSideApply=true"])))


class PlatformPrerequisites(Construct):
    """One Argo CD Application per prerequisite, in the platform project, ordered by wave."""

    def __init__(self, scope: Construct, id: str, *, delivery: DeliveryProps, scanning: ScanningProps,
                 alerting: AlertingProps, front_door: FrontDoorProps = FrontDoorProps(),
                 metrics_server: MetricsServerProps = MetricsServerProps()) -> None:
        super().__init__(scope, id)
        labels = standard_labels("platform")
        settings = {"trivy-operator": {"targetNamespaces": ",".join(scanning.namespaces),
                                       "trivy": {"severity": ",".join(scanning.severities),
                                                 "ignoreUnfixed": scanning.ignore_unfixed}},
                    "kube-prometheus-stack": {"alertmanager": alertmanager_values(alerting)}}
        if metrics_server.kubelet_insecure_tls:
            settings["metrics-server"] = {"args": ["--kubelet-insecure-tls"]}
        for p in PREREQUISITES:
            if p.name == "metrics-server" and not metrics_server.install:
                continue
            pin = operator(p.name)
            values = {**p.values, **settings.get(p.name, {})}
            if p.name == "kube-prometheus-stack":
                values = _set(values, "prometheus.prometheusSpec.excludedFromEnforcement",
                              excluded_from_enforcement(delivery))
            if p.name == "traefik":
                values = traefik_exposure(values, front_door)
            if pin.chart is None:
                # CRDs only: the API's own repository at the pinned tag, never pruned (as the override CRDs below).
                _application(self, p.name, name=f"platform-{p.name}", namespace=delivery.argocd_namespace,
                             project=PLATFORM_PROJECT, labels=labels, wave=p.wave, destination_namespace=p.namespace,
                             server=delivery.destination_server,
                             source=argo.ApplicationSpecSource(
                                 repo_url=f"https://github.com/{pin.crd_repo}.git", target_revision=pin.version,
                                 path=pin.crds_path,
                                 kustomize=argo.ApplicationSpecSourceKustomize(common_annotations=KEEP)))
                continue
            if not re.fullmatch(r"v?\d+\.\d+\.\d+", pin.chart.version):
                raise v.SettingsError(f"versions.{p.name}.chart.version", pin.chart.version, "an exact chart version")
            extra = []
            if pin.overridden:
                # The chart ships an older app: run the pinned one, with the CRDs of its own tag.
                for path in pin.image_tag_values:
                    values = _set(values, path, pin.version)
                values = _set(values, pin.crds_values, False)
                # Served from git by an Application that prunes: a CRD that left that folder would be pruned and
                # take every object of its kind with it. Argo CD adds this annotation to each (`kustomize edit add
                # annotation`, argo-cd v3.5.1 util/kustomize/kustomize.go; crds_path is a kustomization), so a
                # CRD is never pruned nor deleted with the Application: removing one is a person's decision.
                extra = [argo.ApplicationSpecSources(repo_url=f"https://github.com/{pin.crd_repo}.git",
                                                     target_revision=pin.version, path=pin.crds_path,
                                                     kustomize=argo.ApplicationSpecSourcesKustomize(
                                                         common_annotations=KEEP))]
            chart = argo.ApplicationSpecSources(repo_url=pin.chart.repo_url, chart=pin.chart.name,
                                                target_revision=pin.chart.version,
                                                helm=argo.ApplicationSpecSourcesHelm(release_name=p.name,
                                                                                     values_object=values or None))
            _application(self, p.name, name=f"platform-{p.name}", namespace=delivery.argocd_namespace,
                         project=PLATFORM_PROJECT, labels=labels, wave=p.wave, destination_namespace=p.namespace,
                         server=delivery.destination_server,
                         **({"sources": [chart, *extra]} if extra else
                            {"source": argo.ApplicationSpecSource(repo_url=pin.chart.repo_url, chart=pin.chart.name,
                                                                  target_revision=pin.chart.version,
                                                                  helm=argo.ApplicationSpecSourceHelm(
                                                                      release_name=p.name, values_object=values or None))}))


def prerequisite(name: str) -> Prerequisite:
    return next(p for p in PREREQUISITES if p.name == name)


def platform_source_repos() -> list[str]:
    """Every repository a prerequisite's Application reads (charts and CRD folders): the platform project's
    sourceRepos, with this repository and the log stack's chart repository."""
    repos = set()
    for p in PREREQUISITES:
        pin = operator(p.name)
        if pin.chart is not None:
            repos.add(pin.chart.repo_url)
        if pin.chart is None or pin.overridden:
            repos.add(f"https://github.com/{pin.crd_repo}.git")
    return sorted(repos)


MONITORING_NAMESPACE = GRAFANA_NAMESPACE
"""Where kube-prometheus-stack (Prometheus, Alertmanager) runs: its Prerequisite's namespace."""
RECEIVERS_SECRET = "kubechat-alertmanager-receivers"
"""The Secret (External Secrets, platform/delivery) with the receivers' addresses, mounted into Alertmanager."""
RECEIVER_URL_KEYS = {"kubechat-pages": "pages-url", "kubechat-tickets": "tickets-url"}
"""Receiver -> the key of RECEIVERS_SECRET holding its webhook address."""


RECEIVERS_FOLDER = "/etc/alertmanager/kubechat-receivers"


def alertmanager_values(alerting: AlertingProps) -> dict:
    """kube-prometheus-stack's `alertmanager` values: the chart's default routes everything to its 'null'
    receiver (charts/kube-prometheus-stack/values.yaml at kube-prometheus-stack-88.3.0, alertmanager.config),
    so no alert reached anyone. Helm merges these maps into the chart's (its global and inhibit_rules stay)
    and replaces its lists. KubeChat's alerts (every rule of an environment carries its kubechat-<env>
    namespace) of a paging severity go to kubechat-pages, its other alerts to kubechat-tickets; every other
    alert keeps the chart's routing ('null', the Watchdog included): the platform team routes the cluster's
    own alerts, which on a managed control plane include some that fire for good. Each receiver is a webhook
    whose address Alertmanager reads from a file when it sends (`url_file`: Alertmanager v0.33.1
    notify/webhook/config.go). The file comes from a Secret mounted as an optional volume (the Alertmanager
    resource's volumes and volumeMounts, which prometheus-operator v0.93.0 appends to the StatefulSet:
    pkg/alertmanager/statefulset.go), not alertmanagerSpec.secrets, which the operator mounts as required: the
    Secret is written by External Secrets after the operators are installed, and a required volume would keep
    the cluster's only Alertmanager from starting until then."""
    kubechat = 'namespace =~ "kubechat-.*"'
    return {
        "config": {
            "route": {"receiver": "null", "group_by": ["namespace", "alertname"], "group_wait": "30s",
                      "group_interval": "5m", "repeat_interval": alerting.repeat_interval,
                      "routes": [{"receiver": "null", "matchers": ['alertname = "Watchdog"']},
                                 {"receiver": "kubechat-pages",
                                  "matchers": [kubechat, f'severity =~ "{"|".join(alerting.page_severities)}"']},
                                 {"receiver": "kubechat-tickets", "matchers": [kubechat]}]},
            "receivers": [{"name": "null"}] + [
                {"name": name, "webhook_configs": [{"url_file": f"{RECEIVERS_FOLDER}/{key}", "send_resolved": True}]}
                for name, key in RECEIVER_URL_KEYS.items()],
        },
        "alertmanagerSpec": {
            "volumes": [{"name": "kubechat-receivers",
                         "secret": {"secretName": RECEIVERS_SECRET, "optional": True}}],
            "volumeMounts": [{"name": "kubechat-receivers", "mountPath": RECEIVERS_FOLDER, "readOnly": True}],
        },
    }


ENFORCED_RESOURCES = ("servicemonitors", "podmonitors", "prometheusrules")


def excluded_from_enforcement(delivery: DeliveryProps) -> list[dict]:
    """`enforcedNamespaceLabel: namespace` scopes KubeChat's monitors and rules to their environment's
    namespace; it would also overwrite `namespace` on every series the platform's own monitors scrape
    (kube-state-metrics, the kubelet, cert-manager, Traefik, Trivy: their ServiceMonitors live in the
    platform namespaces) with the monitor's namespace, and confine the platform's own rules to it. So the
    monitors and rules of every platform namespace are excluded (prometheus-operator v0.93.0
    pkg/namespacelabeler/labeler.go: IsExcluded, an ObjectReference without a name matches every object of
    that namespace and resource; GetRelabelingConfigs appends the namespace rewrite to all others)."""
    namespaces = sorted({p.namespace for p in PREREQUISITES} | {delivery.argocd_namespace})
    return [{"group": "monitoring.coreos.com", "resource": resource, "namespace": ns}
            for ns in namespaces for resource in ENFORCED_RESOURCES]


def _set(values: dict, path: str, value) -> dict:
    """values with the dotted Helm values path set (a copy)."""
    head, _, rest = path.partition(".")
    inner = values.get(head, {}) if rest else None
    return {**values, head: _set(dict(inner), rest, value) if rest else value}


class PlatformRoot(Construct):
    """The root's children: the prerequisites, then KubeChat's delivery objects."""

    def __init__(self, scope: Construct, id: str, *, delivery: DeliveryProps) -> None:
        super().__init__(scope, id)
        labels = standard_labels("platform")
        for name, path, wave in (("platform-argocd", "dist/platform/argocd", -30),
                                 ("platform-prerequisites", "dist/platform/prerequisites", -20),
                                 ("kubechat-delivery", "dist/platform/delivery", 0)):
            _application(self, name, name=name, namespace=delivery.argocd_namespace, project=PLATFORM_PROJECT,
                         labels=labels, wave=wave, destination_namespace=delivery.argocd_namespace,
                         server=delivery.destination_server,
                         source=argo.ApplicationSpecSource(repo_url=delivery.repo_url, target_revision=delivery.revision,
                                                           path=path))


class PlatformBootstrap(Construct):
    """The root Application: the one object applied by hand on a new cluster."""

    def __init__(self, scope: Construct, id: str, *, delivery: DeliveryProps) -> None:
        super().__init__(scope, id)
        _application(self, "root", name="kubechat-root", namespace=delivery.argocd_namespace, project=PLATFORM_PROJECT,
                     labels=standard_labels("platform"), wave=0, destination_namespace=delivery.argocd_namespace,
                     server=delivery.destination_server,
                     source=argo.ApplicationSpecSource(repo_url=delivery.repo_url, target_revision=delivery.revision,
                                                       path="dist/platform/root"))
