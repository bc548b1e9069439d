"""Pre-upgrade and environment checks. Prints what is missing or would break, exits 1 if anything does.

  preflight.py --kubernetes-version 1.34      offline: every rendered environment and platform piece
                                              against that Kubernetes version's API schemas (removed or
                                              changed APIs show up before the cluster upgrade)
  preflight.py --release                      offline: staging, production and the platform are ready for
                                              a real release: no example value (host, e-mail, repository,
                                              bucket) is left, production's KubeChat images carry digests
  preflight.py --cluster [--env production]   live (kubectl, current context): Kubernetes version in the
                                              supported range, the pinned CRDs served, and of what
                                              the environment's render uses: its operators running,
                                              the metrics API, its storage classes and a default one,
                                              its gateway class, its secret stores Ready, DNS pods
                                              labelled as its NetworkPolicies expect
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path


from kubechat_tools.crds import load_crds  # noqa: E402
from kubechat_tools.gates import schema_gate  # noqa: E402
from kubechat_tools.manifests import load_dir, pod_template  # noqa: E402
from kubechat_tools.paths import DIST, ENVIRONMENTS  # noqa: E402

SUPPORTED = ((1, 30), (1, 37))  # 1.30: the first with ValidatingAdmissionPolicy v1
# What shows an operator runs (namespace and Deployments, as the platform's prerequisites install them), and the
# kinds of an environment's render that need it (group/Kind): an environment is told only of what it uses.
# Deployment names are the charts' for the release names dist/platform/prerequisites gives:
# kube-prometheus-stack's operator is "<fullname>-operator" (prometheus-community/helm-charts
# charts/kube-prometheus-stack/templates/_helpers.tpl, kube-prometheus-stack.operator.fullname); the barman
# plugin's is the release's name (cloudnative-pg/charts charts/plugin-barman-cloud/test/simple-deployment/
# 01-simple_deployment-assert.yaml).
OPERATORS = (
    ("cert-manager", "cert-manager", ("cert-manager", "cert-manager-webhook"),
     {"cert-manager.io/Certificate", "cert-manager.io/ClusterIssuer", "cert-manager.io/Issuer"}),
    ("cloudnative-pg", "cnpg-system", ("cloudnative-pg",), {"postgresql.cnpg.io/Cluster"}),
    ("plugin-barman-cloud", "cnpg-system", ("plugin-barman-cloud",), {"barmancloud.cnpg.io/ObjectStore"}),
    ("external-secrets", "external-secrets", ("external-secrets",), {"external-secrets.io/ExternalSecret"}),
    ("traefik", "traefik", ("traefik",), {"gateway.networking.k8s.io/Gateway", "gateway.networking.k8s.io/HTTPRoute"}),
    ("argo-rollouts", "argo-rollouts", ("argo-rollouts",), {"argoproj.io/Rollout"}),
    ("kyverno", "kyverno", ("kyverno-admission-controller",), {"kyverno.io/ClusterPolicy", "kyverno.io/Policy"}),
    ("kube-prometheus-stack", "monitoring", ("kube-prometheus-stack-operator",),
     {"monitoring.coreos.com/ServiceMonitor", "monitoring.coreos.com/PodMonitor", "monitoring.coreos.com/PrometheusRule"}),
    # The vulnerability alert reads the trivy-operator's metrics: needed where the render carries that rule.
    ("trivy-operator", "trivy-system", ("trivy-operator",), {"trivy"}),
)
METRICS_API = "v1beta1.metrics.k8s.io"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def offline(version: str, dist: Path) -> list[str]:
    folders = [dist / "rendered" / env for env in ENVIRONMENTS] + sorted((dist / "platform").glob("*"))
    if not all(f.is_dir() for f in folders):
        return [f"{dist}: run `make render` first"]
    print(f"preflight: checking {len(folders)} rendered folders against Kubernetes {version}", flush=True)
    return schema_gate(folders, versions=(f"{version}.0" if version.count(".") == 1 else version,))


def kubectl(*args: str) -> dict:
    result = subprocess.run(["kubectl", *args, "-o", "json"], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip())
    return json.loads(result.stdout)


def cluster(env: str) -> list[str]:
    if not shutil.which("kubectl"):
        return ["kubectl is not installed or not on PATH: install it and select the cluster's context"]
    problems = []
    try:
        server = json.loads(subprocess.run(["kubectl", "version", "-o", "json"], capture_output=True, text=True,
                                           check=True).stdout)["serverVersion"]
    except (subprocess.CalledProcessError, KeyError, json.JSONDecodeError) as error:
        return [f"cannot reach the cluster with kubectl: {error}"]
    minor = (int(server["major"]), int(server["minor"].rstrip("+")))
    if not SUPPORTED[0] <= minor <= SUPPORTED[1]:
        problems.append(f"Kubernetes {server['gitVersion']} is outside the supported {SUPPORTED[0][1]}..{SUPPORTED[1][1]}")
    served = {item["metadata"]["name"]: {v["name"] for v in item["spec"]["versions"] if v.get("served")}
              for item in kubectl("get", "crd")["items"]}
    for crd in load_crds():
        name = crd["metadata"]["name"]
        wanted = {v["name"] for v in crd["spec"]["versions"] if v.get("storage")}
        if name not in served:
            problems.append(f"CRD {name} is not installed")
        elif not wanted <= served[name]:
            problems.append(f"CRD {name} does not serve {sorted(wanted)} (serves {sorted(served[name])})")
    docs = load_dir(DIST / "rendered" / env)
    uses = kinds_of(docs)
    for name, namespace, deployments, needed_by in OPERATORS:
        if not uses & needed_by:
            continue
        for deployment in deployments:
            try:
                status = kubectl("get", "deployment", deployment, "-n", namespace).get("status", {})
                if not status.get("availableReplicas"):
                    problems.append(f"{namespace}/{deployment} has no available replica")
            except RuntimeError:
                problems.append(f"operator {namespace}/{deployment} is not running: {install(name)}")
    classes = {c["metadata"]["name"]: c for c in kubectl("get", "storageclass")["items"]}
    wanted_classes = {d["spec"]["storage"]["storageClass"] for d in docs
                      if d["kind"] == "Cluster" and d["spec"].get("storage", {}).get("storageClass")}
    for name in sorted(wanted_classes - set(classes)):
        problems.append(f"StorageClass {name} does not exist (set it in overlays/{env}/database.yaml)")
    unnamed = claims_without_class(docs)
    if unnamed and not any((c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true" for c in classes.values()):
        problems.append(f"no default StorageClass (annotation {DEFAULT_CLASS}: \"true\"): {', '.join(unnamed)} "
                        "claim volumes without naming a class; mark one StorageClass as the default")
    if "autoscaling/HorizontalPodAutoscaler" in uses:
        problems += metrics_api()
    problems += secret_stores(docs)
    problems += dns_pods(docs)
    try:
        gateway_classes = {c["metadata"]["name"]: c for c in kubectl("get", "gatewayclass")["items"]}
    except RuntimeError:
        gateway_classes = None
        problems.append("the Gateway API is not installed (no GatewayClass resource): the platform's "
                        "platform-gateway-api Application installs it")
    for gateway in (d for d in docs if d["kind"] == "Gateway" and gateway_classes is not None):
        name = gateway["spec"].get("gatewayClassName")
        accepted = any(c.get("type") == "Accepted" and c.get("status") == "True"
                       for c in gateway_classes.get(name, {}).get("status", {}).get("conditions", []))
        if name not in gateway_classes:
            problems.append(f"GatewayClass {name} does not exist (the platform's Traefik creates it)")
        elif not accepted:
            problems.append(f"GatewayClass {name} is not Accepted by its controller (is Traefik running?)")
    return problems


def kinds_of(docs: list[dict]) -> set[str]:
    """group/Kind of every object of a render ("autoscaling/HorizontalPodAutoscaler"), and "trivy" when a
    PrometheusRule reads the trivy-operator's metrics."""
    kinds = {f"{d['apiVersion'].rpartition('/')[0]}/{d['kind']}".lstrip("/") for d in docs}
    if any(d["kind"] == "PrometheusRule" and "trivy_" in json.dumps(d["spec"]) for d in docs):
        kinds.add("trivy")
    return kinds


def install(name: str) -> str:
    """What to install for an operator, at the version the platform pins (constructs/kubechat_deploy/versions.py)."""
    from kubechat_deploy.versions import operator

    pin = operator(name)
    chart = f"chart {pin.chart.name} {pin.chart.version} from {pin.chart.repo_url}" if pin.chart else "its CRDs"
    return (f"install {pin.name} {pin.version} ({chart}); the platform's Application platform-{pin.name} "
            "(dist/platform/prerequisites) installs it")


def claims_without_class(docs: list[dict]) -> list[str]:
    """Objects whose volumes are claimed without a storageClassName: the cluster's default class serves them."""
    found = []
    for d in docs:
        spec = (pod_template(d) or {}).get("spec") or {}
        for volume in spec.get("volumes") or []:
            claim = (volume.get("ephemeral") or {}).get("volumeClaimTemplate", {}).get("spec")
            if claim is not None and not claim.get("storageClassName"):
                found.append(f"{d['kind']} {d['metadata']['name']} (volume {volume['name']})")
    for d in docs:
        if d["kind"] == "PersistentVolumeClaim" and not d["spec"].get("storageClassName"):
            found.append(f"PersistentVolumeClaim {d['metadata']['name']}")
        claims = (d.get("spec") or {}).get("volumeClaimTemplates") or [] if d["kind"] == "StatefulSet" else []
        for claim in claims:
            if not claim["spec"].get("storageClassName"):
                found.append(f"StatefulSet {d['metadata']['name']} (claim {claim['metadata']['name']})")
    return sorted(set(found))


def metrics_api() -> list[str]:
    """The HorizontalPodAutoscalers read the resource metrics API; without it they report
    FailedGetResourceMetric and Argo CD assesses them Degraded, which fails the sync at their wave."""
    try:
        service = kubectl("get", "apiservice", METRICS_API)
    except RuntimeError:
        return [f"the resource metrics API ({METRICS_API}) is not served: the HorizontalPodAutoscalers cannot "
                f"scale and Argo CD reports them Degraded; {install('metrics-server')}"]
    available = any(c.get("type") == "Available" and c.get("status") == "True"
                    for c in service.get("status", {}).get("conditions", []))
    return [] if available else [f"APIService {METRICS_API} is not Available (is kube-system/metrics-server running? "
                                 f"{install('metrics-server')})"]


def secret_stores(docs: list[dict]) -> list[str]:
    """Every store the render's ExternalSecrets read from exists and is Ready."""
    readers: dict[tuple[str, str], list[str]] = {}
    for d in docs:
        if d["kind"] == "ExternalSecret":
            ref = d["spec"]["secretStoreRef"]
            readers.setdefault((ref.get("kind", "SecretStore"), ref["name"]), []).append(d["metadata"]["name"])
    problems = []
    for (kind, name), secrets in sorted(readers.items()):
        scope = [] if kind == "ClusterSecretStore" else ["-n", next(d["metadata"]["namespace"] for d in docs
                                                                   if d["kind"] == "ExternalSecret")]
        try:
            store = kubectl("get", kind.lower(), name, *scope)
        except RuntimeError:
            problems.append(f"{kind} {name} does not exist: the ExternalSecrets {', '.join(sorted(secrets))} read "
                            "from it (docs/install.md, the secret store)")
            continue
        if not any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in store.get("status", {}).get("conditions", [])):
            problems.append(f"{kind} {name} is not Ready (External Secrets cannot read the store: check its "
                            "provider settings and credentials)")
    return problems


def dns_pods(docs: list[dict]) -> list[str]:
    """The NetworkPolicies admit DNS only to pods with the labels they name: a cluster whose DNS pods carry
    others resolves nothing once they apply."""
    problems = []
    for d in docs:
        if d["kind"] != "NetworkPolicy":
            continue
        for rule in d["spec"].get("egress") or []:
            if not any(p.get("port") == 53 for p in rule.get("ports") or []):
                continue
            for peer in rule.get("to") or []:
                namespace = (peer.get("namespaceSelector") or {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                labels = (peer.get("podSelector") or {}).get("matchLabels") or {}
                if not namespace or not labels:
                    continue
                selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
                if not kubectl("get", "pods", "-n", namespace, "-l", selector)["items"]:
                    problems.append(f"no DNS pod in {namespace} carries {selector}, which NetworkPolicy "
                                    f"{d['metadata']['name']} admits DNS to: label the cluster's DNS pods so, or "
                                    "pods resolve nothing")
    return sorted(set(problems))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", help="check the render against this version, e.g. 1.34")
    parser.add_argument("--cluster", action="store_true", help="check the live cluster of the current context")
    parser.add_argument("--release", action="store_true",
                        help="refuse the repository's example site values in staging, production and the platform")
    parser.add_argument("--env", default="production", choices=ENVIRONMENTS)
    parser.add_argument("--dist", type=Path, default=DIST)
    args = parser.parse_args(argv)
    if not args.kubernetes_version and not args.cluster and not args.release:
        parser.error("give --kubernetes-version, --cluster, --release or several")
    problems = []
    if args.release:
        from kubechat_tools.site_values import release_problems

        environments = {env: load_dir(args.dist / "rendered" / env) for env in ("staging", "production")}
        platform = [d for folder in sorted((args.dist / "platform").glob("*")) for d in load_dir(folder)]
        problems += release_problems(environments, platform)
    if args.kubernetes_version:
        problems += offline(args.kubernetes_version, args.dist)
    if args.cluster:
        problems += cluster(args.env)
    for problem in problems:
        print(f"preflight: MISSING OR BROKEN: {problem}")
    print(f"preflight: {'passed' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
