"""Exposure (Ingress + cert-manager TLS in staging and production) and secret handling per environment."""
import re

import pytest
import yaml

from conftest import ROOT, find

PUBLIC = {"staging": "staging.kubechat.example.com", "production": "kubechat.example.com"}
API = {env: "api." + host for env, host in PUBLIC.items()}
NAMESPACES = {"dev": "kubechat-dev", "staging": "kubechat-staging", "production": "kubechat-production"}


@pytest.mark.parametrize("env", PUBLIC)
def test_ingress_routes_api_and_web_over_tls_with_streaming_timeouts(rendered, env):
    docs = rendered[env]
    ingress = find(docs, "Ingress", "kubechat")
    spec, annotations = ingress["spec"], ingress["metadata"]["annotations"]
    assert spec["tls"][0]["hosts"] == [PUBLIC[env], API[env]]
    routes = {(r["host"], p["path"]): p["backend"]["service"] for r in spec["rules"] for p in r["http"]["paths"]}
    assert routes == {(PUBLIC[env], "/"): {"name": "kubechat-web", "port": {"name": "http"}},
                      (API[env], "/"): {"name": "kubechat-api", "port": {"name": "http"}}}
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    namespace, config_map = annotations["nginx.ingress.kubernetes.io/custom-headers"].split("/")
    assert namespace == NAMESPACES[env]
    headers = find(docs, "ConfigMap", config_map)["data"]
    assert {"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} <= headers.keys()
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert f"connect-src 'self' https://{API[env]};" in headers["Content-Security-Policy"]


@pytest.mark.parametrize("env", PUBLIC)
def test_certificate_comes_from_an_acme_cluster_issuer_of_the_same_render(rendered, env):
    docs = rendered[env]
    ingress = find(docs, "Ingress", "kubechat")
    certificate = find(docs, "Certificate", ingress["spec"]["tls"][0]["secretName"])["spec"]
    assert certificate["secretName"] == ingress["spec"]["tls"][0]["secretName"]
    assert certificate["dnsNames"] == [PUBLIC[env], API[env]]
    assert re.fullmatch(r"\d+h", certificate["renewBefore"]) and int(certificate["renewBefore"][:-1]) >= 24 * 14
    issuer = find(docs, "ClusterIssuer", certificate["issuerRef"]["name"])["spec"]["acme"]
    assert issuer["server"] == "https://acme-v02.api.letsencrypt.org/directory"
    assert issuer["solvers"][0]["http01"]["ingress"]["ingressClassName"] == ingress["spec"]["ingressClassName"]
    servers = {d["spec"]["acme"]["server"] for d in docs if d["kind"] == "ClusterIssuer"}
    assert "https://acme-staging-v02.api.letsencrypt.org/directory" in servers


def test_dev_has_no_ingress_or_certificate(rendered):
    assert not [d for d in rendered["dev"] if d["kind"] in ("Ingress", "Certificate", "ClusterIssuer")]


@pytest.mark.parametrize("env", PUBLIC)
def test_staging_and_production_render_no_secret_and_take_them_from_external_secrets(rendered, env):
    docs = rendered[env]
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"] == []
    external = find(docs, "ExternalSecret", "kubechat-api-secrets")["spec"]
    assert external["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "kubechat-secret-store"}
    assert external["target"]["name"] == "kubechat-api-secrets"
    assert external["dataFrom"] == [{"extract": {"key": f"kubechat/{env}/api"}}]
    redis = find(docs, "ExternalSecret", "kubechat-redis")["spec"]
    assert redis["dataFrom"] == [{"extract": {"key": f"kubechat/{env}/redis"}}]
    api = find(docs, "Deployment", "kubechat-api")
    assert {"secretRef": {"name": "kubechat-api-secrets"}} in api["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    # #26.7: a rotated secret reaches the pods that read it. Reloader's annotation value is a comma-separated
    # list of (anchored) names (stakater/Reloader v1.4.22 pkg/common/common.go); the cache reads its password
    # only at start, so it restarts too.
    assert api["metadata"]["annotations"]["secret.reloader.stakater.com/reload"] == "kubechat-api-secrets,kubechat-redis"
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
    assert set(secrets) == {"kubechat-api-secrets", "kubechat-redis", "kubechat-dev-tools"}
    for secret in secrets.values():
        assert re.fullmatch(r"[a-z-]+-[a-z0-9]{10}", secret["metadata"]["name"]), "not generated with a hash suffix"
        values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        credentials = {k: v for k, v in values.items() if k != "email"}
        assert credentials and all("dev-only" in v for v in credentials.values()), values
    assert set(secrets["kubechat-api-secrets"]["data"]) == {"JWT_SIGNING_KEY"}
    api = find(docs, "Deployment", "kubechat-api")["spec"]["template"]["spec"]["containers"][0]
    assert {"secretRef": {"name": secrets["kubechat-api-secrets"]["metadata"]["name"]}} in api["envFrom"]
    redis_password = next(e for e in api["env"] if e["name"] == "REDIS_PASSWORD")
    assert redis_password["valueFrom"]["secretKeyRef"]["name"] == secrets["kubechat-redis"]["metadata"]["name"]


def contract_routes() -> list[tuple[str, str, str]]:
    """docs/app-contract.md's "Public routing" table: (host setting, path, service that serves it)."""
    text = (ROOT / "docs" / "app-contract.md").read_text()
    section = text.split("## Public routing", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| `")]
    return [tuple(cell.strip().strip("`") for cell in row[:3]) for row in rows]


def route(ingress: dict, host: str, path: str) -> str | None:
    """The Service an Ingress sends host+path to (exact host, then the longest matching Prefix path)."""
    best = None
    for rule in ingress["spec"]["rules"]:
        if rule.get("host") != host:
            continue
        for p in rule["http"]["paths"]:
            prefix = p["path"].rstrip("/")
            if p["pathType"] == "Prefix" and (path == prefix or path.startswith(prefix + "/") or prefix == ""):
                if best is None or len(p["path"]) > len(best[0]):
                    best = (p["path"], p["backend"]["service"]["name"])
    return best[1] if best else None


@pytest.mark.parametrize("env", PUBLIC)
def test_every_contract_path_reaches_the_service_that_serves_it(rendered, env):
    ingress = find(rendered[env], "Ingress", "kubechat")
    rows = contract_routes()
    assert {service for _, _, service in rows} == {"kubechat-api", "kubechat-web"} and len(rows) >= 6
    hosts = {"host": PUBLIC[env], "api_host": API[env]}
    for host_setting, path, service in rows:
        assert route(ingress, hosts[host_setting], path) == service, f"{env}: {host_setting} {path} -> {service}"
