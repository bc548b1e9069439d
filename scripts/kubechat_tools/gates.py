"""The validation gates every rendered environment must pass (`make validate`, run by `make test`).

Each gate takes manifest files or folders and returns a list of failures, one readable line each;
an empty list means the gate passed.
  schema      kubeconform, strict, against the Kubernetes 1.30 and 1.37 OpenAPI schemas and the
              pinned CRDs' openAPIV3Schema
  lint        two peer linters: checkov's Kubernetes checks and kube-score's default checks (every
              waiver in lint-exceptions.yaml, with its reason)
  workloads   probes, non-default ServiceAccounts, every pod isolated by a NetworkPolicy
  psa         the Pod Security Standards "restricted" profile, evaluated by Kubernetes' own code
  references  Services, Ingresses, the Gateway API's routes and Traefik's splits and middlewares, config and
              secret references, monitors, HPAs and PDBs all
              point at something that exists
"""
from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path

import yaml

from .schemas import build_schemas, kubernetes_schemas
from .manifests import WORKLOAD_KINDS, _selects, load_all_text, pod_template  # noqa: F401  (re-exported)
from .paths import BIN, LINT_CONFIG, ROOT

KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
"""The oldest supported minor and the newest stable minor."""

LONG_RUNNING_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Rollout", "ReplicaSet")


def yaml_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(p for p in sorted(path.glob("*.yaml")) if p.name != "kustomization.yaml")
        else:
            files.append(path)
    return files


def load(paths: list[Path]) -> list[tuple[Path, dict]]:
    return [(f, doc) for f in yaml_files(paths) for doc in load_all_text(f.read_text())]


# --- schema -------------------------------------------------------------------------------------

def schema_gate(paths: list[Path], versions: tuple[str, ...] = KUBERNETES_VERSIONS) -> list[str]:
    files = [str(f) for f in yaml_files(paths)]
    crd_dir = build_schemas()
    failures = []
    for version in versions:
        k8s_dir = kubernetes_schemas(version)
        command = [
            str(BIN / "kubeconform"), "-strict", "-output", "json", "-kubernetes-version", version,
            "-schema-location",
            f"{k8s_dir}/{{{{ .NormalizedKubernetesVersion }}}}-local{{{{ .StrictSuffix }}}}/"
            "{{ .ResourceKind }}{{ .KindSuffix }}.json",
            "-schema-location", f"{crd_dir}/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
            *files,
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        report = json.loads(result.stdout or "{}")
        for resource in report.get("resources", []):
            if resource["status"] in ("statusInvalid", "statusError"):
                failures.append(f"schema (Kubernetes {version}): {_rel(resource['filename'])}: "
                                f"{resource.get('kind')}/{resource.get('name')}: {resource.get('msg')}")
        if result.returncode != 0 and not failures:
            failures.append(f"schema (Kubernetes {version}): kubeconform failed: {result.stderr.strip()}")
    return failures


# --- lint ---------------------------------------------------------------------------------------

def _waivers(section: str, required: tuple[str, ...]) -> list[dict]:
    """lint-exceptions.yaml's `section`: every entry has a reason and each of the `required` keys."""
    entries = (yaml.safe_load(LINT_CONFIG.read_text()) or {}).get(section, [])
    for entry in entries:
        if not str(entry.get("reason", "")).strip() or not all(entry.get(key) for key in required):
            raise SystemExit(f"{LINT_CONFIG.name}: {section} exception {entry.get('id', entry.get('check'))} needs "
                             f"{', '.join(required)} and a reason")
    return entries


def lint_exceptions() -> list[dict]:
    """`checkov:`: a check id, the environments and (optionally) the Kind/name resources it is waived for."""
    return _waivers("checkov", ("environments",))


def workload_exceptions() -> list[dict]:
    """`workloads:`: waivers of the workloads gate's checks, each for named containers of named resources."""
    return _waivers("workloads", ("resources", "containers"))


def _waived(check: dict, environment: str | None, exceptions: list[dict]) -> bool:
    kind, _, rest = check["resource"].partition(".")
    name = rest.split(".")[1] if rest.count(".") >= 1 else rest
    for entry in exceptions:
        if entry["id"] != check["check_id"] or environment not in entry["environments"]:
            continue
        if "resources" not in entry or f"{kind}/{name}" in entry["resources"]:
            return True
    return False


def lint_gate(paths: list[Path], environment: str | None = None) -> list[str]:
    """checkov's and kube-score's checks, less the waivers for `environment` in lint-exceptions.yaml."""
    return checkov_lint(paths, environment) + kube_score_lint(paths, environment)


KUBE_SCORE_KUBERNETES_VERSION = "v" + KUBERNETES_VERSIONS[0].rsplit(".", 1)[0]
"""kube-score's checks for the oldest supported Kubernetes minor (its deprecated-API check)."""


def kube_score_exceptions() -> list[dict]:
    """`kube-score:`: a check id, the environments, the Kind/name resources (and optionally the
    containers) it is waived for."""
    return _waivers("kube-score", ("environments", "resources"))


def kube_score_lint(paths: list[Path], environment: str | None = None) -> list[str]:
    """kube-score's default checks on all the files at once (so it sees which Services, PDBs and
    NetworkPolicies select which pods); a warning or a critical finding fails unless waived."""
    files = yaml_files(paths)
    command = [str(BIN / "kube-score"), "score", "--output-format", "json", "--kubernetes-version",
               KUBE_SCORE_KUBERNETES_VERSION, *map(str, files)]
    result = subprocess.run(command, capture_output=True, text=True)
    try:
        objects = json.loads(result.stdout)
    except json.JSONDecodeError:
        return [f"lint: kube-score did not report (exit {result.returncode}): {result.stderr.strip()[-2000:]}"]
    exceptions = [e for e in kube_score_exceptions() if environment in e["environments"]]
    failures = []
    for obj in objects or []:
        resource = f"{obj['type_meta']['kind']}/{obj['object_meta']['name']}"
        for check in obj["checks"]:
            if check["skipped"] or check["grade"] > KUBE_SCORE_WARNING:
                continue
            check_id = check["check"]["id"]
            for comment in check.get("comments") or [{"path": "", "summary": check["check"]["name"]}]:
                container = comment.get("path") or ""
                if any(e["id"] == check_id and resource in e["resources"]
                       and (not e.get("containers") or container in e["containers"]) for e in exceptions):
                    continue
                where = f"{resource}" + (f" ({container})" if container else "")
                failures.append(f"lint (kube-score {check_id}): {_rel(obj['file_name'])}: {where}: {comment['summary']}")
    return failures


KUBE_SCORE_WARNING = 5
"""kube-score's grades: 10 OK, 7 almost OK, 5 warning, 1 critical; a warning or worse fails the gate."""


@functools.lru_cache(maxsize=32)
def _run_checkov(files: tuple[tuple[str, str], ...]) -> subprocess.CompletedProcess:
    """checkov over the files, once per set of (path, content digest): the waivers differ per
    environment, checkov's findings do not."""
    command = [str(ROOT / ".venv-checkov" / "bin" / "checkov"), "--framework", "kubernetes", "--quiet",
               "--compact", "--output", "json", "--skip-download"]
    for name, _ in files:
        command += ["--file", name]
    return subprocess.run(command, capture_output=True, text=True)


def checkov_lint(paths: list[Path], environment: str | None = None) -> list[str]:
    """checkov's Kubernetes checks, less the waivers for `environment` in lint-exceptions.yaml."""
    files = yaml_files(paths)
    result = _run_checkov(tuple((str(f), hashlib.sha256(f.read_bytes()).hexdigest()) for f in files))
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        return [f"lint: checkov did not report (exit {result.returncode}): {result.stderr.strip()[-2000:]}"]
    if isinstance(reports, dict):
        reports = [reports]
    exceptions = lint_exceptions()
    failures = []
    for report in reports:
        for check in report.get("results", {}).get("failed_checks", []):
            if _waived(check, environment, exceptions):
                continue
            failures.append(f"lint (checkov {check['check_id']}): {_rel(check.get('file_abs_path', check['file_path']))}: "
                            f"{check['resource']}: {check['check_name']}")
    if result.returncode not in (0, 1):
        failures.append(f"lint: checkov exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return failures


# --- pod templates ------------------------------------------------------------------------------

def psa_gate(paths: list[Path]) -> list[str]:
    files = [str(f) for f in yaml_files(paths)]
    result = subprocess.run([str(BIN / "psa-check"), *files], capture_output=True, text=True)
    failures = [_rel(line) for line in result.stdout.splitlines() if "violates" in line or "cannot read" in line]
    if result.returncode != 0 and not failures:
        failures.append(f"psa: psa-check failed: {result.stderr.strip() or result.stdout.strip()}")
    return failures


def _isolating_policies(docs: list[tuple[Path, dict]]) -> list[dict]:
    return [doc for _, doc in docs if doc.get("kind") == "NetworkPolicy"]


def workloads_gate(paths: list[Path]) -> list[str]:
    """The kube-linter checks the project requires (no-liveness-probe, no-readiness-probe,
    default-service-account, non-isolated-pod); kube-linter itself cannot be installed here."""
    docs = load(paths)
    policies = _isolating_policies(docs)
    waivers = {(w["check"], resource, container) for w in workload_exceptions()
               for resource in w["resources"] for container in w["containers"]}
    failures = []
    for path, doc in docs:
        template = pod_template(doc)
        if template is None:
            continue
        where = f"{_rel(path)}: {doc['kind']}/{doc['metadata']['name']}"
        spec = template.get("spec") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        namespace = doc["metadata"].get("namespace")
        if spec.get("serviceAccountName", "default") == "default":
            failures.append(f"workloads (default-service-account): {where}: runs as the namespace's default "
                            "ServiceAccount; give it its own")
        if doc["kind"] in LONG_RUNNING_KINDS:
            for container in spec.get("containers", []):
                for probe in ("livenessProbe", "readinessProbe"):
                    check = f"no-{probe[:-5].lower()}-probe"
                    if (check, f"{doc['kind']}/{doc['metadata']['name']}", container["name"]) in waivers:
                        continue
                    if probe not in container:
                        failures.append(f"workloads (no-{probe[:-5].lower()}-probe): {where}: container "
                                        f"{container['name']!r} has no {probe}")
        if not any(p["metadata"].get("namespace") == namespace and _selects(p["spec"].get("podSelector"), labels)
                   for p in policies):
            failures.append(f"workloads (non-isolated-pod): {where}: no NetworkPolicy selects its pods")
    return failures


# --- references ---------------------------------------------------------------------------------

EXTERNAL_SECRET_PROVIDERS = {
    # kind -> function(doc) -> names of Secrets that its operator creates
    "ExternalSecret": lambda d: [((d["spec"].get("target") or {}).get("name")) or d["metadata"]["name"]],
    "Certificate": lambda d: [d["spec"]["secretName"]],
    "Cluster": lambda d: [f"{d['metadata']['name']}-{suffix}" for suffix in
                          ("app", "superuser", "ca", "server", "replication")]
    if d.get("apiVersion", "").startswith("postgresql.cnpg.io/") else [],
}


def _index(docs: list[tuple[Path, dict]]) -> dict[tuple[str, str, str], dict]:
    index = {}
    for _, doc in docs:
        meta = doc.get("metadata", {})
        index[(doc["kind"], meta.get("namespace", ""), meta["name"])] = doc
        for name in EXTERNAL_SECRET_PROVIDERS.get(doc["kind"], lambda d: [])(doc):
            index[("Secret", meta.get("namespace", ""), name)] = doc
    return index


def _container_ports(template: dict) -> dict:
    ports = {}
    for container in (template.get("spec") or {}).get("containers", []):
        for port in container.get("ports", []) or []:
            ports[port["containerPort"]] = port
            if "name" in port:
                ports[port["name"]] = port
    return ports


def _referenced_objects(template: dict) -> list[tuple[str, str]]:
    spec = template.get("spec") or {}
    refs = []
    if spec.get("serviceAccountName"):
        refs.append(("ServiceAccount", spec["serviceAccountName"]))
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        for source in container.get("envFrom", []) or []:
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in source and not source[key].get("optional"):
                    refs.append((kind, source[key]["name"]))
        for env in container.get("env", []) or []:
            value_from = env.get("valueFrom") or {}
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if key in value_from and not value_from[key].get("optional"):
                    refs.append((kind, value_from[key]["name"]))
    for volume in spec.get("volumes", []) or []:
        if "configMap" in volume and not volume["configMap"].get("optional"):
            refs.append(("ConfigMap", volume["configMap"]["name"]))
        if "secret" in volume and not volume["secret"].get("optional"):
            refs.append(("Secret", volume["secret"]["secretName"]))
        if "persistentVolumeClaim" in volume:
            refs.append(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
        for source in (volume.get("projected") or {}).get("sources", []):
            if "configMap" in source and not source["configMap"].get("optional"):
                refs.append(("ConfigMap", source["configMap"]["name"]))
            if "secret" in source and not source["secret"].get("optional"):
                refs.append(("Secret", source["secret"]["name"]))
    return refs


def references_gate(paths: list[Path]) -> list[str]:
    docs = load(paths)
    index = _index(docs)
    workloads = [(path, doc, pod_template(doc)) for path, doc in docs if pod_template(doc) is not None]
    failures = []

    def exists(kind: str, namespace: str, name: str) -> bool:
        return (kind, namespace, name) in index

    for path, doc, template in workloads:
        ns = doc["metadata"].get("namespace", "")
        for kind, name in _referenced_objects(template):
            if not exists(kind, ns, name):
                failures.append(f"references: {_rel(path)}: {doc['kind']}/{doc['metadata']['name']} references "
                                f"{kind} {name!r}, which is neither rendered nor provided by an operator")

    for path, doc in docs:
        kind, meta, spec = doc["kind"], doc["metadata"], doc.get("spec") or {}
        ns, where = meta.get("namespace", ""), f"{_rel(path)}: {doc['kind']}/{meta['name']}"
        if kind == "Service" and spec.get("selector"):
            selected = [(w, t) for _, w, t in workloads if w["metadata"].get("namespace", "") == ns
                        and _selects({"matchLabels": spec["selector"]}, (t.get("metadata") or {}).get("labels") or {})]
            if not selected:
                failures.append(f"references: {where}: selector {spec['selector']} matches no pod template")
            for port in spec.get("ports", []):
                target = port.get("targetPort", port["port"])
                missing = [w["metadata"]["name"] for w, t in selected if target not in _container_ports(t)]
                if missing:
                    failures.append(f"references: {where}: targetPort {target!r} is not a container port of "
                                    f"{', '.join(missing)}")
        elif kind == "Ingress":
            backends = [spec["defaultBackend"]] if spec.get("defaultBackend") else []
            for rule in spec.get("rules", []):
                backends += [p["backend"] for p in (rule.get("http") or {}).get("paths", [])]
            for backend in backends:
                service = backend.get("service")
                if not service:
                    continue
                target = index.get(("Service", ns, service["name"]))
                if target is None:
                    failures.append(f"references: {where}: backend Service {service['name']!r} does not exist")
                    continue
                port = service.get("port", {})
                names = {p.get("name") for p in target["spec"].get("ports", [])}
                numbers = {p["port"] for p in target["spec"].get("ports", [])}
                if ("name" in port and port["name"] not in names) or ("number" in port and port["number"] not in numbers):
                    failures.append(f"references: {where}: Service {service['name']!r} has no port {port}")
        elif kind == "HTTPRoute":
            for parent in spec.get("parentRefs", []):
                gateway = index.get(("Gateway", parent.get("namespace", ns), parent["name"]))
                if gateway is None:
                    failures.append(f"references: {where}: parent Gateway {parent['name']!r} does not exist")
                elif "sectionName" in parent and parent["sectionName"] not in {
                        listener["name"] for listener in gateway["spec"].get("listeners", [])}:
                    failures.append(f"references: {where}: Gateway {parent['name']!r} has no listener "
                                    f"{parent['sectionName']!r}")
            for rule in spec.get("rules", []):
                for backend in rule.get("backendRefs", []):
                    backend_kind = backend.get("kind", "Service")
                    if not exists(backend_kind, backend.get("namespace", ns), backend["name"]):
                        failures.append(f"references: {where}: backend {backend_kind} {backend['name']!r} does not exist")
                for f in rule.get("filters", []):
                    ref = f.get("extensionRef")
                    if ref and not exists(ref["kind"], ns, ref["name"]):
                        failures.append(f"references: {where}: filter {ref['kind']} {ref['name']!r} does not exist")
        elif kind == "TraefikService":
            for service in (spec.get("weighted") or {}).get("services", []):
                target = index.get(("Service", service.get("namespace", ns), service["name"]))
                if target is None:
                    failures.append(f"references: {where}: weighted Service {service['name']!r} does not exist")
                elif service.get("port") not in {q.get("name") for q in target["spec"].get("ports", [])} | \
                        {q["port"] for q in target["spec"].get("ports", [])}:
                    failures.append(f"references: {where}: Service {service['name']!r} has no port {service.get('port')!r}")
        elif kind == "Gateway":
            for listener in spec.get("listeners", []):
                for ref in (listener.get("tls") or {}).get("certificateRefs", []):
                    if not exists("Secret", ref.get("namespace", ns), ref["name"]):
                        failures.append(f"references: {where}: listener {listener['name']!r} certificate Secret "
                                        f"{ref['name']!r} is neither rendered nor provided by a Certificate")
        elif kind == "ServiceMonitor":
            namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [ns]
            services = [d for (k, n, _), d in index.items() if k == "Service" and n in namespaces
                        and _selects(spec.get("selector"), d["metadata"].get("labels") or {})]
            if not services:
                failures.append(f"references (dangling-servicemonitor): {where}: selects no Service")
            for endpoint in spec.get("endpoints", []):
                if "port" in endpoint and not any(endpoint["port"] in {p.get("name") for p in s["spec"].get("ports", [])}
                                                  for s in services):
                    failures.append(f"references: {where}: no selected Service has a port named {endpoint['port']!r}")
        elif kind == "Certificate":
            ref = spec.get("issuerRef", {})
            issuer_ns = "" if ref.get("kind", "Issuer") == "ClusterIssuer" else ns
            if not exists(ref.get("kind", "Issuer"), issuer_ns, ref.get("name", "")):
                failures.append(f"references: {where}: issuerRef {ref.get('kind')}/{ref.get('name')} does not exist")
        elif kind == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef", {})
            if not exists(ref.get("kind", ""), ns, ref.get("name", "")):
                failures.append(f"references: {where}: scaleTargetRef {ref.get('kind')}/{ref.get('name')} does not exist")
        elif kind == "PodDisruptionBudget":
            from .netpol import pods_of  # the pods operators create (PgBouncer's), from their source

            operator_pods = [e for e in pods_of([d for _, d in docs if d["kind"] in ("Cluster", "Pooler")]).values()
                             if e.namespace == ns]
            if not any(w["metadata"].get("namespace", "") == ns and w["kind"] in LONG_RUNNING_KINDS
                       and _selects(spec.get("selector"), (t.get("metadata") or {}).get("labels") or {})
                       for _, w, t in workloads) and not any(_selects(spec.get("selector"), e.labels)
                                                              for e in operator_pods):
                failures.append(f"references: {where}: selector matches no workload's pods")
    return failures


GATES = {
    "schema": schema_gate,
    "lint": lint_gate,
    "workloads": workloads_gate,
    "psa": psa_gate,
    "references": references_gate,
}


def _rel(path) -> str:
    text = str(path)
    return text.replace(str(ROOT) + "/", "")
