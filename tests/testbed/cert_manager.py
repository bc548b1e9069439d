"""cert-manager's ACME issuance end to end on the admission tier's control plane (tests/admission):
cert-manager's controllers at the platform's pin (tools/cert-manager), Let's Encrypt's test ACME server
Pebble on loopback, and the front door, a real Traefik (testbed.traefik), on the way of the HTTP-01 self-check.

What is real: cert-manager's controllers (the Order, the Challenge, the solver Pod, Service and HTTPRoute they
create in KubeChat's namespace, admitted or refused by the API server with the rendered
ValidatingAdmissionPolicies, Kyverno's webhook, the LimitRange and the ResourceQuota), Pebble (the ACME
protocol, the account, the order, the signed certificate), the Secret cert-manager writes, and Traefik: cert-manager
checks that http://<domain>/.well-known/acme-challenge/<token> serves the key before it asks the ACME server
to validate (pkg/issuer/acme/http/http.go testReachability, whose transport honours HTTP_PROXY); its HTTP_PROXY
is Traefik's plain-HTTP entry point, so the request goes through Traefik's routing of the rendered Gateway, the
solver's HTTPRoute against the rendered redirect, the solver's Service and its endpoints.

What stands in: the solver's process (kwok runs no containers; `Solvers` answers on the pod's address in the tier's pod network
as cert-manager's acmesolver does, with the pod's own arguments) and the pod network (the NetworkPolicies
between Traefik and the solver pod, as the project's NetworkPolicy model evaluates them: no CNI runs here).
Pebble validates each domain itself, as Let's Encrypt does: it resolves the rendered domain through its DNS server
(pebble-challtestsrv, from Pebble's own module, answering every A query with 127.0.0.1 and no AAAA) and fetches
http://<domain>:<port>/.well-known/acme-challenge/<token> (va/va.go fetchHTTP), where <port> is Traefik's plain-HTTP
entry point relayed to loopback (Pebble's `httpPort`; a public ACME server uses 80, the chart's `web` port
exposes 80): the request goes through the same Gateway, solver HTTPRoute and NetworkPolicies as the self-check.
"""
from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import urllib.request
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from kubechat_deploy.versions import ACME_HTTP01_SOLVER_IMAGE, TRAEFIK_GATEWAY_CLASS, TRAEFIK_NAMESPACE

from kubechat_tools import netpol
from testbed.controlplane import ControlPlane, ProcessGroup, build, free_port, serving_certificate
from testbed.argocd import go_module_dir, go_module_version
from testbed.netns import PodNetwork
from testbed.pod_network import PodPorts
from kubechat_tools.crds import load_crds
from kubechat_tools.paths import CACHE, DIST

MODULES = {"cert-manager": [(".", "cert-manager")],
           "pebble": [("github.com/letsencrypt/pebble/v2/cmd/pebble", "pebble"),
                      ("github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv", "pebble-challtestsrv")]}
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


def free_udp_and_tcp_port() -> int:
    """A loopback port free for both UDP and TCP (a DNS server listens on both)."""
    for _ in range(20):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no loopback port free for both UDP and TCP")


def upstream_defaults() -> dict[str, str]:
    """The solver defaults of cert-manager's configuration API (internal/apis/config/controller/v1alpha1/
    defaults.go), which tools/cert-manager/main.go's flags must equal."""
    text = (go_module_dir("cert-manager", CERT_MANAGER_MODULE) / "internal" / "apis" / "config" / "controller"
            / "v1alpha1" / "defaults.go").read_text()
    found = dict(re.findall(r"defaultACMEHTTP01Solver(Resource\w+|RunAsNonRoot)\s*=\s*(\S+)", text))
    return {k: v.strip('"') for k, v in found.items()}


@dataclass
class Pebble(ProcessGroup):
    """Pebble on 127.0.0.1 with a serving certificate for 127.0.0.1 from a CA of this test, validating HTTP-01 on
    `http_port` of the address its DNS server (pebble-challtestsrv on loopback) gives every name: 127.0.0.1."""

    folder: Path
    workdir: Path
    http_port: int
    """Where Pebble sends each HTTP-01 request: Traefik's plain-HTTP entry point (testbed.traefik `port("web")`)."""
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    port: int = 0
    management_port: int = 0
    dns_port: int = 0

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
        self.port, self.management_port, self.dns_port = free_port(), free_port(), free_udp_and_tcp_port()
        env = {"PATH": os.environ.get("PATH", "")}
        # Only the DNS server and its management API (on loopback); its own challenge servers are off.
        self.spawn("pebble-challtestsrv", [str(self.folder / "pebble-challtestsrv"), "-dnsserver", f"127.0.0.1:{self.dns_port}",
                                           "-management", f"127.0.0.1:{free_port()}", "-defaultIPv4", "127.0.0.1",
                                           "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", ""],
                   env)
        self._wait_log("pebble-challtestsrv", "Answering A queries with 127.0.0.1", timeout)
        (w / "pebble.json").write_text(json.dumps({"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}", "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(w / "tls.crt"), "privateKey": str(w / "tls.key"),
            "httpPort": self.http_port, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": False,
            "retryAfter": {"authz": 1, "order": 1}, "keyAlgorithm": "ecdsa",
            "profiles": {"default": {"description": "default", "validityPeriod": 7776000}}}}))
        env.update({"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_CHAIN_LENGTH": "2"})
        self.spawn("pebble", [str(self.folder / "pebble"), "-config", str(w / "pebble.json"), "-strict",
                              "-dnsserver", f"127.0.0.1:{self.dns_port}"], env)
        self._wait_log("pebble", "Listening on", timeout)
        return self

    def _wait_log(self, name: str, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            if text in (self.workdir / f"{name}.log").read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not start in {timeout:.0f} s:\n{self.log_tail(name)}")

    def validations(self) -> list[str]:
        """The HTTP-01 URLs Pebble's VA fetched (its log line "Attempting to validate w/ HTTP: <url>")."""
        return re.findall(r"Attempting to validate w/ HTTP: (\S+)", (self.workdir / "pebble.log").read_text(errors="replace"))

    def issuing_root(self) -> bytes:
        """The root of the chains Pebble issues (its management API's /roots/0), PEM."""
        context = ssl.create_default_context(cadata=self.ca_bundle.decode())
        with urllib.request.urlopen(f"https://127.0.0.1:{self.management_port}/roots/0", context=context,
                                    timeout=10) as response:
            return response.read()


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


class Solvers(PodPorts):
    """cert-manager's solver pods answering as their acmesolver process would (kwok runs no container): on the
    pod's address in the tier's pod network (testbed.netns) and its --listen-port, cert-manager's challenge handler with the pod's own
    --domain/--token/--key (pkg/issuer/acme/http/solver/solver.go challengeHandler: the key for
    /.well-known/acme-challenge/<token> of that host, 404 for another host, path or token, 200 for / and
    /healthz), reached from Traefik only through the NetworkPolicies on the cluster (testbed.pod_network).
    `served_from`: (namespace, domain) -> the pod (as the API server stored it) whose key was served;
    `asked_by`: (namespace, domain) -> the User-Agents of the requests it was served to."""

    def __init__(self, plane: ControlPlane, network: PodNetwork) -> None:
        self.served_from: dict[tuple[str, str], dict] = {}
        self.asked_by: dict[tuple[str, str], set[str]] = {}
        super().__init__(plane, network, TRAEFIK, "acme.cert-manager.io/http01-solver=true", self._answer)

    def _answer(self, pod: dict, port: int, request) -> tuple[int, dict[str, str], bytes] | None:
        container = pod["spec"]["containers"][0]
        args = dict(a.removeprefix("--").split("=", 1) for a in container.get("args", []) if "=" in a)
        if str(port) != args.get("listen-port"):
            return None  # the process listens elsewhere: nothing answers on this port
        path = urlsplit(request.path).path
        if path in ("/", "/healthz"):
            return 200, {"Cache-Control": "no-cache, no-store, must-revalidate"}, b""
        host = (request.headers.get("Host") or "").rsplit(":", 1)[0]
        base, _, token = path.rpartition("/")
        if base != "/.well-known/acme-challenge" or host != args.get("domain") or token != args.get("token"):
            return 404, {"Content-Type": "text/plain; charset=utf-8"}, b"404 page not found\n"
        self.served_from[(pod["metadata"]["namespace"], host)] = pod
        self.asked_by.setdefault((pod["metadata"]["namespace"], host), set()).add(request.headers.get("User-Agent") or "")
        return 200, {"Cache-Control": "no-cache, no-store, must-revalidate"}, args["key"].encode()


@dataclass
class CertManager(ProcessGroup):
    """cert-manager's ACME controllers for one control plane; `stop()` ends exactly them."""

    folder: Path
    workdir: Path
    plane: ControlPlane
    proxy_url: str
    """HTTP_PROXY: Traefik's plain-HTTP entry point (testbed.traefik), so cert-manager's self-check of
    http://<domain>/.well-known/acme-challenge/<token> goes through the front door as it would in a cluster."""
    https_proxy_url: str
    """HTTPS_PROXY: a proxy that tunnels only the rendered public hosts to Traefik's HTTPS entry point and
    refuses every other host (tests/admission/conftest.py `outbound`), so an ACME server address left
    unpatched is refused and recorded instead of reached."""
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
