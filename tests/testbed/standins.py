"""Stand-ins for the operators the delivery tier cannot build here, run as one process
(`python -m testbed.standins <kubeconfig> <workdir>`). Each writes only what the real operator
writes and what Argo CD's health assessment reads, following the operator's source:

- cloudnative-pg: a Cluster gets, after a short delay (the window in which it has no status at all),
  phase "Cluster in healthy state" and condition Ready=True (api/v1/cluster_types.go: PhaseHealthy,
  ConditionClusterReady); a Backup goes started -> completed (api/v1/backup_types.go: BackupPhase*).
  The operator's module is refused by the Go module proxy.
- external-secrets: an ExternalSecret gets condition Ready=True, reason SecretSynced, and its target
  Secret (apis/externalsecrets/v1/externalsecret_types.go). v2.x is not served by the module proxy.
- cert-manager: a ClusterIssuer gets Ready=True once "registered", a Certificate Ready=True and its
  kubernetes.io/tls Secret (pkg/apis/certmanager/v1/types_certificate.go) holding a self-signed certificate
  for the Certificate's dnsNames with an ECDSA P-256 key, so a real Traefik can serve the Gateway's HTTPS
  listener with it (the delivery tier's web canary). The real cert-manager with an ACME server is the
  admission tier's subject.
- Traefik (the Gateway API implementation): a Gateway of class `traefik` gets Accepted and Programmed and a
  status per listener; an HTTPRoute gets, for each parent, Accepted and ResolvedRefs at its generation (what
  Argo CD v3.5.1's resource_customizations/gateway.networking.k8s.io health checks wait for), with
  ResolvedRefs False, as Traefik reports it, when a TraefikService backend or a Middleware filter it names
  does not exist in the route's namespace (traefik v3.7.13 pkg/provider/kubernetes/gateway/httproute.go:
  RouteReasonBackendNotFound, RouteReasonInvalidKind). The real Traefik (testbed.traefik) runs in the modules
  that route through it (test_rollout_canary, test_front_door_exposure) and writes its own status from then on
  (the stand-in leaves a Gateway alone once its Programmed condition is at the Gateway's generation, and a
  route once every condition is True at its generation).
- ingress-nginx, for releases from before the front door moved to Traefik (the upgrade tests deliver one):
  an Ingress gets status.loadBalancer.ingress (what the controller publishes; Argo CD's Ingress health
  waits for it).
- a volume provisioner: a Pending PersistentVolumeClaim gets a hostPath PersistentVolume bound to it.
- metrics-server: metrics.k8s.io/v1beta1 PodMetrics (a fixed small usage per container), served on a
  loopback HTTPS port and registered as an APIService through an ExternalName Service, so the
  HorizontalPodAutoscaler controller computes replicas (without metrics Argo CD reports an HPA Degraded).
"""
from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import yaml

STANDINS = ("cloudnative-pg (Cluster, Backup status)", "external-secrets (ExternalSecret status, target Secret)",
            "cert-manager (ClusterIssuer, Certificate status, TLS Secret)", "Traefik (Gateway, HTTPRoute status)",
            "ingress-nginx (Ingress status, releases before Traefik)",
            "volume provisioner (hostPath PersistentVolumes)", "metrics-server (metrics.k8s.io PodMetrics)")
CLUSTER_STATUS_DELAY = 3.0
"""Seconds a new CloudNativePG Cluster stays without status (the operator's first reconcile)."""


def self_signed(names: list[str]) -> dict[str, str]:
    """tls.crt and tls.key (base64) of a self-signed certificate for `names`, ECDSA P-256, valid a year."""
    with tempfile.TemporaryDirectory() as folder:
        key, crt = Path(folder) / "tls.key", Path(folder) / "tls.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-subj", f"/CN={names[0]}", "-addext", "subjectAltName=" + ",".join(f"DNS:{n}" for n in names),
                        "-days", "365", "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
        return {"tls.crt": base64.b64encode(crt.read_bytes()).decode(), "tls.key": base64.b64encode(key.read_bytes()).decode()}


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Api:
    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        self.server = config["clusters"][0]["cluster"]["server"]
        self.ca = config["clusters"][0]["cluster"]["certificate-authority"]
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the cluster's CA
        self.session.headers["Authorization"] = f"Bearer {config['users'][0]['user']['token']}"
        self.session.verify = self.ca

    def list(self, path: str) -> list[dict]:
        response = self.session.get(self.server + path, timeout=10)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return response.json()["items"]

    def patch_status(self, path: str, status: dict) -> None:
        response = self.session.patch(self.server + path + "/status", data=json.dumps({"status": status}),
                                      headers={"Content-Type": "application/merge-patch+json"}, timeout=10)
        if response.status_code not in (200, 404, 409):
            response.raise_for_status()

    def get(self, path: str) -> dict | None:
        response = self.session.get(self.server + path, timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def patch(self, path: str, body: dict) -> None:
        response = self.session.patch(self.server + path, data=json.dumps(body),
                                      headers={"Content-Type": "application/merge-patch+json"}, timeout=10)
        response.raise_for_status()

    def create(self, path: str, body: dict) -> None:
        response = self.session.post(self.server + path, data=json.dumps(body),
                                     headers={"Content-Type": "application/json"}, timeout=10)
        if response.status_code not in (200, 201, 409):
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")


def owner(obj: dict) -> list[dict]:
    return [{"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
             "uid": obj["metadata"]["uid"], "controller": True}]


def ready(reason: str, message: str) -> list[dict]:
    return [{"type": "Ready", "status": "True", "reason": reason, "message": message, "lastTransitionTime": now()}]


def has_ready(obj: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def ns_path(group_version: str, namespace: str, plural: str, name: str) -> str:
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}/{name}"


class StandIns:
    def __init__(self, api: Api, workdir: Path) -> None:
        self.api = api
        self.workdir = workdir
        self.first_seen: dict[str, float] = {}

    def step(self) -> None:
        self.clusters()
        self.backups()
        self.external_secrets()
        self.issuers()
        self.certificates()
        self.gateways()
        self.ingresses()
        self.volumes()

    def clusters(self) -> None:
        for c in self.api.list("/apis/postgresql.cnpg.io/v1/clusters"):
            meta = c["metadata"]
            seen = self.first_seen.setdefault(meta["uid"], time.monotonic())
            if (c.get("status") or {}).get("phase") or time.monotonic() - seen < CLUSTER_STATUS_DELAY:
                continue
            instances = c["spec"].get("instances", 1)
            self.api.patch_status(ns_path("postgresql.cnpg.io/v1", meta["namespace"], "clusters", meta["name"]), {
                "phase": "Cluster in healthy state", "phaseReason": "", "instances": instances,
                "readyInstances": instances, "currentPrimary": f"{meta['name']}-1", "targetPrimary": f"{meta['name']}-1",
                "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterIsReady",
                                "message": "Cluster is Ready", "lastTransitionTime": now()}]})

    def backups(self) -> None:
        for b in self.api.list("/apis/postgresql.cnpg.io/v1/backups"):
            meta = b["metadata"]
            phase = (b.get("status") or {}).get("phase")
            path = ns_path("postgresql.cnpg.io/v1", meta["namespace"], "backups", meta["name"])
            if phase is None:
                self.api.patch_status(path, {"phase": "started", "startedAt": now(), "method": b["spec"].get("method")})
            elif phase == "started":
                self.api.patch_status(path, {"phase": "completed", "stoppedAt": now()})

    def external_secrets(self) -> None:
        for es in self.api.list("/apis/external-secrets.io/v1/externalsecrets"):
            if has_ready(es):
                continue
            meta = es["metadata"]
            target = (es["spec"].get("target") or {}).get("name") or meta["name"]
            keys = [d["secretKey"] for d in es["spec"].get("data") or []] or ["value"]
            if (es["spec"].get("target") or {}).get("creationPolicy") == "Merge":
                # Merge: External Secrets adds the keys to a Secret that exists (and creates none); a key the
                # Secret already has (a test's own value) is left as it is here.
                secret = self.api.get(f"/api/v1/namespaces/{meta['namespace']}/secrets/{target}")
                if secret is None:
                    continue
                missing = {k: base64.b64encode(b"stand-in").decode() for k in keys if k not in (secret.get("data") or {})}
                if missing:
                    self.api.patch(f"/api/v1/namespaces/{meta['namespace']}/secrets/{target}", {"data": missing})
                self.api.patch_status(ns_path("external-secrets.io/v1", meta["namespace"], "externalsecrets", meta["name"]),
                                      {"conditions": ready("SecretSynced", "secret synced"), "refreshTime": now(),
                                       "binding": {"name": target}})
                continue
            self.api.create(f"/api/v1/namespaces/{meta['namespace']}/secrets", {
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": target, "namespace": meta["namespace"], "ownerReferences": owner(es)},
                "data": {k: base64.b64encode(b"stand-in").decode() for k in keys}})
            self.api.patch_status(ns_path("external-secrets.io/v1", meta["namespace"], "externalsecrets", meta["name"]),
                                  {"conditions": ready("SecretSynced", "secret synced"), "refreshTime": now(),
                                   "binding": {"name": target}})

    def issuers(self) -> None:
        for issuer in self.api.list("/apis/cert-manager.io/v1/clusterissuers"):
            if not has_ready(issuer):
                self.api.patch_status(f"/apis/cert-manager.io/v1/clusterissuers/{issuer['metadata']['name']}", {
                    "conditions": ready("ACMEAccountRegistered", "The ACME account was registered with the ACME server"),
                    "acme": {"uri": "https://127.0.0.1/acme/acct/1"}})

    def certificates(self) -> None:
        for cert in self.api.list("/apis/cert-manager.io/v1/certificates"):
            if has_ready(cert):
                continue
            meta = cert["metadata"]
            self.api.create(f"/api/v1/namespaces/{meta['namespace']}/secrets", {
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": cert["spec"]["secretName"], "namespace": meta["namespace"],
                             "annotations": {"cert-manager.io/certificate-name": meta["name"]}},
                "data": self_signed(cert["spec"].get("dnsNames") or [meta["name"]])})
            self.api.patch_status(ns_path("cert-manager.io/v1", meta["namespace"], "certificates", meta["name"]), {
                "conditions": ready("Ready", "Certificate is up to date and has not expired"),
                "notAfter": "2099-01-01T00:00:00Z", "revision": 1})

    def ingresses(self) -> None:
        for ing in self.api.list("/apis/networking.k8s.io/v1/ingresses"):
            if not ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                meta = ing["metadata"]
                self.api.patch_status(ns_path("networking.k8s.io/v1", meta["namespace"], "ingresses", meta["name"]),
                                      {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}})

    GATEWAY_CONTROLLER = "traefik.io/gateway-controller"
    """The controllerName Traefik's GatewayClass carries (traefik v3.7.13 pkg/provider/kubernetes/gateway)."""

    def gateways(self) -> None:
        gateway_api = "gateway.networking.k8s.io/v1"
        for gateway in self.api.list("/apis/gateway.networking.k8s.io/v1/gateways"):
            meta, spec = gateway["metadata"], gateway["spec"]
            status = gateway.get("status") or {}
            if spec.get("gatewayClassName") != "traefik" or any(
                    c.get("observedGeneration") == meta["generation"] and c["type"] == "Programmed"
                    for c in status.get("conditions") or []):
                continue
            condition = lambda kind, reason: {"type": kind, "status": "True", "reason": reason, "message": "",  # noqa: E731
                                              "observedGeneration": meta["generation"], "lastTransitionTime": now()}
            self.api.patch_status(ns_path(gateway_api, meta["namespace"], "gateways", meta["name"]), {
                "addresses": [{"type": "IPAddress", "value": "127.0.0.1"}],
                "conditions": [condition("Accepted", "Accepted"), condition("Programmed", "Programmed")],
                "listeners": [{"name": listener["name"], "attachedRoutes": 0,
                               "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
                               "conditions": [condition("Accepted", "Accepted"), condition("ResolvedRefs", "ResolvedRefs"),
                                              condition("Programmed", "Programmed")]}
                              for listener in spec.get("listeners", [])]})
        for route in self.api.list("/apis/gateway.networking.k8s.io/v1/httproutes"):
            meta, spec = route["metadata"], route["spec"]
            if all(c.get("observedGeneration") == meta["generation"] and c.get("status") == "True"
                   for parent in (route.get("status") or {}).get("parents") or [{}]
                   for c in parent.get("conditions") or [{}]):
                continue  # Traefik looks again at every change; a route with a missing reference, here at every step
            missing = []
            for rule in spec.get("rules", []):
                for backend in rule.get("backendRefs", []):
                    plural = {"TraefikService": "traefikservices", "Service": "services"}.get(backend.get("kind", "Service"))
                    group = "traefik.io/v1alpha1" if backend.get("kind") == "TraefikService" else "v1"
                    if plural is None or self.api.get(ns_path(group, meta["namespace"], plural, backend["name"])) is None:
                        missing.append(f"{backend.get('kind', 'Service')} {backend['name']}")
                for f in rule.get("filters", []):
                    ref = f.get("extensionRef")
                    if ref and self.api.get(ns_path("traefik.io/v1alpha1", meta["namespace"], "middlewares", ref["name"])) is None:
                        missing.append(f"Middleware {ref['name']}")
            resolved = {"type": "ResolvedRefs", "status": "False" if missing else "True",
                        "reason": "BackendNotFound" if missing else "ResolvedRefs",
                        "message": f"Cannot load {', '.join(missing)}" if missing else "",
                        "observedGeneration": meta["generation"], "lastTransitionTime": now()}
            accepted = {**resolved, "type": "Accepted", "status": "True", "reason": "Accepted", "message": ""}
            self.api.patch_status(ns_path(gateway_api, meta["namespace"], "httproutes", meta["name"]), {
                "parents": [{"parentRef": parent, "controllerName": self.GATEWAY_CONTROLLER,
                             "conditions": [accepted, resolved]} for parent in spec.get("parentRefs", [])]})

    def volumes(self) -> None:
        for pvc in self.api.list("/api/v1/persistentvolumeclaims"):
            if (pvc.get("status") or {}).get("phase") != "Pending" or pvc["spec"].get("volumeName"):
                continue
            meta = pvc["metadata"]
            name = f"standin-{meta['uid']}"
            self.api.create("/api/v1/persistentvolumes", {
                "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
                "spec": {"capacity": {"storage": pvc["spec"]["resources"]["requests"]["storage"]},
                         "accessModes": pvc["spec"]["accessModes"], "persistentVolumeReclaimPolicy": "Retain",
                         "storageClassName": pvc["spec"].get("storageClassName") or "",
                         "hostPath": {"path": str(self.workdir / "volumes" / name)},
                         "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]}}})


# --- metrics.k8s.io ----------------------------------------------------------------------------------

def matches(labels: dict[str, str], selector: str) -> bool:
    """Kubernetes label selector strings as the HPA controller sends them (=, ==, !=, in, notin, exists)."""
    if not selector:
        return True
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    for part in (p.strip() for p in parts if p.strip()):
        if " notin " in part or " in " in part:
            key, op, values = part.replace("(", " ").replace(")", " ").split(None, 2)
            allowed = {v.strip() for v in values.split(",")}
            if (labels.get(key) in allowed) != (op == "in"):
                return False
        elif "!=" in part:
            key, value = part.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in part:
            key, value = part.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif part.startswith("!"):
            if part[1:] in labels:
                return False
        elif part not in labels:
            return False
    return True


def serve_metrics(api: Api, workdir: Path) -> int:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(workdir / "metrics.key"), "-out", str(workdir / "metrics.crt")],
                   check=True, capture_output=True)
    discovery = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "metrics.k8s.io/v1beta1",
                 "resources": [{"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics",
                                "verbs": ["get", "list"]}]}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def reply(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            if path.rstrip("/") == "/apis/metrics.k8s.io/v1beta1":
                return self.reply(200, discovery)
            segments = path.strip("/").split("/")
            if segments[:3] == ["apis", "metrics.k8s.io", "v1beta1"] and segments[-1] == "pods":
                namespace = segments[4] if len(segments) > 4 and segments[3] == "namespaces" else None
                selector = requests.utils.unquote(params.get("labelSelector", "").replace("+", " "))
                pods = api.list(f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods")
                items = [{"metadata": {"name": p["metadata"]["name"], "namespace": p["metadata"]["namespace"],
                                       "labels": p["metadata"].get("labels", {}), "creationTimestamp": now()},
                          "timestamp": now(), "window": "30s",
                          "containers": [{"name": c["name"], "usage": {"cpu": "10m", "memory": "32Mi"}}
                                         for c in p["spec"]["containers"]]}
                         for p in pods if p.get("status", {}).get("phase") == "Running"
                         and matches(p["metadata"].get("labels", {}), selector)]
                return self.reply(200, {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                                        "metadata": {}, "items": items})
            return self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(workdir / "metrics.crt"), str(workdir / "metrics.key"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def register_metrics(api: Api, port: int) -> None:
    """An APIService for metrics.k8s.io through an ExternalName Service: the aggregator then proxies to
    127.0.0.1:<port> (k8s.io/apiserver pkg/util/proxy ResolveCluster), never to a cluster IP."""
    api.create("/api/v1/namespaces/kube-system/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "metrics-standin", "namespace": "kube-system"},
        "spec": {"type": "ExternalName", "externalName": "127.0.0.1", "ports": [{"port": port}]}})
    api.create("/apis/apiregistration.k8s.io/v1/apiservices", {
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "insecureSkipTLSVerify": True,
                 "groupPriorityMinimum": 100, "versionPriority": 100,
                 "service": {"namespace": "kube-system", "name": "metrics-standin", "port": port}}})


def main() -> int:
    kubeconfig, workdir = Path(sys.argv[1]), Path(sys.argv[2])
    api = Api(kubeconfig)
    register_metrics(api, serve_metrics(api, workdir))
    standins = StandIns(api, workdir)
    print("stand-ins running: " + "; ".join(STANDINS), flush=True)
    while True:
        try:
            standins.step()
        except Exception as error:  # a transient API error must not end the stand-ins
            print(f"stand-ins: {error}", flush=True)
        time.sleep(0.5)


if __name__ == "__main__":
    raise SystemExit(main())
