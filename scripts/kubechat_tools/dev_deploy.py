"""The laptop loop without Argo CD (`make dev-deploy`, `make dev-upgrade`): deploy overlays/dev to the
current kubectl context the way Argo CD syncs an environment, so it works on a fresh cluster and again
after every version or schema bump.

- Waves in Argo CD's order (kubechat_deploy.delivery.sync); each wave is applied server-side and waited for
  before the next: the database is Ready before the migration runs, the migration has completed
  before the API rolls.
- Hooks as Argo CD runs them: a Sync hook with BeforeHookCreation is deleted and recreated (a Job's
  pod template is immutable, so re-applying a changed one fails), PostSync hooks run after the last
  wave, SyncFail hooks only when a wave fails.
- `--api-image` / `--web-image` deploy locally built images instead of the overlay's (`make dev-build`
  builds them from a KubeChat checkout; the laptop's runtime must see the image, as Rancher Desktop's
  does).

Every kubectl command is printed before it runs; `--dry-run` prints them and changes nothing.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import yaml


from kubechat_deploy.delivery.sync import HOOK, HOOK_DELETE_POLICY, WAVE  # noqa: E402
from kubechat_tools.paths import BIN, ROOT  # noqa: E402

NAMESPACE = "kubechat-dev"
IMAGES = {"api": "ghcr.io/kubechat/kubechat-api", "web": "ghcr.io/kubechat/kubechat-web"}


class DeployError(RuntimeError):
    pass


def render(overlay: Path) -> list[dict]:
    result = subprocess.run([str(BIN / "kustomize"), "build", str(overlay)], capture_output=True, text=True)
    if result.returncode != 0:
        raise DeployError(f"kustomize build {overlay} failed:\n{result.stderr}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def with_images(docs: list[dict], images: dict[str, str]) -> list[dict]:
    """Replace KubeChat's images (any tag or digest) by locally built ones, e.g. {'api': 'kubechat-api:dev'}."""
    text = yaml.safe_dump_all(docs, sort_keys=False)
    for component, image in images.items():
        if image:
            lines = []
            for line in text.splitlines():
                is_image = line.lstrip().startswith(("image: ", "- image: "))
                if is_image and (f"{IMAGES[component]}:" in line or f"{IMAGES[component]}@" in line):
                    line = line[:line.index("image: ") + len("image: ")] + image
                lines.append(line)
            text = "\n".join(lines) + "\n"
    return [d for d in yaml.safe_load_all(text) if d]


def running_local_image(kubectl: "Kubectl", component: str) -> str:
    """The image the component's Deployment runs now, if it is a locally built one (not the release's)."""
    result = kubectl("get", "deployment", f"kubechat-{component}", "-n", NAMESPACE, "-o",
                     "jsonpath={.spec.template.spec.containers[0].image}", check=False)
    image = result.stdout.strip()
    return image if image and not image.startswith(IMAGES[component]) else ""


def plan(docs: list[dict]) -> tuple[list[tuple[int, list[dict]]], list[dict], list[dict]]:
    """(waves in order with their objects and Sync hooks, PostSync hooks, SyncFail hooks)."""
    waves: dict[int, list[dict]] = {}
    post, failed = [], []
    for doc in docs:
        annotations = doc["metadata"].get("annotations") or {}
        hook = annotations.get(HOOK)
        if hook == "PostSync":
            post.append(doc)
        elif hook == "SyncFail":
            failed.append(doc)
        else:  # resources and Sync/PreSync hooks run in their wave
            waves.setdefault(int(annotations.get(WAVE, "0")), []).append(doc)
    ordered = [(wave, sorted(items, key=lambda d: d["kind"] != "Namespace")) for wave, items in sorted(waves.items())]
    return ordered, post, failed


class Kubectl:
    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        print("+ kubectl " + " ".join(args), flush=True)
        if self.dry_run:
            return subprocess.CompletedProcess(args, 0, "", "")
        result = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True)
        if result.stdout:
            print(result.stdout, end="", flush=True)
        if check and result.returncode != 0:
            raise DeployError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        if result.stderr:
            print(result.stderr, end="", file=sys.stderr, flush=True)
        return result


def ref(doc: dict) -> list[str]:
    group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
    kind = f"{doc['kind'].lower()}.{group}" if group else doc["kind"].lower()
    namespace = doc["metadata"].get("namespace")
    return [kind, doc["metadata"]["name"]] + (["-n", namespace] if namespace else [])


def apply(kubectl: Kubectl, docs: list[dict]) -> None:
    for doc in docs:
        annotations = doc["metadata"].get("annotations") or {}
        if HOOK in annotations and "BeforeHookCreation" in annotations.get(HOOK_DELETE_POLICY, ""):
            # foreground: the old run's pods are gone too (quota, no two migrations side by side), as Argo CD deletes
            kubectl("delete", *ref(doc), "--ignore-not-found", "--cascade=foreground", "--wait=true")
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager", "kubechat-dev-deploy", "-f", "-",
            input=yaml.safe_dump_all(docs))


def wait(kubectl: Kubectl, docs: list[dict], timeout: int) -> None:
    """What Argo CD's health checks wait for, per kind."""
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        namespace = ["-n", doc["metadata"].get("namespace", NAMESPACE)]
        if kind == "Cluster" and doc["apiVersion"].startswith("postgresql.cnpg.io/"):
            kubectl("wait", "--for=condition=Ready", f"clusters.postgresql.cnpg.io/{name}", *namespace,
                    f"--timeout={timeout}s")
        elif kind in ("Deployment", "StatefulSet"):
            kubectl("rollout", "status", f"{kind.lower()}/{name}", *namespace, f"--timeout={timeout}s")
        elif kind == "Job":
            wait_job(kubectl, name, namespace, timeout)


def wait_job(kubectl: Kubectl, name: str, namespace: list[str], timeout: int) -> None:
    if kubectl.dry_run:
        kubectl("wait", "--for=condition=Complete", f"job/{name}", *namespace, f"--timeout={timeout}s")
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conditions = kubectl("get", f"job/{name}", *namespace, "-o",
                             "jsonpath={range .status.conditions[*]}{.type}={.status} {end}", check=False).stdout
        if "Complete=True" in conditions:
            return
        if "Failed=True" in conditions:
            raise DeployError(f"job {name} failed: kubectl -n {NAMESPACE} logs job/{name}")
        time.sleep(2)
    raise DeployError(f"job {name} did not complete within {timeout} s")


def deploy(docs: list[dict], kubectl: Kubectl, timeout: int) -> None:
    waves, post, failed = plan(docs)
    try:
        for wave, items in waves:
            print(f"dev-deploy: wave {wave}: {len(items)} object(s)", flush=True)
            apply(kubectl, items)
            wait(kubectl, items, timeout)
        if post:
            print(f"dev-deploy: post-sync: {', '.join(d['metadata']['name'] for d in post)}", flush=True)
            apply(kubectl, post)
            wait(kubectl, post, timeout)
    except DeployError as error:
        if failed:
            print(f"dev-deploy: FAILED: {error}", file=sys.stderr, flush=True)
            print("dev-deploy: running the sync-failure hook", file=sys.stderr, flush=True)
            try:
                apply(kubectl, failed)
            except DeployError as hook_error:  # never hides the failure it reports
                print(f"dev-deploy: the sync-failure hook failed too: {hook_error}", file=sys.stderr, flush=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlay", type=Path, default=ROOT / "overlays" / "dev")
    parser.add_argument("--api-image", default="", help="a locally built API image, e.g. kubechat-api:dev")
    parser.add_argument("--web-image", default="", help="a locally built web image, e.g. kubechat-web:dev")
    parser.add_argument("--keep-local-images", action="store_true",
                        help="keep a locally built image already running for a component not given above")
    parser.add_argument("--timeout", type=int, default=600, help="seconds to wait for each wave (default 600)")
    parser.add_argument("--dry-run", action="store_true", help="print the kubectl commands, change nothing")
    args = parser.parse_args(argv)
    for name in ("api_image", "web_image"):
        value = getattr(args, name)
        if value and (" " in value or ":" not in value.split("/")[-1] and "@" not in value):
            print(f"dev-deploy: --{name.replace('_', '-')}={value!r}: give a tagged image such as kubechat-api:dev",
                  file=sys.stderr)
            return 2
    images = {"api": args.api_image, "web": args.web_image}
    try:
        if args.keep_local_images:
            for component, image in images.items():
                if not image:
                    images[component] = running_local_image(Kubectl(args.dry_run), component)
        docs = with_images(render(args.overlay), images)
        deploy(docs, Kubectl(args.dry_run), args.timeout)
    except DeployError as error:
        print(f"dev-deploy: {error}", file=sys.stderr)
        return 1
    print("dev-deploy: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
