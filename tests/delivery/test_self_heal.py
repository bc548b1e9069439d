"""4 (part). On a synced environment: self-heal undoes a manual change, and the replica count the HPA
sets on a Rollout is not fought (ignoreDifferences with RespectIgnoreDifferences)."""
from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.delivery


def test_self_heal_undoes_a_manual_edit(stack, delivery):
    app = next(a for a, env in delivery.items() if env == "staging")
    ns = "kubechat-staging"
    stack.plane.kubectl("patch", "networkpolicy", "default-deny-all", "-n", ns, "--type", "merge",
                        "-p", json.dumps({"spec": {"policyTypes": ["Ingress"]}}))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        policy = stack.get("networkpolicies", "default-deny-all", ns)
        if sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"{app}: self-heal did not restore default-deny-all within 90 s")


def test_hpa_replicas_are_not_fought(stack, delivery):
    for app, env in delivery.items():
        ns = f"kubechat-{env}"
        for workload in ("kubechat-api", "kubechat-web"):
            hpa = stack.get("horizontalpodautoscalers", workload, ns)
            deadline = time.monotonic() + 60
            rollout = stack.get("rollouts.argoproj.io", workload, ns)
            while time.monotonic() < deadline and rollout["spec"]["replicas"] != hpa["spec"]["minReplicas"]:
                time.sleep(1)
                rollout = stack.get("rollouts.argoproj.io", workload, ns)
            assert rollout["spec"]["replicas"] == hpa["spec"]["minReplicas"] > 1, \
                f"{app}: the HPA did not scale {workload} to its minimum ({hpa.get('status')})"
        resources = stack.get("applications.argoproj.io", app)["status"]["resources"]
        rollouts = {r["name"]: r["status"] for r in resources if r["kind"] == "Rollout"}
        assert rollouts == {"kubechat-api": "Synced", "kubechat-web": "Synced"}, \
            f"{app}: the HPA's replica change made the Rollouts {rollouts}"
