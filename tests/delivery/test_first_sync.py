"""2. Every environment Argo CD delivers goes from nothing to Synced and Healthy under the real Argo CD
and Argo Rollouts: waves in order, the migration Sync hook after the database and before the workloads,
the PostSync smoke test after the Rollouts; what Argo CD manages is exactly dist/rendered/<env>."""
from __future__ import annotations

import json

import pytest

from kubechat_deploy.delivery.sync import HOOK

pytestmark = pytest.mark.delivery


def live(stack, kind: str, name: str, namespace: str) -> dict:
    found = stack.get(kind, name, namespace)
    assert found, f"{kind}/{name} does not exist in {namespace}"
    return found


def condition_time(obj: dict, kind: str, status: str = "True") -> str:
    for condition in obj.get("status", {}).get("conditions") or []:
        if condition["type"] == kind and condition["status"] == status:
            return condition["lastTransitionTime"]
    raise AssertionError(f"{obj['kind']}/{obj['metadata']['name']} has no condition {kind}={status}")


def identity(doc: dict) -> tuple[str, str, str, str]:
    api = doc["apiVersion"]
    return (api.split("/")[0] if "/" in api else "", doc["kind"], doc["metadata"].get("namespace", ""),
            doc["metadata"]["name"])


def test_every_delivered_environment_synced_and_healthy(stack, delivery, head):
    for app, env in delivery.items():
        status = stack.get("applications.argoproj.io", app)["status"]
        assert status["sync"]["status"] == "Synced" and status["health"]["status"] == "Healthy", app
        hooks = {r["name"]: r for r in status["operationState"]["syncResult"]["resources"] if r.get("hookType")}
        for name in ("kubechat-migrate", "kubechat-smoke-test"):
            assert hooks[name]["hookPhase"] == "Succeeded", (app, hooks[name])
        assert "kubechat-sync-failed" not in hooks, f"{app}: the SyncFail hook ran on a good sync"


def test_waves_in_order(stack, delivery):
    for app, env in delivery.items():
        ns = f"kubechat-{env}"
        database_ready = condition_time(live(stack, "clusters.postgresql.cnpg.io", "kubechat-db", ns), "Ready")
        migration = live(stack, "jobs", "kubechat-migrate", ns)
        assert migration["metadata"]["creationTimestamp"] >= database_ready, \
            f"{app}: the migration started before the database was Ready"
        migrated = condition_time(migration, "Complete")
        for workload in ("kubechat-api", "kubechat-web"):
            rollout = live(stack, "rollouts.argoproj.io", workload, ns)
            assert rollout["metadata"]["creationTimestamp"] >= migrated, f"{app}: {workload} before the migration"
            deployment = live(stack, "deployments", workload, ns)
            assert deployment["metadata"]["creationTimestamp"] <= rollout["metadata"]["creationTimestamp"]
            assert rollout["status"]["phase"] == "Healthy", (app, workload, rollout["status"].get("message"))
            hpa = live(stack, "horizontalpodautoscalers", workload, ns)
            assert hpa["spec"]["scaleTargetRef"]["kind"] == "Rollout"
            assert hpa["metadata"]["creationTimestamp"] >= rollout["metadata"]["creationTimestamp"]
        smoke = live(stack, "jobs", "kubechat-smoke-test", ns)
        gateway = live(stack, "gateways.gateway.networking.k8s.io", "kubechat", ns)
        assert smoke["metadata"]["creationTimestamp"] >= gateway["metadata"]["creationTimestamp"], \
            f"{app}: the PostSync smoke test ran before the last wave"
        # The Rollouts' split Services and TraefikService came before the Rollouts that reference them.
        for workload in ("kubechat-api", "kubechat-web"):
            rollout = live(stack, "rollouts.argoproj.io", workload, ns)
            split = live(stack, "traefikservices.traefik.io", workload, ns)
            assert split["metadata"]["creationTimestamp"] <= rollout["metadata"]["creationTimestamp"], (app, workload)


def test_argocd_manages_exactly_the_rendered_environment(stack, delivery, renders):
    for app, env in delivery.items():
        rendered = renders[env]
        # Hooks stay after their run (BeforeHookCreation) and Argo CD lists them; SyncFail hooks run only on failure.
        wanted = {identity(d) for d in rendered if (d["metadata"].get("annotations") or {}).get(HOOK) != "SyncFail"}
        managed = {(r.get("group", ""), r["kind"], r.get("namespace", ""), r["name"])
                   for r in stack.get("applications.argoproj.io", app)["status"]["resources"]}
        assert managed == wanted, (f"{app}: Argo CD manages {sorted(managed - wanted)} beyond the render and "
                                   f"misses {sorted(wanted - managed)}")


IGNORED = {("Rollout", ("spec", "replicas"))}
"""The ApplicationSet's ignoreDifferences that a controller changes after the sync (the HPA)."""


def contained(rendered, actual, path=()) -> list[str]:
    """Fields of `rendered` that the live object lacks or holds differently."""
    if isinstance(rendered, dict):
        if not isinstance(actual, dict):
            return [f"{'/'.join(path)}: {json.dumps(actual)[:80]}"]
        return [m for key, value in rendered.items() for m in contained(value, actual.get(key), (*path, key))]
    if isinstance(rendered, list):
        if not isinstance(actual, list) or len(actual) != len(rendered):
            return [f"{'/'.join(path)}: list differs"]
        return [m for r, a in zip(rendered, actual) for m in contained(r, a, path)]
    return [] if rendered == actual or str(rendered) == str(actual) else \
        [f"{'/'.join(path)}: rendered {rendered!r}, live {actual!r}"]


def test_live_objects_hold_the_rendered_manifests(stack, delivery, renders):
    """What Argo CD applied is dist/rendered/<env>: every rendered field is live with its rendered value
    (the repo-server builds the overlays itself; a kustomize that renders differently shows up here)."""
    for app, env in delivery.items():
        problems = []
        for doc in renders[env]:
            if (doc["metadata"].get("annotations") or {}).get(HOOK) == "SyncFail":
                continue  # runs only when a sync fails (test_hook_failure.py)
            group, kind, namespace, name = identity(doc)
            resource = f"{kind.lower()}.{group}" if group else kind.lower()
            obj = stack.get(resource, name, namespace or f"kubechat-{env}")
            if obj is None:
                problems.append(f"{kind}/{name}: missing")
                continue
            expected = json.loads(json.dumps(doc))
            for ignored_kind, path in IGNORED:
                if kind == ignored_kind:
                    expected.get(path[0], {}).pop(path[1], None)
            expected.get("metadata", {}).get("annotations", {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
            if kind == "Secret":
                expected.pop("stringData", None)
            problems += [f"{kind}/{name}: {m}" for m in contained(expected, obj)]
        assert not problems, f"{app}:\n" + "\n".join(problems[:40])


def test_stays_synced_without_self_heal_churn(stack, delivery, head):
    """Right after its sync an environment is Synced and stays so: fields the API server or a CRD's
    schema fills in are no difference, so self-heal never re-syncs a commit that is already live."""
    import time

    started = {app: stack.get("applications.argoproj.io", app)["status"]["operationState"]["startedAt"]
               for app in delivery}
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        for app in delivery:
            status = stack.get("applications.argoproj.io", app)["status"]
            out_of_sync = [f"{r['kind']}/{r['name']}" for r in status["resources"] if r.get("status") != "Synced"]
            assert status["sync"]["status"] == "Synced", f"{app} turned {status['sync']['status']}: {out_of_sync}"
            assert status["operationState"]["startedAt"] == started[app], f"{app}: self-heal re-synced"
        time.sleep(2)


def test_rollout_pods_spread_by_their_own_revision(stack, delivery):
    """Pods of a Rollout carry rollouts-pod-template-hash, not pod-template-hash; the spread constraint
    must count only the pods of the same revision, so that key must be among its matchLabelKeys (the
    API server merges those keys into the live pod's labelSelector)."""
    for app, env in delivery.items():
        pods = json.loads(stack.plane.kubectl("get", "pods", "-n", f"kubechat-{env}", "-l",
                                              "app.kubernetes.io/component=api", "-o", "json").stdout)["items"]
        rollout_pods = [p for p in pods if "rollouts-pod-template-hash" in p["metadata"]["labels"]]
        assert rollout_pods, f"{app}: no pod of the API Rollout"
        for pod in rollout_pods:
            revision = pod["metadata"]["labels"]["rollouts-pod-template-hash"]
            for constraint in pod["spec"]["topologySpreadConstraints"]:
                expressions = constraint["labelSelector"].get("matchExpressions", [])
                assert {"key": "rollouts-pod-template-hash", "operator": "In", "values": [revision]} in expressions, \
                    f"{app}: {pod['metadata']['name']} spreads across revisions: {constraint}"
