"""The rendered Certificate issued end to end: cert-manager's ACME controllers at the platform's pin, the
staging and production ClusterIssuers as rendered except for the ACME server (Pebble on loopback, trusted
through the issuer's caBundle), the environment's ValidatingAdmissionPolicies and Kyverno policies
enforcing, its LimitRange, ResourceQuota and NetworkPolicies in place (tests/testbed/cert_manager.py says
what stands in for the solver's process and how Pebble validates through Traefik)."""
from __future__ import annotations

import base64
import copy
import http.client
import json
import re
import subprocess
import time

import pytest
import yaml

from kubechat_deploy.versions import ACME_HTTP01_SOLVER_IMAGE
from testbed import cert_manager as certificates
from kubechat_tools.paths import ROOT

from .conftest import front_door_for, issuers_for, rendered_certificate, traefik_http

pytestmark = pytest.mark.admission

ISSUING_ENVIRONMENTS = ("staging", "production")


def plain_http(traefik, host: str, path: str) -> tuple[int, dict[str, str]]:
    """GET http://<host><path> sent to Traefik's plain-HTTP entry point; (status, headers), redirects not followed."""
    connection = http.client.HTTPConnection(traefik.ip, traefik.port("web"), timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, dict(response.getheaders())
    finally:
        connection.close()


def wait_ready(plane, namespace: str, name: str, timeout: float = 120) -> dict:
    """Until the Certificate is Ready and its issuance recorded: cert-manager's readiness controller can mark it
    Ready from the new Secret a moment before the issuing controller writes status.revision (seen on a slow,
    cold machine), and the tests read both."""
    deadline = time.monotonic() + timeout
    certificate = {}
    while time.monotonic() < deadline:
        certificate = json.loads(plane.kubectl("get", "certificate", name, "-n", namespace, "-o", "json").stdout)
        status = certificate.get("status", {})
        if any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])) and \
                status.get("revision"):
            return certificate
        time.sleep(1)
    challenges = plane.kubectl("get", "challenges", "-n", namespace, "-o", "yaml", check=False).stdout
    raise AssertionError(f"Certificate {namespace}/{name} not Ready in {timeout:.0f} s: "
                         f"{certificate.get('status')}\nchallenges:\n{challenges[-3000:]}")


def certificates_to_issue(kyverno, env: str) -> list[dict]:
    """The environment's rendered Certificate (its issuerRef: the Let's Encrypt production issuer), and the
    same Certificate through the rendered Let's Encrypt staging issuer, as docs/platform.md tells an operator
    to do for a new host (another name and Secret, so both coexist)."""
    rendered = rendered_certificate(kyverno, env)
    staging_issuer = next(d["metadata"]["name"] for d in kyverno.context["renders"][env]
                          if d["kind"] == "ClusterIssuer" and d["metadata"]["name"] != rendered["spec"]["issuerRef"]["name"])
    through_staging = copy.deepcopy(rendered)
    through_staging["metadata"]["name"] += "-le-staging"
    through_staging["spec"]["secretName"] += "-le-staging"
    through_staging["spec"]["issuerRef"]["name"] = staging_issuer
    return [rendered, through_staging]


@pytest.fixture(scope="module")
def issuance(kyverno, plane, pebble, outbound, traefik, solvers, tmp_path_factory):
    """cert-manager with the chart's solver image (the pinned one) issuing each environment's Certificates,
    its HTTP-01 self-check through Traefik."""
    plane.install_crds(certificates.cert_manager_crds() + certificates.gateway_api_crds())
    plane.apply_docs([i for env in ISSUING_ENVIRONMENTS for i in issuers_for(kyverno, env, pebble)]
                     + [d for env in ISSUING_ENVIRONMENTS for d in front_door_for(kyverno, env)])
    controller = certificates.CertManager(folder=certificates.binaries(), workdir=tmp_path_factory.mktemp("cert-manager"),
                                          plane=plane, proxy_url=traefik_http(traefik), https_proxy_url=outbound.url,
                                          solver_image=certificates.chart_solver_image())
    try:
        assert controller.enable_gateway_api, "the platform's cert-manager has no Gateway API integration"
        controller.start()
        wanted = [c for env in ISSUING_ENVIRONMENTS for c in certificates_to_issue(kyverno, env)]
        plane.apply_docs(wanted)
        try:
            issued = {(c["metadata"]["namespace"], c["metadata"]["name"]):
                      wait_ready(plane, c["metadata"]["namespace"], c["metadata"]["name"]) for c in wanted}
        except AssertionError as error:
            raise AssertionError(f"{error}\nsolver requests through Traefik: {solvers.served()}\n"
                                 f"Traefik's log:\n{traefik.log_tail('traefik', 30)}") from None
        controller.check_running()
        yield {"issued": issued, "solvers": solvers, "controller": controller}
    finally:
        controller.stop()


def test_the_controller_runs_cert_managers_solver_defaults():
    """tools/cert-manager/main.go passes cert-manager's own solver defaults (internal/apis/config/controller/
    v1alpha1/defaults.go of the module built), and the chart's solver image is the pinned one."""
    upstream = certificates.upstream_defaults()
    main = (ROOT / "tools" / "cert-manager" / "main.go").read_text()
    flags = dict(re.findall(r'flag\.(?:String|Bool)\("acme-http01-solver-([a-z-]+)", "?([^",]*)"?,', main))
    assert flags["resource-request-cpu"] == upstream["ResourceRequestCPU"]
    assert flags["resource-request-memory"] == upstream["ResourceRequestMemory"]
    assert flags["resource-limits-cpu"] == upstream["ResourceLimitsCPU"]
    assert flags["resource-limits-memory"] == upstream["ResourceLimitsMemory"]
    assert flags["run-as-non-root"] == upstream["RunAsNonRoot"]
    assert certificates.chart_solver_image() == ACME_HTTP01_SOLVER_IMAGE
    assert certificates.versions()["cert-manager"] == ACME_HTTP01_SOLVER_IMAGE.rsplit(":", 1)[1]


CURVES = {256: "prime256v1", 384: "secp384r1", 521: "secp521r1"}


def certificate_cases():
    return [(env, issuer) for env in ISSUING_ENVIRONMENTS for issuer in ("letsencrypt-production", "letsencrypt-staging")]


def public_key(kind: str, pem: bytes) -> bytes:
    command = ["openssl", "x509", "-noout", "-pubkey"] if kind == "certificate" else ["openssl", "pkey", "-pubout"]
    return subprocess.run(command, input=pem, capture_output=True, check=True).stdout


@pytest.mark.parametrize("env, issuer", certificate_cases())
def test_the_rendered_certificate_is_issued(kyverno, plane, issuance, outbound, env, issuer):
    certificate = next(c for c in certificates_to_issue(kyverno, env) if c["spec"]["issuerRef"]["name"].endswith(issuer))
    namespace, spec = certificate["metadata"]["namespace"], certificate["spec"]
    issued = issuance["issued"][(namespace, certificate["metadata"]["name"])]
    ready = next(c for c in issued["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] == "Ready", issued["status"]
    assert issued["status"]["revision"] == 1, "issued once, at the first request"
    secret = json.loads(plane.kubectl("get", "secret", spec["secretName"], "-n", namespace, "-o", "json").stdout)
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["annotations"]["cert-manager.io/issuer-name"] == spec["issuerRef"]["name"]
    pem = base64.b64decode(secret["data"]["tls.crt"])
    key = base64.b64decode(secret["data"]["tls.key"])
    text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem, capture_output=True, check=True).stdout.decode()
    assert sorted(re.findall(r"DNS:([^,\s]+)", text)) == sorted(spec["dnsNames"])
    assert re.search(r"Issuer: CN ?= ?Pebble Intermediate CA", text), text[:800]
    assert spec["privateKey"]["algorithm"] == "ECDSA"
    assert "id-ecPublicKey" in text and CURVES[spec["privateKey"]["size"]] in text, "the rendered private key"
    assert public_key("certificate", pem) == public_key("key", key), "tls.key is the certificate's key"
    assert outbound.refused == [], f"cert-manager asked for hosts off the machine: {outbound.refused}"


@pytest.mark.parametrize("env", ISSUING_ENVIRONMENTS)
def test_the_solver_pods_were_admitted_and_reachable(kyverno, issuance, traefik, env):
    """The key was served by a Running solver pod cert-manager created in the environment's namespace, with
    the pinned image, reached by cert-manager's self-check through Traefik (the HTTPRoute cert-manager created
    on the rendered Gateway's HTTP listener, which outranks the rendered redirect of every other path) and the
    rendered NetworkPolicies from Traefik's namespace."""
    rendered = rendered_certificate(kyverno, env)
    namespace = rendered["metadata"]["namespace"]
    for domain in rendered["spec"]["dnsNames"]:
        pod = issuance["solvers"].served_from.get((namespace, domain))
        assert pod, f"no solver pod answered for {domain}: {issuance['solvers'].served()}"
        assert [c["image"] for c in pod["spec"]["containers"]] == [ACME_HTTP01_SOLVER_IMAGE]
        assert pod["metadata"]["labels"]["acme.cert-manager.io/http01-solver"] == "true"
        # Any other path of the host is the redirect's: Traefik answers 301 to HTTPS.
        status, headers = plain_http(traefik, domain, "/api/clusters")
        assert (status, headers.get("Location")) == (301, f"https://{domain}/api/clusters"), (status, headers)


@pytest.mark.parametrize("env", ISSUING_ENVIRONMENTS)
def test_pebble_validated_each_domain_through_traefik(kyverno, issuance, pebble, traefik, env):
    """The ACME server's own HTTP-01 validation (no PEBBLE_VA_ALWAYS_VALID): Pebble resolved each rendered domain
    and fetched its challenge from Traefik's plain-HTTP entry point (va/va.go fetchHTTP), and the solver pod
    served the key to Pebble's validation agent (User-Agent "LetsEncrypt-Pebble-VA", va/va.go userAgentBase)."""
    validated = pebble.validations()
    for domain in rendered_certificate(kyverno, env)["spec"]["dnsNames"]:
        urls = [u for u in validated if u.startswith(f"http://{domain}:{traefik.port('web')}/.well-known/acme-challenge/")]
        assert urls, f"Pebble never validated {domain} through Traefik: {validated}"
        agents = issuance["solvers"].asked_by.get((rendered_certificate(kyverno, env)["metadata"]["namespace"], domain), set())
        assert any(a.startswith("LetsEncrypt-Pebble-VA") for a in agents), f"{domain}: key served only to {agents}"


def test_the_policies_refuse_the_solver_pod_altered(kyverno, plane, issuance):
    """The policies that admitted cert-manager's solver pod are live: the same pod with another image is
    refused (by the rendered image-references ValidatingAdmissionPolicy, which the API server evaluates before
    Kyverno's webhook), running as root by the namespace's Pod Security "restricted" label."""
    solver = issuance["solvers"].served_from[("kubechat-production", rendered_certificate(kyverno, "production")
                                                ["spec"]["dnsNames"][0])]

    def variant(name: str, change) -> dict:
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": "kubechat-production", "labels": solver["metadata"]["labels"]},
               "spec": copy.deepcopy(solver["spec"])}
        pod["spec"].pop("nodeName", None)
        change(pod["spec"])
        return pod

    other_version = variant("solver-other-version", lambda s: s["containers"][0].update(
        image="quay.io/jetstack/cert-manager-acmesolver:v1.20.2"))
    as_root = variant("solver-as-root", lambda s: s["securityContext"].update(runAsNonRoot=False, runAsUser=0))
    same = variant("solver-same", lambda s: None)
    same["metadata"]["labels"] = {"kubechat-test": "unaltered-solver"}  # not selected by any solver Service
    assert plane.kubectl("create", "-f", "-", input=yaml.safe_dump(same), check=False).returncode == 0, \
        "the unaltered solver pod must still be admitted"
    plane.kubectl("delete", "pod", "solver-same", "-n", "kubechat-production", "--wait=false")
    refused = plane.kubectl("create", "-f", "-", input=yaml.safe_dump(other_version), check=False)
    assert refused.returncode != 0 and "kubechat-production-image-references" in refused.stderr, refused.stderr
    assert "cert-manager-acmesolver:v1.20.2 is not from an allowed registry" in refused.stderr
    refused = plane.kubectl("create", "-f", "-", input=yaml.safe_dump(as_root), check=False)
    assert refused.returncode != 0 and 'violates PodSecurity "restricted:' in refused.stderr, refused.stderr
