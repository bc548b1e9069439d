"""Exposure (the Gateway API through Traefik, cert-manager TLS in staging and production) and secret handling per environment."""
import re

import pytest
import yaml

from conftest import ROOT, find
from testbed.cert_manager import best_rule

PUBLIC = {"staging": "staging.kubechat.example.com", "production": "kubechat.example.com"}
API = {env: "api." + host for env, host in PUBLIC.items()}
NAMESPACES = {"dev": "kubechat-dev", "staging": "kubechat-staging", "production": "kubechat-production"}


def traefik_values() -> dict:
    """The platform's Traefik chart values (dist/platform/prerequisites)."""
    app = yaml.safe_load((ROOT / "dist/platform/prerequisites/application-platform-traefik.yaml").read_text())
    return app["spec"]["source"]["helm"]["valuesObject"]


def middlewares(rule: dict) -> list[str]:
    return [f["extensionRef"]["name"] for f in rule.get("filters", []) if f["type"] == "ExtensionRef"]


@pytest.mark.parametrize("env", PUBLIC)
def test_the_gateway_serves_both_hosts_over_tls_and_redirects_http(rendered, env):
    docs = rendered[env]
    gateway = find(docs, "Gateway", "kubechat")["spec"]
    values = traefik_values()
    assert gateway["gatewayClassName"] == values["gatewayClass"]["name"]
    listeners = {listener["name"]: listener for listener in gateway["listeners"]}
    # Traefik attaches a listener to the entry point of the same port (traefik v3.7.13
    # pkg/provider/kubernetes/gateway/kubernetes.go entryPointName): the chart's web and websecure ports.
    assert (listeners["http"]["port"], listeners["http"]["protocol"]) == (values["ports"]["web"]["port"], "HTTP")
    assert (listeners["https"]["port"], listeners["https"]["protocol"]) == (values["ports"]["websecure"]["port"], "HTTPS")
    for listener in listeners.values():
        assert listener["allowedRoutes"] == {"namespaces": {"from": "Same"}}
    tls = listeners["https"]["tls"]
    assert tls["mode"] == "Terminate" and tls["certificateRefs"] == [{"group": "", "kind": "Secret", "name": "kubechat-tls"}]
    certificate = find(docs, "Certificate", "kubechat-tls")["spec"]
    assert certificate["secretName"] == "kubechat-tls" and certificate["dnsNames"] == [PUBLIC[env], API[env]]
    routes = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "HTTPRoute"}
    assert set(routes) == {"kubechat-web", "kubechat-api", "kubechat-https-redirect"}
    for name, host in (("kubechat-web", PUBLIC[env]), ("kubechat-api", API[env])):
        assert routes[name]["hostnames"] == [host]
        assert [(r["name"], r["sectionName"]) for r in routes[name]["parentRefs"]] == [("kubechat", "https")]
    redirect = routes["kubechat-https-redirect"]
    assert redirect["hostnames"] == [PUBLIC[env], API[env]]
    assert [(r["name"], r["sectionName"]) for r in redirect["parentRefs"]] == [("kubechat", "http")]
    assert redirect["rules"] == [{"filters": [{"type": "RequestRedirect",
                                               "requestRedirect": {"scheme": "https", "statusCode": 301}}]}]


@pytest.mark.parametrize("env", PUBLIC)
def test_every_public_response_carries_the_security_headers_and_the_api_is_rate_limited(rendered, env):
    docs = rendered[env]
    kinds = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "Middleware"}
    headers = kinds["kubechat-security-headers"]["headers"]
    assert "frame-ancestors 'none'" in headers["contentSecurityPolicy"]
    assert f"connect-src 'self' https://{API[env]};" in headers["contentSecurityPolicy"]
    # The web host: the same headers without the policy, which the web app sends with its nonce (the ConfigMap's,
    # with the environment's API host; tests/test_web_csp.py loads a page under it in Chromium).
    web = kinds["kubechat-web-security-headers"]["headers"]
    assert web == {k: v for k, v in headers.items() if k != "contentSecurityPolicy"}
    policy = find(docs, "ConfigMap", "kubechat-web-content-security-policy")["data"]["CONTENT_SECURITY_POLICY"]
    assert f"connect-src 'self' https://{API[env]};" in policy and "'nonce-{nonce}'" in policy
    assert headers["frameDeny"] is True and headers["contentTypeNosniff"] is True
    assert headers["referrerPolicy"] == "strict-origin-when-cross-origin" and "camera=()" in headers["permissionsPolicy"]
    assert headers["stsSeconds"] >= 31536000 and headers["stsIncludeSubdomains"] is True
    assert kinds["kubechat-request-body-limit"]["buffering"]["maxRequestBodyBytes"] == 10 * 1024 * 1024
    limit = kinds["kubechat-api-rate-limit"]["rateLimit"]
    assert limit["average"] >= 1 and limit["burst"] >= limit["average"]
    for route in (d for d in docs if d["kind"] == "HTTPRoute" and d["metadata"]["name"] != "kubechat-https-redirect"):
        for rule in route["spec"]["rules"]:
            used = middlewares(rule)
            assert set(used) <= set(kinds), f"{route['metadata']['name']}: {used}"
            assert used[-1] == ("kubechat-web-security-headers" if route["metadata"]["name"] == "kubechat-web"
                                else "kubechat-security-headers")
            assert ("kubechat-api-rate-limit" in used) == (route["metadata"]["name"] == "kubechat-api")
            # Traefik's buffering holds the whole response too (vulcand/oxy v2.1.0 buffer/buffer.go): never on a
            # stream, whose events must reach the browser as they are written, nor on the web's streamed pages.
            streaming = any(m.get("path", {}).get("value") == "/api/chat/stream" for m in rule.get("matches", []))
            api = route["metadata"]["name"] == "kubechat-api"
            assert ("kubechat-request-body-limit" in used) == (api and not streaming), rule


def test_the_platform_terminates_tls_with_forward_secret_suites_only():
    values = traefik_values()
    default = values["tlsOptions"]["default"]
    assert default["minVersion"] == "VersionTLS12"
    assert default["cipherSuites"] and all(s.startswith("TLS_ECDHE_") and ("GCM" in s or "CHACHA20" in s)
                                           for s in default["cipherSuites"])
    assert values["core"]["strictTLSOptions"] is True
    assert values["providers"]["kubernetesIngress"]["enabled"] is False and values["ingressClass"]["enabled"] is False


@pytest.mark.parametrize("env", PUBLIC)
def test_certificate_comes_from_an_acme_cluster_issuer_of_the_same_render(rendered, env):
    docs = rendered[env]
    certificate = find(docs, "Certificate", "kubechat-tls")["spec"]
    assert re.fullmatch(r"\d+h", certificate["renewBefore"]) and int(certificate["renewBefore"][:-1]) >= 24 * 14
    issuer = find(docs, "ClusterIssuer", certificate["issuerRef"]["name"])["spec"]["acme"]
    assert issuer["server"] == "https://acme-v02.api.letsencrypt.org/directory"
    # cert-manager creates the challenge's HTTPRoute in the Certificate's namespace with exactly these parentRefs
    # (v1.21.1 pkg/issuer/acme/http/httproute.go): the Gateway's plain-HTTP listener.
    assert issuer["solvers"][0]["http01"]["gatewayHTTPRoute"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "kubechat", "sectionName": "http"}]
    servers = {d["spec"]["acme"]["server"] for d in docs if d["kind"] == "ClusterIssuer"}
    assert "https://acme-staging-v02.api.letsencrypt.org/directory" in servers


def test_dev_has_no_public_gateway_or_certificate(rendered):
    assert not [d for d in rendered["dev"] if d["kind"] in ("Ingress", "Gateway", "HTTPRoute", "Certificate", "ClusterIssuer")]


@pytest.mark.parametrize("env", PUBLIC)
def test_staging_and_production_render_no_secret_and_take_them_from_external_secrets(rendered, env):
    docs = rendered[env]
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"] == []
    external = find(docs, "ExternalSecret", "kubechat-api-secrets")["spec"]
    # #31.3: each environment's own store (docs/install.md limits it to the environment's namespace).
    for doc in docs:
        if doc["kind"] == "ExternalSecret":
            assert doc["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": f"kubechat-{env}-secret-store"}
    assert external["target"]["name"] == "kubechat-api-secrets"
    assert external["dataFrom"] == [{"extract": {"key": f"kubechat/{env}/api"}}]
    redis = find(docs, "ExternalSecret", "kubechat-redis")["spec"]
    assert redis["dataFrom"] == [{"extract": {"key": f"kubechat/{env}/redis"}}]
    api = find(docs, "Deployment", "kubechat-api")
    assert {"secretRef": {"name": "kubechat-api-secrets"}} in api["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    # #26.7: a rotated secret reaches the pods that read it. Reloader's annotation value is a comma-separated
    # list of (anchored) names (stakater/Reloader v1.4.22 pkg/common/common.go); the cache reads its password
    # only at start, so it restarts too.
    assert api["metadata"]["annotations"]["secret.reloader.stakater.com/reload"] == \
        "kubechat-api-secrets,kubechat-redis,kubechat-db-api"
    for name, key in (("kubechat-db-api", "database-api"), ("kubechat-db-backup", "database-backup")):
        assert find(docs, "ExternalSecret", name)["spec"]["dataFrom"] == [{"extract": {"key": f"kubechat/{env}/{key}"}}]
    cache = find(docs, "StatefulSet", "kubechat-redis")
    assert cache["metadata"]["annotations"]["secret.reloader.stakater.com/reload"] == "kubechat-redis"
    assert "secret.reloader.stakater.com/reload" not in (cache["spec"]["template"]["metadata"].get("annotations") or {})


@pytest.mark.parametrize("env", PUBLIC)
def test_staging_and_production_sources_hold_no_secret_material(env):
    for path in sorted((ROOT / "overlays" / env).iterdir()):
        text = path.read_text()
        assert "secretGenerator" not in text, f"{path}: generates a Secret"
        for doc in yaml.safe_load_all(text) if path.suffix == ".yaml" else []:
            assert not (isinstance(doc, dict) and doc.get("kind") == "Secret"), f"{path}: holds a Secret"
        assert not re.search(r"(?i)(password|secret|token|key)\s*[=:]\s*\S{8,}", text.replace("secretName", "")
                             .replace("secret-store", "").replace("key: kubechat/", "")), f"{path}: looks like a credential"


def test_dev_secrets_are_generated_with_obviously_fake_values_and_roll_pods(rendered):
    import base64

    docs = rendered["dev"]
    secrets = {re.sub(r"-[a-z0-9]{10}$", "", d["metadata"]["name"]): d for d in docs if d["kind"] == "Secret"}
    assert set(secrets) == {"kubechat-api-secrets", "kubechat-redis", "kubechat-dev-tools", "kubechat-db-api",
                            "kubechat-db-backup"}
    for secret in secrets.values():
        assert re.fullmatch(r"[a-z-]+-[a-z0-9]{10}", secret["metadata"]["name"]), "not generated with a hash suffix"
        values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        credentials = {k: v for k, v in values.items() if k not in ("email", "username")}
        assert credentials and all("dev-only" in v for v in credentials.values()), values
    assert set(secrets["kubechat-api-secrets"]["data"]) == {"JWT_SIGNING_KEY"}
    api = find(docs, "Deployment", "kubechat-api")["spec"]["template"]["spec"]["containers"][0]
    assert {"secretRef": {"name": secrets["kubechat-api-secrets"]["metadata"]["name"]}} in api["envFrom"]
    redis_password = next(e for e in api["env"] if e["name"] == "REDIS_PASSWORD")
    assert redis_password["valueFrom"]["secretKeyRef"]["name"] == secrets["kubechat-redis"]["metadata"]["name"]
    # The database role's Secret: the Cluster follows its generated name too (overlays/dev/kustomizeconfig.yaml).
    role_secret = secrets["kubechat-db-api"]["metadata"]["name"]
    assert find(docs, "Cluster", "kubechat-db")["spec"]["managed"]["roles"][0]["passwordSecret"]["name"] == role_secret
    assert {e["name"]: e for e in api["env"]}["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == role_secret


def contract_routes() -> list[tuple[str, str, str]]:
    """docs/app-contract.md's "Public routing" table: (host setting, path, service that serves it)."""
    text = (ROOT / "docs" / "app-contract.md").read_text()
    section = text.split("## Public routing", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| `")]
    return [tuple(cell.strip().strip("`") for cell in row[:3]) for row in rows]


def route(docs: list[dict], host: str, path: str) -> str | None:
    """The Service of the stable pods that host+path reaches: the HTTPRoute of that hostname, its rule with the
    best match as Traefik ranks them (testbed.cert_manager.best_rule), its
    TraefikService, and that split's weighted Service with the weight (before any canary, the stable one)."""
    https = lambda route: any(p.get("sectionName") == "https" for p in route["spec"]["parentRefs"])  # noqa: E731
    best = best_rule([d for d in docs if d["kind"] == "HTTPRoute"], host, path, https)
    if best is None:
        return None
    backend = best[1]["backendRefs"][0]
    assert (backend["group"], backend["kind"]) == ("traefik.io", "TraefikService"), backend
    split = find(docs, "TraefikService", backend["name"])["spec"]["weighted"]["services"]
    return max(split, key=lambda s: s["weight"])["name"]


@pytest.mark.parametrize("env", PUBLIC)
def test_every_contract_path_reaches_the_service_that_serves_it(rendered, env):
    docs = rendered[env]
    rows = contract_routes()
    assert {service for _, _, service in rows} == {"kubechat-api", "kubechat-web"} and len(rows) >= 6
    hosts = {"host": PUBLIC[env], "api_host": API[env]}
    for host_setting, path, service in rows:
        stable = route(docs, hosts[host_setting], path)
        assert stable == f"{service}-stable", f"{env}: {host_setting} {path} -> {stable}, not {service}'s stable pods"
        # The stable Service selects the workload's pods (Rollouts adds the stable hash during a canary).
        selector = find(docs, "Service", stable)["spec"]["selector"]
        assert selector == find(docs, "Service", service)["spec"]["selector"]


@pytest.mark.parametrize("env", PUBLIC)
def test_what_a_route_names_exists_a_wave_before_the_route(rendered, env):
    """A route whose Middleware or TraefikService is missing when Traefik reads it is ResolvedRefs False, which
    Argo CD's HTTPRoute health (argo-cd v3.5.1 resource_customizations/gateway.networking.k8s.io/HTTPRoute)
    calls Degraded, failing the sync: what a route names comes in an earlier wave (the delivery tier's first
    sync failed once when they shared one)."""
    docs = rendered[env]
    wave = lambda d: int(d["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])  # noqa: E731
    for route in (d for d in docs if d["kind"] == "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            named = [("Middleware", m) for m in middlewares(rule)] + \
                [(b["kind"], b["name"]) for b in rule.get("backendRefs", [])]
            for kind, name in named:
                assert wave(find(docs, kind, name)) < wave(route), (route["metadata"]["name"], kind, name)


def documented_store() -> dict:
    """docs/install.md step 5's example ClusterSecretStore, as an operator would copy it."""
    import textwrap

    text = (ROOT / "docs" / "install.md").read_text()
    block = re.search(r"\n( *)```yaml\n((?:\1.*\n)*?)\1```", text[text.index("kind: ClusterSecretStore") - 200:])
    return yaml.safe_load(textwrap.dedent(block.group(2)))


def test_the_documented_secret_store_serves_only_its_environments_namespace(rendered, tmp_path):
    """#31.3: each environment's ExternalSecrets name their environment's ClusterSecretStore, and the store the
    docs create admits only that namespace: External Secrets v2.9.0 pkg/controllers/secretstore/client_manager.go
    shouldProcessSecret serves an ExternalSecret from a ClusterSecretStore with conditions only when its
    namespace matches a condition's `namespaces` (as the label kubernetes.io/metadata.name), `namespaceSelector`
    or `namespaceRegexes`. The example is valid against the pinned CRD's schema."""
    from kubechat_tools.gates import schema_gate

    store = documented_store()
    (tmp_path / "store.yaml").write_text(yaml.safe_dump(store))
    assert schema_gate([tmp_path / "store.yaml"]) == []
    # The gate can refuse this kind: a misspelt field is named (its CRD has a field called `properties`, which
    # the schema converter once took for a keyword, so no ClusterSecretStore could be checked at all).
    (tmp_path / "store.yaml").write_text(yaml.safe_dump({**store, "spec": {**store["spec"], "condition": []}}))
    refused = schema_gate([tmp_path / "store.yaml"])
    assert refused and all("additional properties 'condition' not allowed" in f for f in refused), refused
    names = {d["spec"]["secretStoreRef"]["name"] for d in rendered["production"] if d["kind"] == "ExternalSecret"}
    assert names == {store["metadata"]["name"]}
    conditions = store["spec"]["conditions"]
    assert all(set(c) == {"namespaces"} for c in conditions), "no selector or regex that could admit more"
    assert {n for c in conditions for n in c["namespaces"]} == {"kubechat-production"}


def test_namespace_editors_get_no_external_secret_rights():
    """#31.3: external-secrets chart 2.9.0 (templates/rbac.yaml at cc5bfbc2) labels its -edit ClusterRole
    (create/update/delete of ExternalSecrets and SecretStores) aggregate-to-edit and aggregate-to-admin when
    `rbac.aggregateToEdit` / `rbac.aggregateToAdmin` are true, their defaults (values.yaml lines 231-237):
    every namespace editor could then read any store an ExternalSecret may name. The platform turns both off."""
    app = yaml.safe_load((ROOT / "dist" / "platform" / "prerequisites" /
                          "application-platform-external-secrets.yaml").read_text())
    source = (app["spec"].get("sources") or [app["spec"]["source"]])[0]
    rbac = source["helm"]["valuesObject"]["rbac"]
    assert rbac == {"aggregateToEdit": False, "aggregateToAdmin": False}
