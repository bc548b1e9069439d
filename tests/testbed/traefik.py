"""A real Traefik on loopback (tools/traefik) for the admission tier and the delivery tier's canaries: the front door that routes each public host
and path, terminates TLS with the certificate cert-manager issued from Pebble, sends the rendered headers,
splits canary traffic by the TraefikServices' weights, and carries cert-manager's HTTP-01 self-check to the
solver. Stopped by `stop()` (exactly its own process).

Which Traefik: v3.6.12, not the platform's v3.7.13 (chart 41.6.0). Traefik v3.7 needs
`github.com/traefik/traefik/dynamic/ext`, a nested module of Traefik's repository that its module zip leaves out
and the module proxy does not serve; lego v5's DNS providers and the containous/go-http-auth fork it pins are
refused here as well. v3.6.12, the newest buildable release, is built from its own module (its replace
directives apply: controlplane.build's `upstream`).

How it runs: with what the platform's values set in chart 41.6.0's static configuration
(constructs/kubechat_deploy/platform/prerequisites.py traefik_values: the entry points' ports, websecure's TLS
and readTimeout, the providers, Prometheus metrics and buckets; the flags as the chart's
templates/_podtemplate.tpl writes them); not the chart's other defaults (the dashboard is off, no version
check, no Gateway status address); and
- it runs inside the tier's pod network (testbed.netns), its entry points on that namespace's loopback at the
  chart's ports (the Gateway's listeners name them by port, pkg/provider/kubernetes/gateway/kubernetes.go),
  relayed out to loopback ports of the test;
- the providers reach the API server by its address, a token and its CA (as outside a cluster: the
  providers' `endpoint`, `token`, `certAuthFilePath`) instead of the pod's ServiceAccount;
- three settings of v3.7.11 and later, which v3.6.12 does not know, are left out: `safeNaming=false` (v3.6
  names services the same way, pkg/provider/kubernetes/crd/kubernetes_http.go fullServiceName),
  `defaultTLSResourcesNamespace` (the only TLSOption here is the chart's, in Traefik's namespace) and
  `core.strictTLSOptions` (its fix, GHSA-g55h-rg46-x9c5, is not in v3.6.12).
The chart's own objects that the routes depend on are made here as the chart makes them: the GatewayClass
(templates/gatewayclass.yaml) and the `default` TLSOption (templates/tlsoption.yaml)."""
from __future__ import annotations

import contextlib
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from kubechat_deploy.platform.prerequisites import traefik_values
from kubechat_deploy.versions import GATEWAY_API, TRAEFIK_GATEWAY_CLASS, TRAEFIK_NAMESPACE
from kubechat_tools.crds import go_module_download
from kubechat_tools.paths import CACHE
from testbed.argocd import go_module_dir, go_module_version
from testbed.controlplane import POD_CIDR, ControlPlane, ProcessGroup, build
from testbed.netns import PodNetwork

MODULE = "github.com/traefik/traefik/v3"
MODULES = {"traefik": [("./cmd/traefik", "traefik")]}
CONTROLLER_NAME = "traefik.io/gateway-controller"
"""The GatewayClass controllerName Traefik's Gateway provider accepts (pkg/provider/kubernetes/gateway/kubernetes.go)."""
INTERNAL_PORT = 8080
"""The chart's `traefik` entry point (ping), values.yaml ports.traefik.port."""
METRICS_PORT = 9100
"""The chart's `metrics` entry point, values.yaml ports.metrics.port."""
BUILD_TIMES: dict[str, float] = {}


def version() -> str:
    return go_module_version("traefik", MODULE)


def binaries() -> Path:
    return build(CACHE / "traefik", MODULES, {"traefik": f"-X {MODULE}/pkg/version.Version={version()}"},
                 BUILD_TIMES, upstream={"traefik": go_module_dir("traefik", MODULE)})


def crds() -> list[dict]:
    """Every CRD the two providers watch, as the platform installs them: the Gateway API's standard channel at
    the platform's pin (its Application syncs the module's config/crd; crds.yaml pins the three the project
    renders) and Traefik's own CRDs at the version run (the chart installs all of them from its crds/; the
    CRD provider watches every kind: docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml)."""
    gateway_api = go_module_download(f"{GATEWAY_API.module}@{GATEWAY_API.version}") / "config" / "crd" / "standard"
    found = [d for path in sorted(gateway_api.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text())]
    definitions = go_module_dir("traefik", MODULE) / "docs" / "content" / "reference" / "dynamic-configuration"
    found += [d for d in yaml.safe_load_all((definitions / "kubernetes-crd-definition-v1.yml").read_text()) if d]
    return [c for c in found if c and c.get("kind") == "CustomResourceDefinition"]


def chart_objects() -> list[dict]:
    """The chart's GatewayClass and `default` TLSOption for the platform's values."""
    values = traefik_values()
    return [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
             "metadata": {"name": values["gatewayClass"]["name"]}, "spec": {"controllerName": CONTROLLER_NAME}},
            {"apiVersion": "traefik.io/v1alpha1", "kind": "TLSOption",
             "metadata": {"name": "default", "namespace": TRAEFIK_NAMESPACE}, "spec": values["tlsOptions"]["default"]}]


def static_arguments(ip: str) -> list[str]:
    """The chart's arguments for the platform's values (module docstring), entry points on `ip`."""
    values = traefik_values()
    ports, providers = values["ports"], values["providers"]
    assert values["gatewayClass"]["name"] == TRAEFIK_GATEWAY_CLASS
    args = ["--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
            f"--entryPoints.metrics.address={ip}:{METRICS_PORT}/tcp",
            f"--entryPoints.traefik.address={ip}:{INTERNAL_PORT}/tcp",
            f"--entryPoints.web.address={ip}:{ports['web']['port']}/tcp",
            f"--entryPoints.websecure.address={ip}:{ports['websecure']['port']}/tcp",
            "--api.dashboard=false", "--ping=true",
            "--metrics.prometheus=true", "--metrics.prometheus.entrypoint=metrics",
            f"--metrics.prometheus.buckets={values['metrics']['prometheus']['buckets']}",
            "--entryPoints.websecure.http.tls=true", "--log.level=INFO"]
    timeouts = ports["websecure"].get("transport", {}).get("respondingTimeouts", {})
    args += [f"--entryPoints.websecure.transport.respondingTimeouts.{k}={v}" for k, v in sorted(timeouts.items())]
    if providers["kubernetesCRD"]["enabled"]:
        args.append("--providers.kubernetescrd")
    if providers["kubernetesGateway"]["enabled"]:
        args.append("--providers.kubernetesgateway")
    if providers["kubernetesIngress"]["enabled"]:
        args.append("--providers.kubernetesingress")
    return args


@dataclass
class Traefik(ProcessGroup):
    """Traefik inside the tier's pod network (testbed.netns), where the pods' addresses are local, watching one
    control plane (the API server relayed into the namespace at its own address, so the kubeconfig's address
    and certificate hold); its entry points relayed out to loopback ports of the test (`ip`, `port(name)`)."""

    folder: Path
    workdir: Path
    plane: ControlPlane
    network: PodNetwork
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    ip: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=dict)
    """Entry point -> the loopback port (outside the namespace) relayed to it."""
    keep_installed_crds: bool = False
    """Install only the CRDs the control plane does not serve yet (the delivery tier has the project's pinned
    ones, which Traefik's v3.6.12 copies must not replace)."""

    def port(self, entry_point: str) -> int:
        return self.ports[entry_point]

    def start(self, timeout: float = 60) -> "Traefik":
        self.workdir.mkdir(parents=True, exist_ok=True)
        wanted = crds()
        if self.keep_installed_crds:
            served = set(self.plane.kubectl("get", "crd", "-o", "name").stdout.replace("customresourcedefinition.apiextensions.k8s.io/", "").split())
            wanted = [c for c in wanted if c["metadata"]["name"] not in served]
        if wanted:
            self.plane.install_crds(wanted)
        self.plane.apply_docs([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TRAEFIK_NAMESPACE}}])
        self.plane.apply_docs(chart_objects())
        config = yaml.safe_load(self.plane.kubeconfig.read_text())
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        server = urlsplit(cluster["server"])
        self.network.forward(("127.0.0.1", server.port), True, ("127.0.0.1", server.port), False)
        token = self.workdir / "token"
        token.write_text(user["token"])
        access = []
        for provider in ("kubernetescrd", "kubernetesgateway"):
            access += [f"--providers.{provider}.endpoint={cluster['server']}",
                       f"--providers.{provider}.token={token}",
                       f"--providers.{provider}.certAuthFilePath={cluster['certificate-authority']}"]
        inside = {"metrics": METRICS_PORT, "traefik": INTERNAL_PORT,
                  **{name: traefik_values()["ports"][name]["port"] for name in ("web", "websecure")}}
        self.spawn("traefik", [*self.network.enter(), str(self.folder / "traefik"),
                               *static_arguments("127.0.0.1"), *access])
        for name, port in inside.items():
            self.ports[name] = self.network.forward(("127.0.0.1", 0), False, ("127.0.0.1", port), True)[1]
        self.wait_http_ok(f"http://{self.ip}:{self.ports['traefik']}/ping", "traefik", timeout)
        return self

    def metrics(self) -> str:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://{self.ip}:{self.ports['metrics']}/metrics", timeout=5) as response:
            return response.read().decode()


HEADER_FIELDS = {
    # traefik v3.6.12 pkg/middlewares/headers/secure.go newSecure: a headers Middleware's fields -> unrolled/secure's
    # options, and unrolled/secure v1.0.9 secure.go processRequest/addResponseHeaders: the header each sends.
    "contentSecurityPolicy": lambda spec: {"Content-Security-Policy": spec["contentSecurityPolicy"]},
    "contentTypeNosniff": lambda spec: {"X-Content-Type-Options": "nosniff"} if spec["contentTypeNosniff"] else {},
    "frameDeny": lambda spec: {"X-Frame-Options": "DENY"} if spec["frameDeny"] else {},
    "permissionsPolicy": lambda spec: {"Permissions-Policy": spec["permissionsPolicy"]},
    "referrerPolicy": lambda spec: {"Referrer-Policy": spec["referrerPolicy"]},
    "stsSeconds": lambda spec: {"Strict-Transport-Security": f"max-age={spec['stsSeconds']}"
                                + ("; includeSubDomains" if spec.get("stsIncludeSubdomains") else "")
                                + ("; preload" if spec.get("stsPreload") else "")},
    "stsIncludeSubdomains": lambda spec: {}, "stsPreload": lambda spec: {},
    "customResponseHeaders": lambda spec: dict(spec["customResponseHeaders"]),
}


def middleware_response_headers(spec: dict, *, tls: bool) -> dict[str, str]:
    """The response headers a headers Middleware's `spec.headers` sets ("" for a custom header it removes);
    Strict-Transport-Security only on a request that came over TLS (unrolled/secure: isSSL). A field not mapped
    here raises, so a new rendered field cannot pass unchecked."""
    unknown = sorted(set(spec) - set(HEADER_FIELDS))
    if unknown:
        raise ValueError(f"headers Middleware fields not mapped to response headers: {unknown}")
    headers: dict[str, str] = {}
    for name in spec:
        headers.update(HEADER_FIELDS[name](spec))
    if not tls:
        headers.pop("Strict-Transport-Security", None)
    return headers


@contextlib.contextmanager
def in_own_network(plane: ControlPlane, workdir: Path) -> Iterator[tuple[Traefik, PodNetwork]]:
    """Traefik in a pod network of its own (POD_CIDR) against `plane`, keeping the CRDs it already serves (the
    delivery tier's modules that route through it); stops both."""
    network = PodNetwork(POD_CIDR)
    proxy = Traefik(folder=binaries(), workdir=workdir, plane=plane, network=network, keep_installed_crds=True)
    try:
        proxy.start()
        yield proxy, network
    finally:
        proxy.stop()
        network.stop()
