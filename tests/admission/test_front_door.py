"""The front door for real: Traefik (testbed.traefik) serving staging's and production's rendered Gateway,
HTTPRoutes, Middlewares and TraefikService splits, with the certificate cert-manager issued from Pebble
(test_certificates.py's `issuance`), in front of pods of the rendered API and web templates (signed images,
admitted by the rendered policies) whose ports the test serves in the tier's pod network
(testbed.pod_network: each answer names the pod that gave it).

What stands in for Argo Rollouts: the split's Services select the stable or the canary pods by the
`rollouts-pod-template-hash` label and the TraefikService's weights are set as Rollouts sets them (argo-rollouts
v1.9.1 rollout/trafficrouting/traefik/traefik.go SetWeight: the canary Service's weight is the step's, the
stable's the rest of 100; the delivery tier runs Rollouts doing it)."""
from __future__ import annotations

import base64
import collections
import http.client
import json
import re
import socket
import ssl
import threading
import time

import pytest

from test_exposure_and_secrets import contract_routes

from testbed.traefik import middleware_response_headers

from .conftest import image, pod_from
from .test_certificates import issuance  # noqa: F401 (the Certificates issued, or already Ready, for this module)

pytestmark = pytest.mark.admission

ENVIRONMENTS = ("staging", "production")
HASHES = {"stable": "stable0001", "canary": "canary0001"}


def rendered(kyverno, env: str, kind: str, name: str | None = None) -> list[dict]:
    return [d for d in kyverno.context["renders"][env] if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def hosts(kyverno, env: str) -> dict[str, str]:
    """The contract's host settings -> the rendered hostnames (ExposureProps.host: the web's route,
    ExposureProps.api_host: the API's)."""
    return {"host": rendered(kyverno, env, "HTTPRoute", "kubechat-web")[0]["spec"]["hostnames"][0],
            "api_host": rendered(kyverno, env, "HTTPRoute", "kubechat-api")[0]["spec"]["hostnames"][0]}


def answer(pod: dict, port: int, request) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"pod": pod["metadata"]["name"], "host": request.headers.get("Host"), "path": request.path})
    return 200, {"Content-Type": "application/json"}, body.encode()


@pytest.fixture(scope="module")
def site(kyverno, plane, signer, release_key, issuance, traefik, pod_network, pebble):
    """Both environments' public objects applied, one stable and one canary pod of each workload running."""
    from testbed.cert_manager import TRAEFIK
    from testbed.pod_network import PodPorts

    _, by_digest = image(signer, "front-door", key=release_key)
    docs, pods = [], []
    for env in ENVIRONMENTS:
        namespace = f"kubechat-{env}"
        docs += [d for d in kyverno.context["renders"][env]
                 if d["kind"] in ("Service", "Middleware", "TraefikService", "HTTPRoute")
                 and d["metadata"]["name"].startswith(("kubechat-api", "kubechat-web", "kubechat-security",
                                                       "kubechat-request", "kubechat-https"))]
        for workload in ("api", "web"):
            template = rendered(kyverno, env, "Deployment", f"kubechat-{workload}")[0]["spec"]["template"]
            for side, pod_hash in HASHES.items():
                pod = pod_from(template, f"front-door-{workload}-{side}", namespace, by_digest)
                pod["metadata"]["labels"]["rollouts-pod-template-hash"] = pod_hash
                pods.append(pod)
    plane.apply_docs(docs)
    for env in ENVIRONMENTS:
        for workload in ("api", "web"):
            for side, pod_hash in HASHES.items():  # as Rollouts points the split's Services at each side
                plane.kubectl("patch", "service", f"kubechat-{workload}-{side}", "-n", f"kubechat-{env}", "--type=merge",
                              "-p", json.dumps({"spec": {"selector": {"rollouts-pod-template-hash": pod_hash}}}))
    for pod in pods:
        created = plane.kubectl("create", "-f", "-", input=json.dumps(pod), check=False)
        assert created.returncode == 0, f"{pod['metadata']['name']} refused: {created.stderr}"
    backends = PodPorts(plane, pod_network, TRAEFIK, "rollouts-pod-template-hash", answer)
    try:
        wanted = {(pod["metadata"]["namespace"], pod["metadata"]["name"], port["containerPort"])
                  for pod in pods for port in pod["spec"]["containers"][0]["ports"]}

        def serving() -> None:
            with backends.lock:
                served = {(server_pod[0], server_pod[1], key[1]) for key, server_pod in
                          ((key, backends.pod_of(key)) for key in backends.servers)}
            assert served == wanted, (sorted(wanted - served), plane.kubectl("get", "pods", "-A", "-o", "wide").stdout)
        wait_for(serving, timeout=90)
        root = pebble.issuing_root().decode()
        for env in ENVIRONMENTS:  # Traefik has the routes, the certificate and the endpoints
            for setting, host in hosts(kyverno, env).items():
                wait_for(lambda: _ok(https(traefik, root, host, "/health/ready" if setting == "api_host" else "/")))
        yield {"backends": backends, "root": root}
    finally:
        backends.stop()
        for pod in pods:
            plane.kubectl("delete", "pod", pod["metadata"]["name"], "-n", pod["metadata"]["namespace"], "--wait=false",
                          check=False)


def _ok(result) -> None:
    assert result[0] == 200, result[:2]


class Door(http.client.HTTPSConnection):
    """A connection to `host` through Traefik's HTTPS entry point (SNI and Host: the host), its chain verified
    against Pebble's root; keeps the connection open between requests."""

    def __init__(self, traefik, root: str, host: str, **tls) -> None:
        context = ssl.create_default_context(cadata=root)
        for option, value in tls.items():
            context.set_ciphers(value) if option == "ciphers" else setattr(context, option, value)
        super().__init__(host, traefik.port("websecure"), timeout=10, context=context)
        self.address = (traefik.ip, traefik.port("websecure"))

    def connect(self) -> None:
        self.sock = self._context.wrap_socket(socket.create_connection(self.address, self.timeout), server_hostname=self.host)
        self.tls = {"certificate": self.sock.getpeercert(binary_form=True), "version": self.sock.version(),
                    "cipher": self.sock.cipher()[0]}

    def get(self, path: str) -> tuple[int, dict[str, str], dict | None]:
        self.request("GET", path, headers={"Host": self.host})
        response = self.getresponse()
        body = response.read()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        return response.status, dict(response.getheaders()), parsed


def https(traefik, root: str, host: str, path: str, **tls) -> tuple[int, dict[str, str], dict | None, dict]:
    """GET https://<host><path> on a new connection: (status, headers, JSON body, the connection's TLS)."""
    door = Door(traefik, root, host, **tls)
    try:
        return (*door.get(path), door.tls)
    finally:
        door.close()


def wait_for(check, timeout: float = 30):
    """Traefik applies a change a moment after the API server has it (its providers' throttle); until then a
    request may fail or be refused."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, OSError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_public_path_reaches_the_stable_pods_of_its_service(kyverno, traefik, site, env):
    names = hosts(kyverno, env)
    rows = contract_routes()
    assert len(rows) >= 6
    for setting, path, service in rows:
        def check():
            status, _, body, _ = https(traefik, site["root"], names[setting], path)
            assert status == 200 and body, (setting, path, status, body)
            return body
        body = wait_for(check)
        workload = service.removeprefix("kubechat-")
        assert body["pod"] == f"front-door-{workload}-stable", (names[setting], path, body)
        assert (body["host"], body["path"]) == (names[setting], path)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_tls_is_terminated_with_the_certificate_cert_manager_issued(kyverno, plane, traefik, site, env):
    gateway = rendered(kyverno, env, "Gateway")[0]
    listener = next(item for item in gateway["spec"]["listeners"] if item["protocol"] == "HTTPS")
    secret_name = listener["tls"]["certificateRefs"][0]["name"]
    secret = json.loads(plane.kubectl("get", "secret", secret_name, "-n", f"kubechat-{env}", "-o", "json").stdout)
    issued_pem = base64.b64decode(secret["data"]["tls.crt"]).decode()
    issued_leaf = ssl.PEM_cert_to_DER_cert(re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----",
                                                      issued_pem, re.S)[0])
    for host in hosts(kyverno, env).values():
        status, _, _, tls = https(traefik, site["root"], host, "/")
        assert tls["certificate"] == issued_leaf, f"{host}: not the Secret {secret_name}'s certificate"
        assert tls["version"] in ("TLSv1.2", "TLSv1.3")
    # The TLSOption's floor and suites (the chart's `default`, the platform's tlsOptions): TLS 1.2 with a CBC
    # suite outside the list is refused; TLS 1.2 with a listed one is served.
    host = hosts(kyverno, env)["host"]
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):  # the server's alert: no suite in common
        https(traefik, site["root"], host, "/", maximum_version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-SHA")
    status, _, _, tls = https(traefik, site["root"], host, "/", maximum_version=ssl.TLSVersion.TLSv1_2)
    assert status == 200 and tls["cipher"] in openssl_names(), tls


def openssl_names() -> set[str]:
    """The platform's TLS 1.2 suites (Go's names) as OpenSSL names them."""
    from kubechat_deploy.platform.prerequisites import traefik_values
    names = set()
    for suite in traefik_values()["tlsOptions"]["default"]["cipherSuites"]:
        kx, _, cipher = suite.removeprefix("TLS_").partition("_WITH_")
        cipher = cipher.replace("AES_128_GCM_SHA256", "AES128-GCM-SHA256").replace("AES_256_GCM_SHA384", "AES256-GCM-SHA384") \
            .replace("CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305")
        names.add(f"{kx.replace('_', '-')}-{cipher}")
    return names


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_responses_carry_exactly_the_rendered_headers(kyverno, traefik, site, env):
    names = hosts(kyverno, env)
    for route, host, path in (("kubechat-web", names["host"], "/"), ("kubechat-api", names["api_host"], "/api/clusters")):
        filters = [f["extensionRef"]["name"] for f in rendered(kyverno, env, "HTTPRoute", route)[0]["spec"]["rules"][-1]["filters"]]
        middleware = next(m["spec"]["headers"] for m in rendered(kyverno, env, "Middleware") if m["metadata"]["name"] in filters
                          and "headers" in m["spec"])
        expected = middleware_response_headers(middleware, tls=True)
        status, headers, _, _ = https(traefik, site["root"], host, path)
        assert status == 200
        sent = {name: value for name, value in headers.items() if name in expected}
        assert sent == {k: v for k, v in expected.items() if v}, f"{host}{path}: {headers}"
        assert all(name not in headers for name, v in expected.items() if not v), headers
        others = {"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Permissions-Policy",
                  "Referrer-Policy", "Strict-Transport-Security"} - set(expected)
        assert not others & set(headers), f"{host}{path}: headers the Middleware does not set: {others & set(headers)}"


def count_sides(backends, host: str, since: int) -> collections.Counter:
    return collections.Counter(r.pod.rsplit("-", 1)[1] for r in backends.served()[since:] if r.host == host)


def web_split(kyverno, env: str) -> tuple[dict, dict]:
    """The web Rollout's canary strategy and the TraefikService it routes through."""
    canary = rendered(kyverno, env, "Rollout", "kubechat-web")[0]["spec"]["strategy"]["canary"]
    return canary, rendered(kyverno, env, "TraefikService", canary["trafficRouting"]["traefik"]["weightedTraefikServiceName"])[0]


def set_canary_weight(plane, kyverno, env: str, weight: int) -> None:
    """The web split's weights as Argo Rollouts writes them for a step (module docstring)."""
    canary, split = web_split(kyverno, env)
    services = [{**s, "weight": weight if s["name"] == canary["canaryService"] else 100 - weight}
                for s in split["spec"]["weighted"]["services"]]
    plane.kubectl("patch", "traefikservice", split["metadata"]["name"], "-n", f"kubechat-{env}", "--type=merge",
                  "-p", json.dumps({"spec": {"weighted": {"services": services}}}))


def share_reaching_canary(traefik, site, host: str, requests: int) -> collections.Counter:
    backends = site["backends"]
    since = len(backends.served())
    for _ in range(requests):
        https(traefik, site["root"], host, "/")
    return count_sides(backends, host, since)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_backends_see_the_rendered_canary_weights(kyverno, plane, traefik, site, env):
    """Each setWeight of the web Rollout's rendered steps, written into the web's TraefikService: of 100
    requests to the web host, the canary pod answers the weight's share (Traefik's weighted round robin)."""
    host = hosts(kyverno, env)["host"]
    canary, split = web_split(kyverno, env)
    weights = [step["setWeight"] for step in canary["steps"] if "setWeight" in step]
    assert weights and weights[-1] == 100
    try:
        for weight in weights:
            set_canary_weight(plane, kyverno, env, weight)

            def check():
                sides = share_reaching_canary(traefik, site, host, 100)
                assert sum(sides.values()) == 100 and abs(sides["canary"] - weight) <= 2, (weight, sides)
            wait_for(check, timeout=60)
    finally:
        plane.apply_docs([split])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_api_rate_limit_answers_429_beyond_its_burst(kyverno, traefik, site, env):
    """Requests on open connections, as fast as they go: the burst is served, then beyond the average rate 429."""
    limit = rendered(kyverno, env, "Middleware", "kubechat-api-rate-limit")[0]["spec"]["rateLimit"]
    host = hosts(kyverno, env)["api_host"]
    time.sleep(limit["burst"] / limit["average"] + 1)  # the bucket full again after the other tests' requests
    statuses: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def client() -> None:
        door = Door(traefik, site["root"], host)
        door.connect()  # the handshake before the clock starts
        ready.wait()
        try:
            for _ in range(sent // 4):
                status = door.get("/api/clusters")[0]
                with lock:
                    statuses[status] += 1
        finally:
            door.close()

    sent, ready = 2 * limit["burst"] + 2 * limit["average"], threading.Event()
    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    started = time.monotonic()
    ready.set()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    allowed = limit["burst"] + limit["average"] * elapsed
    assert sum(statuses.values()) == sent and set(statuses) <= {200, 429}, statuses
    assert sent > allowed + 10, f"{sent} requests in {elapsed:.1f} s: too slow to go beyond the limit here"
    assert limit["burst"] <= statuses[200] <= allowed + 1 and statuses[429] == sent - statuses[200], (statuses, elapsed)


def _both(sides: collections.Counter) -> None:
    assert sides["canary"] and sides["stable"], sides


def test_traefik_counts_the_web_canarys_requests_under_the_name_its_analysis_selects(kyverno, plane, traefik, site):
    """The series the rendered web canary analysis selects (its query's `service` matcher, with the Rollout's
    namespace argument), in Traefik's own /metrics once both sides of the split have had requests."""
    for env in ENVIRONMENTS:
        set_canary_weight(plane, kyverno, env, 50)
        try:
            wait_for(lambda: _both(share_reaching_canary(traefik, site, hosts(kyverno, env)["host"], 10)))
        finally:
            plane.apply_docs([web_split(kyverno, env)[1]])
    page = traefik.metrics()
    for env in ENVIRONMENTS:
        template = rendered(kyverno, env, "AnalysisTemplate", "kubechat-web-canary")[0]
        queries = [m["provider"]["prometheus"]["query"] for m in template["spec"]["metrics"] if "prometheus" in m["provider"]]
        selected = {name.replace("{{args.namespace}}", f"kubechat-{env}")
                    for query in queries for name in re.findall(r'traefik_service_requests_total\{service="([^"]+)"', query)}
        assert selected == {f"kubechat-{env}-kubechat-web-canary-http@kubernetescrd"}, selected
        for service in selected | {next(iter(selected)).replace("-canary-", "-stable-")}:
            assert re.search(rf'^traefik_service_requests_total\{{[^}}]*service="{re.escape(service)}"[^}}]*\}} [1-9]',
                             page, re.M), f"{service} not counted:\n{page[:2000]}"
