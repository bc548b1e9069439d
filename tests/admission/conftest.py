"""The admission tier: Kyverno's real admission controller (tests/testbed/kyverno.py), registered with the
tier's API server by a loopback URL, enforcing the rendered ClusterPolicies next to the rendered
ValidatingAdmissionPolicies; cert-manager's ACME controllers and Pebble (tests/testbed/cert_manager.py);
a loopback OCI registry serving as ghcr.io with images signed by cosign (tests/testbed/registry.py).
Started once for tests/admission."""
from __future__ import annotations

import base64
import copy
import datetime
import json
import time

import pytest

from kubechat_deploy.versions import TRAEFIK_NAMESPACE, operator
from testbed import kyverno as admission, cert_manager as certificates, registry as supply_chain, traefik as front_door
from testbed.controlplane import POD_CIDR, ControlPlane
from testbed.netns import PodNetwork
from kubechat_tools.manifests import load_dir
from testbed.registry import vulnerability_predicate
from kubechat_tools.paths import DIST

ENVIRONMENTS = ("dev", "staging", "production")
GUARD_KINDS = ("Namespace", "ServiceAccount", "LimitRange", "ResourceQuota", "NetworkPolicy",
               "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ClusterPolicy")
"""What decides whether a pod is admitted in an environment's namespace, as rendered."""
TIMINGS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter):
    if "ready" not in TIMINGS:
        return
    built = {**admission.BUILD_TIMES, **certificates.BUILD_TIMES, **supply_chain.BUILD_TIMES}
    built_text = ", ".join(f"{m} {s:.0f} s" for m, s in built.items()) or "cached"
    used = {"kyverno": admission.kyverno_version(), "cert-manager": certificates.versions()["cert-manager"]}
    pins = {name: operator(name).version for name in used}
    differences = [f"{name} {used[name]} is not the platform's pin {pins[name]}" for name in used if used[name] != pins[name]]
    terminalreporter.write_line(
        f"admission tier: Kyverno {used['kyverno']} admission and reports controllers, with chart "
        f"{admission.module_chart()['version']}'s ConfigMap and feature defaults; cert-manager {used['cert-manager']} ACME controllers run "
        f"by tools/cert-manager/main.go (cert-manager's own main is not served); "
        + ("; ".join(differences) if differences else "both are the platform's pins")
        + f"; Pebble {certificates.versions()['pebble']}; distribution {supply_chain.registry_version()}; cosign and "
        f"crane at Kyverno's versions; binaries {built_text}; Kyverno serving with every policy ready in {TIMINGS['ready']:.0f} s")
    terminalreporter.write_line(
        f"admission tier front door: Traefik {front_door.version()} (the platform pins v3.7.13, which cannot be "
        f"built from the module proxy: README), in a network namespace of the tier's own where the pods' addresses "
        f"are local; stand-ins: the acmesolver's process and the workloads' processes (the test serves the pods' "
        f"ports), the pod network's NetworkPolicies (the project's NetworkPolicy model: no CNI), Argo Rollouts "
        f"setting the split's selectors and weights; the images are one-layer "
        f"test images signed with key pairs of the test (keyless signing needs the public Sigstore services); a "
        f"scan older than the limit is admitted and reported (docs/security.md: the scan's age is audited, not "
        f"enforced), where issue #15 lists it among the refusals")


def renders() -> dict[str, list[dict]]:
    return {env: load_dir(DIST / "rendered" / env) for env in ENVIRONMENTS}


@pytest.fixture(scope="package")
def plane():
    plane = ControlPlane.start(distinct_pod_addresses=True)  # Traefik reaches the pods by address
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="package")
def registry(tmp_path_factory):
    registry = supply_chain.Registry(binary=supply_chain.binaries() / "registry", workdir=tmp_path_factory.mktemp("registry"))
    try:
        registry.start()
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="package")
def outbound(kyverno, traefik):
    """HTTPS_PROXY for cert-manager: tunnels CONNECT <public host>:443 to Traefik's HTTPS entry point (where the
    rendered hosts lead in a cluster: cert-manager's self-check follows the rendered redirect there when it
    asks before Traefik has the challenge's route) and refuses (and records) every other host, so nothing it
    is asked for leaves the machine (Pebble and the API server are on loopback, which Go never proxies)."""
    hosts = {host for docs in kyverno.context["renders"].values() for d in docs if d["kind"] == "HTTPRoute"
             for host in d["spec"].get("hostnames", [])}
    proxy = supply_chain.ConnectProxy({host: traefik.port("websecure") for host in sorted(hosts)})
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="package")
def signer(registry, tmp_path_factory):
    return supply_chain.Signer(folder=admission.binaries(), workdir=tmp_path_factory.mktemp("signer"), registry=registry)


@pytest.fixture(scope="package")
def release_key(signer):
    """The release pipeline's key pair: (private key path, PEM public key)."""
    return signer.key_pair("release")


@pytest.fixture(scope="package")
def kyverno(plane, registry, release_key, tmp_path_factory):
    """Kyverno enforcing each environment's rendered policies (verify-images with the release key pair as
    its signer), with the environment's namespace and the rest of what admits its pods."""
    started = time.monotonic()
    controller = admission.Kyverno(folder=admission.binaries(), workdir=tmp_path_factory.mktemp("kyverno"),
                                   plane=plane, env=registry.client_env())
    try:
        controller.start()
        docs = renders()
        guards = {env: [admission.with_key(d, release_key[1]) if d["kind"] == "ClusterPolicy"
                        and d["metadata"]["name"].endswith("-verify-images") else d
                        for d in docs[env] if d["kind"] in GUARD_KINDS] for env in ENVIRONMENTS}
        plane.apply_docs([d for env in ENVIRONMENTS for d in guards[env] if d["kind"] == "Namespace"]
                         + [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TRAEFIK_NAMESPACE}}])
        plane.apply_docs([d for env in ENVIRONMENTS for d in guards[env] if d["kind"] != "Namespace"])
        names = [d["metadata"]["name"] for env in ENVIRONMENTS for d in guards[env] if d["kind"] == "ClusterPolicy"]
        controller.wait_ready(names)
        TIMINGS["ready"] = time.monotonic() - started
        controller.context = {"renders": docs, "guards": guards}
        yield controller
    finally:
        controller.stop()


REPOSITORY = "ghcr.io/kubechat/kubechat-api"
RELEASE_TAG = "1.0.0"


def scan_time(days_ago: float) -> str:
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def image(signer, case: str, *, key=None, scan_age_days: float = 0.0, findings: tuple[str, ...] = ("HIGH", "MEDIUM"),
          attest: bool = True) -> tuple[str, str]:
    """An image of its own for `case`, signed with `key` (none: unsigned) and, with `attest`, given a
    vulnerability attestation by the same key for a scan finished `scan_age_days` ago reporting `findings`.
    Returns (repository:tag, repository@digest)."""
    tag = f"{RELEASE_TAG}-{case}"
    by_digest = signer.push(REPOSITORY, tag, f"kubechat-api {case}")
    if key:
        signer.sign(by_digest, key[0])
        if attest:
            signer.attest_scan(by_digest, key[0], vulnerability_predicate(scan_time(scan_age_days), list(findings)))
    return f"{REPOSITORY}:{tag}", by_digest


def pod_from(template: dict, name: str, namespace: str, image: str) -> dict:
    """A pod of a rendered workload's template, with every container's image replaced."""
    spec = json.loads(json.dumps(template["spec"]))
    for container in spec["containers"] + spec.get("initContainers", []):
        container["image"] = image
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(template["metadata"].get("labels", {}))},
            "spec": spec}


@pytest.fixture(scope="package")
def pod_network():
    """The pods' addresses made local in a network namespace of the tier's own (testbed.netns)."""
    network = PodNetwork(POD_CIDR)
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture(scope="package")
def traefik(plane, kyverno, pod_network, tmp_path_factory):
    """Traefik (testbed.traefik) in the pod network, watching the tier's control plane, with the Gateway API's
    and Traefik's CRDs, the chart's GatewayClass and TLSOption; after `kyverno` so the environments'
    namespaces and NetworkPolicies exist."""
    proxy = front_door.Traefik(folder=front_door.binaries(), workdir=tmp_path_factory.mktemp("traefik"), plane=plane,
                               network=pod_network)
    try:
        proxy.start()
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="package")
def solvers(plane, pod_network, traefik):
    """The solver pods' processes (testbed.cert_manager.Solvers), behind Traefik."""
    ports = certificates.Solvers(plane, pod_network)
    try:
        yield ports
    finally:
        ports.stop()


def traefik_http(traefik) -> str:
    """HTTP_PROXY for cert-manager: Traefik's plain-HTTP entry point."""
    return f"http://{traefik.ip}:{traefik.port('web')}"


@pytest.fixture(scope="package")
def pebble(traefik, tmp_path_factory):
    """Pebble validating HTTP-01 through Traefik's plain-HTTP entry point (testbed.cert_manager.Pebble)."""
    server = certificates.Pebble(folder=certificates.binaries(), workdir=tmp_path_factory.mktemp("pebble"),
                                 http_port=traefik.port("web"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def issuers_for(kyverno, env: str, pebble) -> list[dict]:
    """The environment's rendered ClusterIssuers with the ACME server pointed at Pebble."""
    issuers = [copy.deepcopy(d) for d in kyverno.context["renders"][env] if d["kind"] == "ClusterIssuer"]
    for issuer in issuers:
        issuer["spec"]["acme"]["server"] = pebble.directory
        issuer["spec"]["acme"]["caBundle"] = base64.b64encode(pebble.ca_bundle).decode()
    return issuers


def front_door_for(kyverno, env: str) -> list[dict]:
    """The environment's rendered Gateway and its HTTP-to-HTTPS redirect: what the solver's HTTPRoute attaches
    to, and what it must outrank."""
    return [copy.deepcopy(d) for d in kyverno.context["renders"][env]
            if d["kind"] == "Gateway" or (d["kind"] == "HTTPRoute" and d["metadata"]["name"] == "kubechat-https-redirect")]


def rendered_certificate(kyverno, env: str) -> dict:
    return copy.deepcopy(next(d for d in kyverno.context["renders"][env] if d["kind"] == "Certificate"))
