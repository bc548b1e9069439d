"""cert-manager's ACME issuance end to end on the admission tier's control plane (tests/admission):
cert-manager's controllers at the platform's pin (tools/cert-manager), Let's Encrypt's test ACME server
Pebble on loopback, and a stand-in for the front door (Traefik) that answers the HTTP-01 self-check the way
the cluster would.

What is real: cert-manager's controllers (the Order, the Challenge, the solver Pod, Service and HTTPRoute they
create in KubeChat's namespace, admitted or refused by the API server with the rendered
ValidatingAdmissionPolicies, Kyverno's webhook, the LimitRange and the ResourceQuota), Pebble (the ACME
protocol, the account, the order, the signed certificate) and the Secret cert-manager writes.

What stands in: Traefik and the solver's process (kwok runs no containers). cert-manager checks that
http://<domain>/.well-known/acme-challenge/<token> serves the key before it asks the ACME server to validate
(pkg/issuer/acme/http/http.go testReachability, whose transport honours HTTP_PROXY). The controller's
HTTP_PROXY points at `GatewayStandIn`, which answers as Traefik and the solver would: through the HTTPRoute
for that host whose rule matches the path best (an Exact match before the longest PathPrefix, traefik
v3.7.13 pkg/provider/kubernetes/gateway/httproute.go buildPathRule), attached to the plain-HTTP listener of a
Gateway of class traefik in its namespace (a RequestRedirect rule answers 301, as the rendered redirect does),
its Service, a ready pod the Service selects, a path from Traefik's pod to that pod's port that the
NetworkPolicies on the cluster allow (as the project's NetworkPolicy model, kubechat_tools.netpol, evaluates
them: no CNI runs here), a Service port that is the solver's --listen-port, and the token and key of that
pod's own arguments (the acmesolver's --domain/--token/--key, pkg/issuer/acme/http/pod.go). Pebble then skips its own HTTP-01 request
(PEBBLE_VA_ALWAYS_VALID), which would need name resolution for the rendered domains.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from kubechat_deploy.versions import ACME_HTTP01_SOLVER_IMAGE, TRAEFIK_GATEWAY_CLASS, TRAEFIK_NAMESPACE

from kubechat_tools import netpol
from testbed.controlplane import ControlPlane, ProcessGroup, build, free_port, serving_certificate
from testbed.argocd import go_module_dir, go_module_version
from testbed.loopback import LoopbackServer
from kubechat_tools.crds import load_crds
from kubechat_tools.paths import CACHE, DIST

MODULES = {"cert-manager": [(".", "cert-manager")],
           "pebble": [("github.com/letsencrypt/pebble/v2/cmd/pebble", "pebble")]}
CERT_MANAGER_MODULE = "github.com/cert-manager/cert-manager"
CERT_MANAGER_NAMESPACE = "cert-manager"
"""The chart's --cluster-resource-namespace=$(POD_NAMESPACE): the platform installs it into cert-manager."""
TRAEFIK = netpol.Endpoint(
    "traefik", TRAEFIK_NAMESPACE,
    # traefik chart 41.6.0's pod labels (templates/_helpers.tpl traefik.labelselector: name and instance).
    labels={"app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": f"traefik-{TRAEFIK_NAMESPACE}"})
BUILD_TIMES: dict[str, float] = {}


def binaries() -> Path:
    return build(CACHE / "certificates", MODULES, None, BUILD_TIMES)


def versions() -> dict[str, str]:
    return {"cert-manager": go_module_version("cert-manager", CERT_MANAGER_MODULE),
            "pebble": go_module_version("pebble", "github.com/letsencrypt/pebble/v2")}


def cert_manager_crds() -> list[dict]:
    """Every CRD of cert-manager's module at the version built (deploy/crds: the three the project pins in
    crds.yaml, plus CertificateRequest, Order and Challenge, which its controllers create)."""
    folder = go_module_dir("cert-manager", CERT_MANAGER_MODULE) / "deploy" / "crds"
    return [yaml.safe_load(path.read_text()) for path in sorted(folder.glob("*.yaml"))]


def platform_gateway_api_enabled() -> bool:
    """The platform's cert-manager setting (dist/platform/prerequisites: the chart's `config`, a
    ControllerConfiguration, gatewayAPI.enabled), which this main takes as --enable-gateway-api."""
    app = yaml.safe_load((DIST / "platform" / "prerequisites" / "application-platform-cert-manager.yaml").read_text())
    config = app["spec"]["source"]["helm"]["valuesObject"].get("config") or {}
    return bool((config.get("gatewayAPI") or {}).get("enabled"))


def gateway_api_crds() -> list[dict]:
    """The Gateway API's CRDs as crds.yaml pins them (cert-manager refuses to start with the integration on
    and no gateway.networking.k8s.io/v1 resources: pkg/controller/context.go)."""
    return [c for c in load_crds() if c["spec"]["group"] == "gateway.networking.k8s.io"]


def chart_solver_image() -> str:
    """The solver image cert-manager's chart passes (--acme-http01-solver-image, templates/deployment.yaml),
    from the chart's values.yaml in the module built: <imageRegistry>/<imageNamespace>/<acmesolver.image.name>
    at the chart's appVersion, which cert-manager's release tool sets to the release tag (Chart.yaml in the
    module says v0.0.0 until then), i.e. the module version."""
    chart = go_module_dir("cert-manager", CERT_MANAGER_MODULE) / "deploy" / "charts" / "cert-manager"
    if "--acme-http01-solver-image=" not in (chart / "templates" / "deployment.yaml").read_text():
        raise RuntimeError("cert-manager's chart no longer passes --acme-http01-solver-image")
    values = yaml.safe_load((chart / "values.yaml").read_text())
    image = values["acmesolver"]["image"]
    if image.get("repository"):
        raise RuntimeError("cert-manager's chart sets acmesolver.image.repository: read it instead")
    return (f"{values['imageRegistry']}/{values['imageNamespace']}/{image['name']}:"
            f"{go_module_version('cert-manager', CERT_MANAGER_MODULE)}")


def upstream_defaults() -> dict[str, str]:
    """The solver defaults of cert-manager's configuration API (internal/apis/config/controller/v1alpha1/
    defaults.go), which tools/cert-manager/main.go's flags must equal."""
    text = (go_module_dir("cert-manager", CERT_MANAGER_MODULE) / "internal" / "apis" / "config" / "controller"
            / "v1alpha1" / "defaults.go").read_text()
    found = dict(re.findall(r"defaultACMEHTTP01Solver(Resource\w+|RunAsNonRoot)\s*=\s*(\S+)", text))
    return {k: v.strip('"') for k, v in found.items()}


@dataclass
class Pebble(ProcessGroup):
    """Pebble on 127.0.0.1 with a serving certificate for 127.0.0.1 from a CA of this test."""

    folder: Path
    workdir: Path
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    port: int = 0

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def ca_bundle(self) -> bytes:
        return (self.workdir / "ca.crt").read_bytes()

    def start(self, timeout: float = 30) -> "Pebble":
        w = self.workdir
        w.mkdir(parents=True, exist_ok=True)
        serving_certificate(w, ca_subject="/CN=pebble-test-ca", subject="/CN=127.0.0.1", san="IP:127.0.0.1")
        self.port = free_port()
        (w / "pebble.json").write_text(json.dumps({"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}", "managementListenAddress": f"127.0.0.1:{free_port()}",
            "certificate": str(w / "tls.crt"), "privateKey": str(w / "tls.key"),
            "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": False,
            "retryAfter": {"authz": 1, "order": 1}, "keyAlgorithm": "ecdsa",
            "profiles": {"default": {"description": "default", "validityPeriod": 7776000}}}}))
        env = {"PATH": os.environ.get("PATH", ""),
               "PEBBLE_VA_ALWAYS_VALID": "1",  # the HTTP-01 request itself is skipped (see the module docstring)
               "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_CHAIN_LENGTH": "2"}
        self.spawn("pebble", [str(self.folder / "pebble"), "-config", str(w / "pebble.json"), "-strict"], env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            if "Listening on" in (w / "pebble.log").read_text(errors="replace"):
                return self
            time.sleep(0.2)
        raise RuntimeError(f"Pebble did not start in {timeout:.0f} s:\n{self.log_tail('pebble')}")


def best_rule(routes: list[dict], host: str, path: str, listener=lambda route: True) -> tuple[dict, dict] | None:
    """(route, rule) Traefik sends host+path to among `routes` whose hostnames include the host and that
    `listener` accepts: the rule whose match ranks highest as traefik v3.7.13 ranks them
    (pkg/provider/kubernetes/gateway/httproute.go buildPathRule: Exact 100000, a PathPrefix 10000 + 100 per
    character, the catch-all "/" 1; a rule without matches is "/")."""
    best = None
    for route in routes:
        if host not in route["spec"].get("hostnames", []) or not listener(route):
            continue
        for rule in route["spec"].get("rules", []):
            for match in rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]:
                kind, value = match["path"]["type"], match["path"]["value"]
                prefix = value.rstrip("/")
                if kind == "Exact":
                    hit, rank = path == value, 100000
                else:
                    hit = path == prefix or path.startswith(prefix + "/") or not prefix
                    rank = 1 if value == "/" else 10000 + len(value) * 100
                if hit and (best is None or rank > best[0]):
                    best = (rank, route, rule)
    return best[1:] if best else None


class GatewayStandIn(LoopbackServer):
    """An HTTP proxy on loopback that answers cert-manager's HTTP-01 self-check as Traefik and the solver pod
    would (module docstring); every answer and refusal is recorded in `log`."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.log: list[str] = []
        self.served_from: dict[tuple[str, str], dict] = {}
        """(namespace, domain) -> the solver pod (as the API server stored it) whose key was served."""
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                status, body = stand_in.answer(self.path)
                stand_in.log.append(f"GET {self.path} -> {status} {body if status != 200 else '<key>'}")
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self._serve_in_background(ThreadingHTTPServer(("127.0.0.1", 0), Handler))

    def _get(self, *args: str) -> dict:
        return json.loads(self.plane.kubectl("get", *args, "-o", "json").stdout)

    def _on_http_listener(self, route: dict) -> bool:
        """Whether the route attaches to a plain-HTTP listener of a Gateway of class traefik."""
        namespace = route["metadata"]["namespace"]
        for ref in route["spec"].get("parentRefs", []):
            if ref.get("kind", "Gateway") != "Gateway":
                continue
            gateway = json.loads(self.plane.kubectl("get", "gateways.gateway.networking.k8s.io", ref["name"], "-n",
                                                    ref.get("namespace", namespace), "-o", "json", check=False).stdout or "{}")
            if gateway.get("spec", {}).get("gatewayClassName") != TRAEFIK_GATEWAY_CLASS:
                continue
            for listener in gateway["spec"]["listeners"]:
                if listener["protocol"] == "HTTP" and ref.get("sectionName", listener["name"]) == listener["name"]:
                    return True
        return False

    def answer(self, url: str) -> tuple[int, str]:
        parts = urlsplit(url)
        host, path = parts.hostname or "", parts.path
        routes = self._get("httproutes.gateway.networking.k8s.io", "--all-namespaces")["items"]
        best = best_rule(routes, host, path, self._on_http_listener)
        if best is None:
            return 404, f"no HTTPRoute on a traefik Gateway's HTTP listener routes {host}{path}"
        route, rule = best
        namespace = route["metadata"]["namespace"]
        redirect = next((f["requestRedirect"] for f in rule.get("filters", []) if f["type"] == "RequestRedirect"), None)
        if redirect is not None:
            return redirect.get("statusCode", 302), f"redirect to {redirect.get('scheme', 'http')}://{host}{path}"
        backend = rule["backendRefs"][0]
        if backend.get("kind", "Service") != "Service":
            return 500, f"backend {backend.get('kind')} {backend['name']} is not a Service"
        return self._serve(backend.get("namespace", namespace),
                           {"name": backend["name"], "port": {"number": backend.get("port")}}, host, path)

    def _serve(self, namespace: str, backend: dict, host: str, path: str) -> tuple[int, str]:
        service = self._get("service", backend["name"], "-n", namespace)
        port = next((p for p in service["spec"]["ports"]
                     if p.get("port") == backend["port"].get("number") or p.get("name") == backend["port"].get("name")),
                    None)
        if port is None:
            return 503, f"service {namespace}/{backend['name']} has no port {backend['port']}"
        selector = ",".join(f"{k}={v}" for k, v in service["spec"].get("selector", {}).items())
        # Traefik routes to the Service's ready endpoints only.
        pods = [p for p in self._get("pods", "-n", namespace, "-l", selector)["items"]
                if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
        if not pods:
            return 503, f"no ready pod behind service {namespace}/{backend['name']} (selector {selector})"
        policies = self._get("networkpolicy", "--all-namespaces")["items"]
        token = path.rsplit("/", 1)[-1]
        refusals = []
        for pod in pods:
            container = pod["spec"]["containers"][0]
            target_port = port.get("targetPort", port["port"])
            if isinstance(target_port, str):
                target_port = next((p["containerPort"] for p in container.get("ports", []) if p.get("name") == target_port), None)
            args = dict(a.removeprefix("--").split("=", 1) for a in container.get("args", []) if "=" in a)
            if str(target_port) != args.get("listen-port"):
                refusals.append(f"{pod['metadata']['name']} listens on {args.get('listen-port')}, the Service sends to {target_port}")
                continue
            destination = netpol.Endpoint(pod["metadata"]["name"], namespace, labels=pod["metadata"].get("labels", {}),
                                          ports={p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p})
            if not netpol.allowed(policies, TRAEFIK, destination, target_port):
                refusals.append(f"NetworkPolicies drop traefik -> {namespace}/{pod['metadata']['name']}:{target_port}")
                continue
            if args.get("domain") != host or args.get("token") != token:
                refusals.append(f"{pod['metadata']['name']} serves {args.get('domain')}/{args.get('token')}, not {host}/{token}")
                continue
            break
        else:
            return 504, "; ".join(refusals)
        self.served_from[(namespace, host)] = pod
        return 200, args["key"]


@dataclass
class CertManager(ProcessGroup):
    """cert-manager's ACME controllers for one control plane; `stop()` ends exactly them."""

    folder: Path
    workdir: Path
    plane: ControlPlane
    proxy_url: str
    """HTTP_PROXY: the front door's stand-in (GatewayStandIn.url)."""
    https_proxy_url: str
    """HTTPS_PROXY: a proxy that refuses every host (supply_chain.ConnectProxy({})), so an ACME server
    address left unpatched is refused and recorded instead of reached."""
    solver_image: str = ACME_HTTP01_SOLVER_IMAGE
    enable_gateway_api: bool = field(default_factory=platform_gateway_api_enabled)
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self) -> "CertManager":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.plane.install_crds(cert_manager_crds() + (gateway_api_crds() if self.enable_gateway_api else []))
        self.plane.apply_docs([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CERT_MANAGER_NAMESPACE}}])
        # The API server and Pebble are on loopback, which Go's proxy selection never proxies.
        env = {**os.environ, "HTTP_PROXY": self.proxy_url, "http_proxy": self.proxy_url,
               "HTTPS_PROXY": self.https_proxy_url, "https_proxy": self.https_proxy_url, "NO_PROXY": "", "no_proxy": ""}
        self.spawn("cert-manager", [str(self.folder / "cert-manager"), f"--kubeconfig={self.plane.kubeconfig}",
                                    f"--cluster-resource-namespace={CERT_MANAGER_NAMESPACE}",
                                    f"--acme-http01-solver-image={self.solver_image}",
                                    f"--enable-gateway-api={str(self.enable_gateway_api).lower()}", "--v=2"], env)
        return self
