"""#27: the in-place recovery's Argo CD and API steps, as `scripts/restore_manifest.py --in-place` prints them,
typed into a shell against the tier's real Argo CD (API server and CLI) and Argo Rollouts: step 1 turns the
environment's auto-sync off (the Application found by the ApplicationSet's environment label) and the
ApplicationSet leaves it off; step 2 scales the API's Rollout to zero and waits until no API pod runs (before,
the steps scaled the Deployment, which is only the Rollout's template: the pods kept writing); steps 6 and 7
turn auto-sync back on and bring the API back, and the environment ends Synced and Healthy. The database
replacement itself (steps 3 to 5) needs CloudNativePG's operator, which does not run here (tests/test_pitr.py
shows the recovery on a real PostgreSQL)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from kubechat_tools.paths import ROOT

pytestmark = pytest.mark.delivery

ENV = "staging"
NS = f"kubechat-{ENV}"


def printed_steps() -> dict[int, list[str]]:
    """The command lines of each numbered step in the generated file's header."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "restore_manifest.py"), "--env", ENV, "--latest",
                             "--in-place"], capture_output=True, text=True, check=True)
    steps: dict[int, list[str]] = {}
    current = 0
    for line in result.stdout.splitlines():
        if not line.startswith("#"):
            break
        text = line[1:].strip()
        if text[:2].rstrip(".").isdigit() and text[1:3].startswith("."):
            current = int(text.split(".", 1)[0])
        elif line.startswith("#      ") and text.split()[0] in ("APP=$(argocd", "argocd", "kubectl"):
            steps.setdefault(current, []).append(text)
    return steps


def api_pods(stack) -> list[str]:
    out = stack.plane.kubectl("get", "pods", "-n", NS, "-l", "app.kubernetes.io/component=api", "-o", "name").stdout
    return out.split()


def test_the_in_place_recovery_stops_the_api_and_argo_cd_and_brings_them_back(stack, delivery):
    app = next(a for a, env in delivery.items() if env == ENV)
    steps = printed_steps()
    assert steps[1][0].startswith("APP=$(argocd app list -l kubechat.io/environment=staging")
    hpa = stack.get("horizontalpodautoscalers.autoscaling", "kubechat-api", NS)
    minimum = str(hpa["spec"]["minReplicas"])
    shell = {**os.environ, **stack.cli_env(), "KUBECONFIG": str(stack.plane.kubeconfig),
             "PATH": f"{stack.bin}:{stack.plane.bin}:{os.environ['PATH']}"}

    def run(lines: list[str]) -> None:
        script = "set -eu\n" + "\n".join(steps[1][:1] + [line.replace("<HPA minReplicas>", minimum) for line in lines])
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=shell, timeout=420)
        assert result.returncode == 0, f"{script}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"

    assert api_pods(stack), "the API runs before the procedure"
    run(steps[1][1:] + steps[2])  # auto-sync off; scale the Rollout to 0 and wait until no API pod is left
    assert api_pods(stack) == [], "API pods still run while the database would be replaced"
    assert stack.get("rollouts.argoproj.io", "kubechat-api", NS)["spec"]["replicas"] == 0
    time.sleep(15)  # the ApplicationSet controller reconciles meanwhile
    assert not (stack.get("applications.argoproj.io", app)["spec"].get("syncPolicy") or {}).get("automated"), \
        "auto-sync came back on: Argo CD would re-create an empty cluster while it is replaced"

    run([line for line in steps[6] if line.startswith("argocd ")] + steps[7])  # auto-sync on; the API back
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(api_pods(stack)) < int(minimum):
        time.sleep(2)
    assert len(api_pods(stack)) >= int(minimum), "the API did not come back"
    assert (stack.get("applications.argoproj.io", app)["spec"].get("syncPolicy") or {}).get("automated")
    stack.wait_app(app, lambda a: a["status"].get("health", {}).get("status") == "Healthy"
                   and a["status"].get("sync", {}).get("status") == "Synced", 420, "Synced and Healthy again")
