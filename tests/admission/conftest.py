"""The admission tier: Kyverno's real admission controller (tests/testbed/kyverno.py), registered with the
tier's API server by a loopback URL, enforcing the rendered ClusterPolicies next to the rendered
ValidatingAdmissionPolicies; cert-manager's ACME controllers and Pebble (tests/testbed/cert_manager.py);
a loopback OCI registry serving as ghcr.io with images signed by cosign (tests/testbed/registry.py).
Started once for tests/admission."""
from __future__ import annotations

import base64
import copy
import json
import time

import pytest

from kubechat_deploy.versions import TRAEFIK_NAMESPACE, operator
from testbed import kyverno as admission, cert_manager as certificates, registry as supply_chain
from testbed.controlplane import ControlPlane
from kubechat_tools.manifests import load_dir
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
        "admission tier stand-ins: Traefik and the acmesolver's process answer cert-manager's HTTP-01 "
        "self-check (from the solver pod's arguments, through the rendered NetworkPolicies as the project's "
        "NetworkPolicy model evaluates them: no CNI); Pebble skips its own "
        "HTTP-01 request; the images are one-layer test images signed with key pairs of the test (keyless "
        "signing needs the public Sigstore services); a scan older than the limit is admitted and reported "
        "(docs/security.md: the scan's age is audited, not enforced), where issue #15 lists it among the refusals")


def renders() -> dict[str, list[dict]]:
    return {env: load_dir(DIST / "rendered" / env) for env in ENVIRONMENTS}


@pytest.fixture(scope="package")
def plane():
    plane = ControlPlane.start()
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
def outbound():
    """HTTPS_PROXY for cert-manager: refuses (and records) every host, so nothing it is asked for leaves the
    machine (Pebble and the API server are on loopback, which Go never proxies)."""
    proxy = supply_chain.ConnectProxy({})
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


def pod_from(template: dict, name: str, namespace: str, image: str) -> dict:
    """A pod of a rendered workload's template, with every container's image replaced."""
    spec = json.loads(json.dumps(template["spec"]))
    for container in spec["containers"] + spec.get("initContainers", []):
        container["image"] = image
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(template["metadata"].get("labels", {}))},
            "spec": spec}


@pytest.fixture(scope="package")
def pebble(tmp_path_factory):
    server = certificates.Pebble(folder=certificates.binaries(), workdir=tmp_path_factory.mktemp("pebble"))
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
