"""Pre-upgrade and environment checks. Prints what is missing or would break, exits 1 if anything does.

  preflight.py --kubernetes-version 1.34      offline: every rendered environment and platform piece
                                              against that Kubernetes version's API schemas (removed or
                                              changed APIs show up before the cluster upgrade)
  preflight.py --release                      offline: staging, production and the platform are ready for
                                              a real release: no example value (host, e-mail, repository,
                                              bucket) is left, production's KubeChat images carry digests
  preflight.py --cluster [--env production]   live (kubectl, current context): Kubernetes version in the
                                              supported range, the pinned CRDs served, the operators
                                              running, the storage and ingress classes present
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
from kubechat_tools.manifests import load_dir  # noqa: E402
from kubechat_tools.paths import DIST, ENVIRONMENTS  # noqa: E402

SUPPORTED = ((1, 30), (1, 37))  # 1.30: the first with ValidatingAdmissionPolicy v1
OPERATORS = {  # namespace -> deployments that must be available
    "cert-manager": ["cert-manager", "cert-manager-webhook"],
    "cnpg-system": ["cloudnative-pg"],
    "external-secrets": ["external-secrets"],
    "traefik": ["traefik"],
    "argo-rollouts": ["argo-rollouts"],
    "kyverno": ["kyverno-admission-controller"],
    "trivy-system": ["trivy-operator"],
}


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
    for namespace, deployments in OPERATORS.items():
        for name in deployments:
            try:
                status = kubectl("get", "deployment", name, "-n", namespace).get("status", {})
                if not status.get("availableReplicas"):
                    problems.append(f"{namespace}/{name} has no available replica")
            except RuntimeError:
                problems.append(f"operator {namespace}/{name} is not running")
    docs = load_dir(DIST / "rendered" / env)
    classes = {c["metadata"]["name"] for c in kubectl("get", "storageclass")["items"]}
    wanted_classes = {d["spec"]["storage"]["storageClass"] for d in docs
                      if d["kind"] == "Cluster" and d["spec"].get("storage", {}).get("storageClass")}
    for name in sorted(wanted_classes - classes):
        problems.append(f"StorageClass {name} does not exist (set it in overlays/{env}/database.yaml)")
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
