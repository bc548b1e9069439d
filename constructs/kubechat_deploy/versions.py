"""The versions of the operators and programs KubeChat runs under, in one place (the pin table).
Everything else follows it: the CRDs crds.yaml imports and validates against (their tag), the platform's
prerequisite charts (dist/platform/prerequisites: chart version, and where the chart ships an older
app, the image tags and CRDs it is overridden with), the delivery tier's builds (tools/*/go.mod) and
docs/upgrade.md's compatibility matrix. tests/test_versions.py fails when any of them disagrees."""
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
GATEWAY_API = Pin("gateway-api", "v1.6.1", "sigs.k8s.io/gateway-api")
"""The Gateway API (standard channel): the version Traefik v3.7.13 is built against (its go.mod)."""
TRAEFIK = Pin("traefik", "v3.7.13", "github.com/traefik/traefik/v3")
"""Traefik, the front door: the Gateway API implementation (and its Middleware and TraefikService CRDs)."""
TRAEFIK_GATEWAY_CLASS = "traefik"
"""The GatewayClass the platform's Traefik chart creates (gatewayClass.name); the environments' Gateways use it."""
TRAEFIK_NAMESPACE = "traefik"
"""Where the platform runs Traefik: the namespace the environments' NetworkPolicies admit to their pods."""
TRAEFIK_ENTRYPOINTS = {"http": 8000, "https": 8443}
"""Gateway listener -> port. Traefik maps a listener to the entry point of the same port (the chart's `web` and
`websecure` ports), so a Gateway's listener ports must be these (traefik v3.7.13
pkg/provider/kubernetes/gateway/kubernetes.go, entryPointName: "no matching entryPoint for port", and an HTTP listener needs an entry point without TLS configuration)."""
ACME_HTTP01_SOLVER_IMAGE = f"quay.io/jetstack/cert-manager-acmesolver:{CERT_MANAGER.version}"
"""The image cert-manager runs the HTTP-01 solver pod from, in the Certificate's namespace: the default
of its controller's --acme-http01-solver-image flag (cert-manager's controller configuration defaults:
defaultACMEHTTP01SolverImage = fmt.Sprintf("quay.io/jetstack/cert-manager-acmesolver:%s", util.AppVersion))."""
ACME_HTTP01_SOLVER_PORT = 8089
"""The solver pod's port (cert-manager pkg/issuer/acme/http/pod.go: acmeSolverListenPort)."""
ACME_HTTP01_SOLVER_LABEL = "acme.cert-manager.io/http01-solver"
"""Label cert-manager puts on solver pods, value "true" (pkg/issuer/acme/http/pod.go: podLabels)."""


@dataclass(frozen=True)
class Chart:
    """A Helm chart the platform installs, with what its own Chart.yaml says it ships."""
    repo_url: str
    name: str
    version: str
    ships: str | None
    """appVersion in the chart's own Chart.yaml at this version (None: not read, see read_at)."""
    read_at: str
    """Where that Chart.yaml was read: repository, path and commit."""


@dataclass(frozen=True)
class Operator:
    """One operator: the app version the platform runs, the repository whose tag of that version the CRDs in
    crds.yaml come from, and the chart that installs it. When no chart ships the app version yet (none in
    the chart repository's history as read), the newest chart runs it anyway: `image_tag_values` set the
    images to the app version, `crds_values` turns off the chart's older CRDs, and `crds_path` of the
    operator's own repository at the app version's tag installs the CRDs instead (a second source of
    the same Argo CD Application; a kustomization, which Argo CD annotates so the CRDs are never pruned)."""
    name: str
    version: str
    crd_repo: str | None
    """owner/name on GitHub whose tag `version` crds.yaml imports (None: no CRD of it is imported)."""
    chart: Chart | None
    """None: CRDs only (an API, not a program): the Application syncs `crds_path` of `crd_repo` at `version`."""
    image_tag_values: tuple[str, ...] = ()
    crds_values: str | None = None
    crds_path: str | None = None

    @property
    def overridden(self) -> bool:
        return self.chart is not None and self.chart.ships is not None and \
            self.chart.ships.lstrip("v") != self.version.lstrip("v")


OPERATORS: tuple[Operator, ...] = (
    Operator("cert-manager", CERT_MANAGER.version, "cert-manager/cert-manager",
             # The chart is packaged with --version and --app-version both set to the release
             # (make/manifests.mk: helm package --app-version=$(VERSION) --version=$(VERSION)).
             Chart("https://charts.jetstack.io", "cert-manager", CERT_MANAGER.version, CERT_MANAGER.version,
                   "cert-manager/cert-manager make/manifests.mk at tag v1.21.1 (24e33194)")),
    Operator("cloudnative-pg", "v1.30.0", "cloudnative-pg/cloudnative-pg",
             Chart("https://cloudnative-pg.github.io/charts", "cloudnative-pg", "0.29.0", "1.30.0",
                   "cloudnative-pg/charts charts/cloudnative-pg/Chart.yaml at d1b5ad60")),
    Operator("plugin-barman-cloud", "v0.14.0", "cloudnative-pg/plugin-barman-cloud",
             # Newest chart in cloudnative-pg/charts' history: 0.7.0 ships v0.13.0; none ships v0.14.0 yet.
             Chart("https://cloudnative-pg.github.io/charts", "plugin-barman-cloud", "0.7.0", "v0.13.0",
                   "cloudnative-pg/charts charts/plugin-barman-cloud/Chart.yaml at 83bd9c59"),
             # config/crd: the kustomization of config/crd/bases (kubebuilder's layout; at v0.14.0 it lists the
             # ObjectStore CRD and patches nothing), so Argo CD can annotate the CRDs it installs.
             image_tag_values=("image.tag", "sidecarImage.tag"), crds_values="crds.create",
             crds_path="config/crd"),
    Operator("external-secrets", "v2.9.0", "external-secrets/external-secrets",
             Chart("https://charts.external-secrets.io", "external-secrets", "2.9.0", "v2.9.0",
                   "external-secrets/external-secrets deploy/charts/external-secrets/Chart.yaml at cc5bfbc2")),
    Operator("kube-prometheus-stack", "v0.93.0", "prometheus-operator/prometheus-operator",
             # 88.0.0 to 88.3.0 ship operator v0.93.0; 88.4.0 moved to v0.93.1.
             Chart("https://prometheus-community.github.io/helm-charts", "kube-prometheus-stack", "88.3.0", "v0.93.0",
                   "prometheus-community/helm-charts charts/kube-prometheus-stack/Chart.yaml at 54199b5b")),
    Operator("argo-rollouts", ARGO_ROLLOUTS.version, "argoproj/argo-rollouts",
             # Newest chart in argoproj/argo-helm's history: 2.41.0 ships v1.9.0; none ships v1.9.1 yet.
             Chart("https://argoproj.github.io/argo-helm", "argo-rollouts", "2.41.0", "v1.9.0",
                   "argoproj/argo-helm charts/argo-rollouts/Chart.yaml at 8796aeaa"),
             image_tag_values=("controller.image.tag",), crds_values="installCRDs", crds_path="manifests/crds"),
    Operator("kyverno", "v1.19.0", "kyverno/kyverno",
             Chart("https://kyverno.github.io/kyverno", "kyverno", "3.9.0", "v1.19.0",
                   "kyverno/kyverno charts/kyverno/Chart.yaml at tag v1.19.0 (ee97ce09)")),
    # The front door (docs/platform.md, "The front door"): the Gateway API's standard channel (CRDs only, from
    # the API's own repository at its tag: config/crd is a kustomization of config/crd/standard) and Traefik,
    # which implements it. Chart 41.6.0 ships v3.7.13, read in the chart's Go module (the module proxy serves
    # the chart repository as github.com/traefik/traefik-helm-chart v41.6.0+incompatible).
    Operator("gateway-api", GATEWAY_API.version, "kubernetes-sigs/gateway-api", None, crds_path="config/crd"),
    Operator("traefik", TRAEFIK.version, "traefik/traefik",
             Chart("https://traefik.github.io/charts", "traefik", "41.6.0", TRAEFIK.version,
                   "traefik/traefik-helm-chart traefik/Chart.yaml at v41.6.0 (module zip v41.6.0+incompatible)")),
    # The resource metrics API the HorizontalPodAutoscalers read (v1beta1.metrics.k8s.io): without it they report
    # FailedGetResourceMetric, Argo CD assesses them Degraded and the sync stops at their wave. No CRD. Chart
    # 3.13.1 ships app 0.8.1 (its Chart.yaml at the chart's release tag); v0.9.0 is tagged, but no chart ships it.
    Operator("metrics-server", "v0.8.1", None,
             Chart("https://kubernetes-sigs.github.io/metrics-server/", "metrics-server", "3.13.1", "0.8.1",
                   "kubernetes-sigs/metrics-server charts/metrics-server/Chart.yaml at 842dcc8c "
                   "(tag metrics-server-helm-chart-3.13.1)")),
    # Prerequisites whose CRDs KubeChat does not import: the chart version is the pin and whatever app
    # version it ships is what runs (their Chart.yaml was not read: the stored history is older).
    Operator("trivy-operator", "chart 0.31.0", None,
             Chart("https://aquasecurity.github.io/helm-charts", "trivy-operator", "0.31.0", None, "not read")),
    Operator("reloader", "chart 2.2.5", None,
             Chart("https://stakater.github.io/stakater-charts", "reloader", "2.2.5", None, "not read")),
)


def operator(name: str) -> Operator:
    return next(o for o in OPERATORS if o.name == name)
