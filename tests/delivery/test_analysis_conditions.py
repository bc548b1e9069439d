"""The canary AnalysisTemplates' conditions as Argo Rollouts v1.9.1 itself evaluates them
(utils/evaluate.EvaluateResult, through tools/rollouts/evaluate) on the vector its Prometheus provider
passes: a healthy canary passes, a bad one fails, and no data or 0/0 (NaN) never passes: it is
Inconclusive, which pauses the Rollout for a person."""
from __future__ import annotations

import subprocess

import pytest

from testbed.argocd import binaries
from kubechat_tools.manifests import load_dir
from kubechat_tools.paths import DIST

pytestmark = pytest.mark.delivery

NAN = "NaN"


def phase(metric: dict, *values: str) -> str:
    result = subprocess.run([str(binaries() / "evaluate"), metric["successCondition"], metric.get("failureCondition", ""),
                             *values], capture_output=True, text=True, check=True)
    return result.stdout.strip()


@pytest.mark.parametrize("env", ["staging", "production"])
def test_every_canary_metric_passes_good_fails_bad_and_never_passes_without_data(env):
    templates = [d for d in load_dir(DIST / "rendered" / env) if d["kind"] == "AnalysisTemplate"]
    assert {t["metadata"]["name"] for t in templates} == {"kubechat-api-canary", "kubechat-web-canary"}
    cases = {"success-rate": ("0.999", "0.5"), "p95-latency": ("0.1", "2.5")}
    for template in templates:
        for metric in template["spec"]["metrics"]:
            good, bad = cases[metric["name"]]
            name = f"{env} {template['metadata']['name']} {metric['name']}"
            assert phase(metric, good) == "Successful", name
            assert phase(metric, bad) == "Failed", name
            assert phase(metric) == "Inconclusive", f"{name}: no series must not pass"
            assert phase(metric, NAN) == "Inconclusive", f"{name}: 0/0 must not pass"
            assert metric["failureLimit"] == 0, f"{name}: the first failed measurement must abort"


def test_the_old_condition_passed_without_data():
    """The evaluator is the real one: the condition this project shipped before passed on no data."""
    old = {"successCondition": "len(result) == 0 || result[0] >= 0.99"}
    assert phase(old) == "Successful"
