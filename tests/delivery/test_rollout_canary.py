"""5. The canary, end to end with the real controllers: a release of staging is synced by Argo CD, the
Rollouts controller runs its canary with the rendered AnalysisTemplates, and a real Prometheus answers
their queries. The API's series come from a traffic exporter serving them for the canary's pod-template
hash (tests/testbed/canary.py). The web's come from the real front door: Traefik (testbed.traefik) serves the
rendered Gateway, HTTPRoute and TraefikService split that Argo Rollouts moves, in front of the web pods' port
(testbed.web_traffic), with users' requests sent through it all along; Prometheus scrapes Traefik's own
/metrics. A healthy canary is promoted (and the PostSync smoke test runs only after it), the web pods seeing
the split's weights; a canary answering errors, or answering slowly, is aborted while the stable version
keeps serving; a web canary failing about 3 % of its requests is aborted by the web analysis reading
Traefik's series; a canary with no data is not promoted.

What the test changes in the commit it delivers, and only that: the image tag (the release), the
AnalysisTemplates' Prometheus address (the test's Prometheus on loopback instead of the
kube-prometheus-stack Service) and, to keep the tier short, their initialDelay/interval (10 s instead
of 1 m) and the canary pause (30 s instead of 2 m; still longer than the initial delay, as the render
check check_canary_measured requires). The queries and the success and failure conditions are the
rendered ones."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from testbed import traefik
from testbed.canary import PrometheusServer, TrafficExporter
from testbed.argocd import synced_healthy
from testbed.web_traffic import WebLoad, WebPods
from kubechat_tools.manifests import load_dir
from kubechat_tools.paths import DIST, ROOT
from kubechat_tools.release import overlay_version, previous_release_commit

from .conftest import stage_under_test

pytestmark = pytest.mark.delivery

ENV = "staging"
NS = f"kubechat-{ENV}"
TEST_TIMING = {"initialDelay": "10s", "interval": "10s"}
TEST_PAUSE = "30s"


def web_canary_weight(stack) -> int:
    """The canary's weight in the web host's live TraefikService split (Argo Rollouts moves it)."""
    split = stack.get("traefikservices.traefik.io", "kubechat-web", NS)
    return next(s["weight"] for s in split["spec"]["weighted"]["services"] if s["name"] == "kubechat-web-canary")


def web_host() -> str:
    return next(d for d in load_dir(DIST / "rendered" / ENV)
                if d["kind"] == "HTTPRoute" and d["metadata"]["name"] == "kubechat-web")["spec"]["hostnames"][0]


@pytest.fixture(scope="module")
def front_door(stack, delivery, tmp_path_factory):
    """Traefik in a pod network of this module's own, the web pods' port served there, users' requests to the
    web host through it (module docstring)."""
    with traefik.in_own_network(stack.plane, tmp_path_factory.mktemp("traefik")) as (proxy, network):
        pods = load = None
        try:
            pods = WebPods(stack.plane, network)
            load = WebLoad((proxy.ip, proxy.port("websecure")), web_host())
            yield proxy, pods, load
        finally:
            for part in (load, pods):
                if part is not None:
                    part.stop()


@pytest.fixture(scope="module")
def measured(stack, front_door):
    proxy, pods, load = front_door
    exporter = TrafficExporter(NS)
    prometheus = PrometheusServer(binary=stack.bin / "prometheus", workdir=stack.workdir / "prometheus",
                                  exporter_port=exporter.port, traefik_metrics_port=proxy.port("metrics"))
    try:
        prometheus.start()
        yield exporter, prometheus
    finally:
        prometheus.stop()
        exporter.stop()


def canary_patches(prometheus_url: str, rendered: list[dict] | None = None) -> list[dict]:
    """Kustomize patches of the test's changes (see the module's docstring) for `rendered` (default: this
    commit's render of the environment)."""
    rendered = rendered if rendered is not None else load_dir(DIST / "rendered" / ENV)
    patches = []
    for template in (d for d in rendered if d["kind"] == "AnalysisTemplate"):
        ops = []
        for index, _ in enumerate(template["spec"]["metrics"]):
            ops.append({"op": "replace", "path": f"/spec/metrics/{index}/provider/prometheus/address", "value": prometheus_url})
            ops += [{"op": "replace", "path": f"/spec/metrics/{index}/{k}", "value": v} for k, v in TEST_TIMING.items()]
        patches.append({"target": {"kind": "AnalysisTemplate", "name": template["metadata"]["name"]},
                        "patch": yaml.safe_dump(ops)})
    for rollout in (d for d in rendered if d["kind"] == "Rollout"):
        steps = rollout["spec"]["strategy"]["canary"]["steps"]
        ops = [{"op": "replace", "path": f"/spec/strategy/canary/steps/{i}/pause/duration", "value": TEST_PAUSE}
               for i, step in enumerate(steps) if "duration" in step.get("pause", {})]
        patches.append({"target": {"kind": "Rollout", "name": rollout["metadata"]["name"]}, "patch": yaml.safe_dump(ops)})
    return patches


def release(stack, prometheus: PrometheusServer, tag: str) -> str:
    """Staging's release `tag` (the commit under test with that image tag), measured by the test's Prometheus."""
    stage_under_test(stack.remote)
    path = stack.remote.work / "overlays" / ENV / "kustomization.yaml"
    doc = yaml.safe_load(path.read_text())
    for image in doc["images"]:
        image["newTag"] = tag
    doc.setdefault("patches", []).extend(canary_patches(prometheus.url))
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    revision = stack.remote._commit(f"release {ENV} {tag}")
    take_new_commit(stack, revision)
    return revision


def take_new_commit(stack, revision: str) -> None:
    """What docs/upgrade.md tells the operator after an aborted canary: the failed sync is retried with
    backoff (up to minutes) and auto-sync waits for it, so terminate the retrying operation; the next
    auto-sync takes the new commit at once. Returns when an operation works on `revision`."""
    app = app_of(stack)
    stack.refresh(app)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        op = (stack.get("applications.argoproj.io", app).get("status") or {}).get("operationState") or {}
        if revision in (op.get("operation", {}).get("sync", {}).get("revision"), op.get("syncResult", {}).get("revision")):
            return
        if op.get("phase") == "Running" and "Retrying attempt" in (op.get("message") or ""):
            result = stack.argocd_cli("app", "terminate-op", app)
            assert result.returncode == 0, result.stderr
            stack.refresh(app)
        time.sleep(1)
    raise AssertionError(f"{app}: no sync of {revision[:8]} started within 240 s")


def app_of(stack) -> str:
    return next(a["metadata"]["name"] for a in stack.applications()
                if a["metadata"].get("labels", {}).get("kubechat.io/environment") == ENV)


def rollout(stack, name: str = "kubechat-api") -> dict:
    return stack.get("rollouts.argoproj.io", name, NS)


def wait(what: str, check, timeout: float, stack, workload: str = "kubechat-api", detail=lambda: ""):
    """Until `check()` is true; else fail with `workload`'s Rollout status, `detail()` and the controller's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_running()
        value = check()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"not {what} after {timeout:.0f} s: {workload} Rollout status:\n"
                         f"{yaml.safe_dump(rollout(stack, workload).get('status'))}\n{detail()}\nrollouts-controller log:\n"
                         f"{stack.log_tail('rollouts-controller', 20)}")


def web_detail(stack, front_door) -> str:
    """The web's AnalysisRuns' results, the requests the web pods answered per pod-template hash, and the
    statuses the users' requests got."""
    runs = json.loads(stack.plane.kubectl("get", "analysisruns.argoproj.io", "-n", NS, "-o", "json").stdout)["items"]
    results = {r["metadata"]["name"]: r["status"].get("metricResults") for r in runs
               if r["metadata"]["name"].startswith("kubechat-web-")}
    return (f"web AnalysisRuns: {yaml.safe_dump(results)}\nweb pods answered (by hash): {dict(front_door[1].counts())}"
            f"\nusers' requests (by status): {dict(front_door[2].statuses)}")


SEEN: set[str] = set()
"""Pod-template hashes of the releases this module already delivered."""


def start_canary(stack, exporter: TrafficExporter, stable: str, profile: str, expect: str | None = None) -> str:
    """Wait for the new release's pod-template hash (`expect`: a release delivered before, whose ReplicaSet
    is back) and give it traffic of the profile; returns the hash."""
    SEEN.add(stable)

    def new_hash():
        status = rollout(stack).get("status", {})
        current = status.get("currentPodHash")
        if expect:
            return current if current == expect else None
        return current if current and current not in SEEN else None
    canary = wait("a canary started", new_hash, 240, stack)
    SEEN.add(canary)
    exporter.set(canary, profile)
    # The stable pods keep answering well (what the stable version serves meanwhile); earlier canaries'
    # pods are gone (aborted and scaled down), so they serve nothing any more.
    exporter.set(stable, "healthy")
    for old in [h for h in exporter.profiles if h not in (stable, canary)]:
        exporter.set(old, "silent")
    return canary


def analysis_runs(stack, pod_hash: str, workload: str = "kubechat-api") -> list[dict]:
    out = stack.plane.kubectl("get", "analysisruns.argoproj.io", "-n", NS, "-l",
                              f"rollouts-pod-template-hash={pod_hash},rollout-type=Background", "-o", "json").stdout
    return [r for r in json.loads(out)["items"] if r["metadata"]["name"].startswith(f"{workload}-")]


def stable_keeps_serving(stack, stable: str) -> None:
    status = rollout(stack)["status"]
    assert status["stableRS"] == stable, f"the stable ReplicaSet changed: {status['stableRS']} (was {stable})"
    sets = json.loads(stack.plane.kubectl("get", "replicasets", "-n", NS, "-l",
                                          f"rollouts-pod-template-hash={stable}", "-o", "json").stdout)["items"]
    assert sets and (sets[0]["status"].get("readyReplicas") or 0) >= 1, "the stable version has no ready pod"


def web_sees_the_canary_weight(stack, pods: WebPods, web_stable: str) -> None:
    """While the web Rollout holds its canary step's weight in the live split, the web pods of each side answer
    that share of the requests Traefik sends them (the rendered step: setWeight 50)."""
    steps = rollout(stack, "kubechat-web")["spec"]["strategy"]["canary"]["steps"]
    weight = next(step["setWeight"] for step in steps if "setWeight" in step)
    wait("the web canary at its first weight", lambda: web_canary_weight(stack) == weight, 240, stack)
    canary = rollout(stack, "kubechat-web")["status"]["currentPodHash"]
    assert canary != web_stable
    before = pods.counts()
    time.sleep(8)
    assert web_canary_weight(stack) == weight, "the step ended while counting: the pause is too short"
    seen = pods.counts() - before
    total = seen[canary] + seen[web_stable]
    assert total >= 20 and sum(seen.values()) == total, f"requests by pod-template hash: {dict(seen)}"
    assert abs(seen[canary] / total - weight / 100) <= 0.15, (weight, dict(seen))


def web_canary_series(query_part: str) -> tuple[str, int]:
    """The rendered web analysis' sum over the canary Service's series whose matchers contain `query_part`
    (staging's namespace filled in), and its rate window in seconds."""
    template = next(d for d in load_dir(DIST / "rendered" / ENV)
                    if d["kind"] == "AnalysisTemplate" and d["metadata"]["name"] == "kubechat-web-canary")
    query = template["spec"]["metrics"][0]["provider"]["prometheus"]["query"].replace("{{args.namespace}}", NS)
    found = re.search(r"sum\(rate\(traefik_service_requests_total\{[^}]*" + re.escape(query_part) + r"\}\[(\d+)m\]\)\)",
                      query)
    assert found, query
    return found.group(0), int(found.group(1)) * 60


def web_window_clear(stack, prometheus: PrometheusServer, query_part: str, what: str) -> None:
    """Until the canary Service's series selected by `query_part` have nothing left in the rendered rate window."""
    expr, window = web_canary_series(query_part)
    value = lambda: prometheus.query(expr)  # noqa: E731
    wait(what, lambda: not value() or float(value()[0]["value"][1]) == 0, window + 60, stack, "kubechat-web")


def web_residue_gone(stack, prometheus: PrometheusServer) -> None:
    """What docs/upgrade.md ("After an aborted canary") tells the operator after an aborted web canary: Traefik's
    series of the canary Service carry no release, so for the rendered query's rate window after the abort they
    still hold the aborted release's failures, and a web canary measured then would be aborted by them. Returns
    once the failures are out of the window (found by running it: back-to-back releases failed here)."""
    expr, _ = web_canary_series('code=~"5.."')
    assert prometheus.query(expr) and float(prometheus.query(expr)[0]["value"][1]) > 0, \
        "no failures counted right after the abort"
    web_window_clear(stack, prometheus, 'code=~"5.."', "the aborted web canary's failures out of the rate window")


def test_canaries_promoted_aborted_or_held_by_their_measurements(stack, delivery, measured, front_door):
    exporter, prometheus = measured
    app = app_of(stack)
    stable = first = rollout(stack)["status"]["stableRS"]

    # A healthy canary: measured successful and promoted; the PostSync smoke test only after that. Meanwhile
    # the web pods see the weight Argo Rollouts set in the split, through Traefik.
    web_stable = rollout(stack, "kubechat-web")["status"]["stableRS"]
    revision = release(stack, prometheus, "1.0.1-healthy")
    canary = start_canary(stack, exporter, stable, "healthy")
    web_sees_the_canary_weight(stack, front_door[1], web_stable)
    wait("promoted", lambda: rollout(stack)["status"].get("stableRS") == canary, 240, stack)
    promoted_at = time.time()
    runs = analysis_runs(stack, canary)
    assert runs, "the canary ran without an AnalysisRun"
    measurements = [m for r in runs for metric in r["status"].get("metricResults", []) for m in metric.get("measurements", [])]
    assert measurements and all(m["phase"] == "Successful" for m in measurements), measurements
    assert not [r for r in runs if r["status"]["phase"] in ("Failed", "Error", "Inconclusive")]
    synced = stack.wait_app(app, synced_healthy(revision), 300, f"Synced and Healthy at {revision[:8]}")
    smoke = stack.get("jobs", "kubechat-smoke-test", NS)
    created = time.mktime(time.strptime(smoke["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert created >= promoted_at - 2, (
        f"the PostSync smoke test ran {promoted_at - created:.0f} s before the canary was promoted "
        f"(sync finished {synced['status']['operationState'].get('finishedAt')})")
    stable = canary

    # Canaries answering errors, or slowly: aborted by the metric that measures it; stable keeps serving.
    for profile, tag, metric in (("errors", "1.0.2-errors", "success-rate"), ("slow", "1.0.3-slow", "p95-latency")):
        release(stack, prometheus, tag)
        canary = start_canary(stack, exporter, stable, profile)
        wait(f"aborted ({profile})", lambda: rollout(stack)["status"].get("abort") is True
             and rollout(stack)["status"].get("currentPodHash") == canary, 180, stack)
        runs = analysis_runs(stack, canary)
        failed = {m["name"] for r in runs for m in r["status"].get("metricResults", []) if m["phase"] == "Failed"}
        assert metric in failed, f"{profile}: aborted, but not by {metric}: {[r['status'] for r in runs]}"
        stable_keeps_serving(stack, stable)

    # A web release whose pods fail 1 request in 30 (from their first), among healthy stable pods: Traefik counts the canary's
    # Service apart (the split Argo Rollouts moved), so its own success rate fails and the web's canary is
    # aborted; the API's canary of the same release is healthy.
    # The same window the other way: the earlier releases' healthy web canaries, in it, would dilute this one's
    # failures above 99 % (seen here when the releases came quickly). Released once they are out of it.
    web_window_clear(stack, prometheus, 'canary-http@kubernetescrd"', "the earlier web canaries' requests out of the rate window")
    release(stack, prometheus, "1.0.5-web-errors")
    canary = start_canary(stack, exporter, stable, "healthy")
    wait("web canary aborted", lambda: rollout(stack, "kubechat-web")["status"].get("abort") is True, 240, stack,
         "kubechat-web", lambda: web_detail(stack, front_door))
    web_canary = rollout(stack, "kubechat-web")["status"]["currentPodHash"]
    runs = [r for r in analysis_runs(stack, web_canary, "kubechat-web")]
    failed = [m for r in runs for m in r["status"].get("metricResults", []) if m["phase"] == "Failed"]
    assert [m["name"] for m in failed] == ["success-rate"], [r["status"] for r in runs]
    measured_rate = float(failed[0]["measurements"][-1]["value"].strip("[]"))
    assert 0.8 < measured_rate < 0.99, f"the canary's success rate as Traefik counted it: {measured_rate}"
    assert front_door[1].counts()[web_canary] > 0, "the web canary's pods never answered through Traefik"
    # The aborted web canary never became the stable version (the web's earlier healthy canaries may have).
    assert rollout(stack, "kubechat-web")["status"]["stableRS"] != web_canary
    web_residue_gone(stack, prometheus)
    # The API's canary of that release answers well: promoted, whatever the web's does.
    wait("the API's healthy canary promoted", lambda: rollout(stack)["status"].get("stableRS") == canary, 240, stack)
    stable = canary

    # A canary with no data: Inconclusive, the rollout pauses and is not promoted (well past its pause).
    release(stack, prometheus, "1.0.4-silent")
    canary = start_canary(stack, exporter, stable, "silent")
    wait("held as inconclusive", lambda: any(c.get("reason") == "InconclusiveAnalysisRun"
                                             for c in rollout(stack)["status"].get("pauseConditions") or []), 180, stack)
    time.sleep(40)
    stable_keeps_serving(stack, stable)
    assert rollout(stack)["status"].get("stableRS") != canary
    # The sync waits on the held canary (Argo CD treats a Suspended Rollout as still running): the operator
    # decides, as docs/upgrade.md says. Here: abort, as `kubectl argo rollouts abort` does.
    stack.plane.kubectl("patch", "rollouts.argoproj.io", "kubechat-api", "-n", NS, "--subresource", "status",
                        "--type", "merge", "-p", '{"status":{"abort":true}}')
    wait("aborted by the operator", lambda: rollout(stack)["status"].get("abort") is True
         and rollout(stack)["status"].get("phase") == "Degraded", 60, stack)
    stable_keeps_serving(stack, stable)

    # Back to the commit under test's release (what the next tests expect), measured healthy.
    revision = release(stack, prometheus, overlay_version(ENV))
    canary = start_canary(stack, exporter, stable, "healthy", expect=first)
    wait("promoted back to the commit under test's release", lambda: rollout(stack)["status"].get("stableRS") == canary, 300, stack)
    stack.wait_app(app, synced_healthy(revision), 300, f"Synced and Healthy at {revision[:8]}")


def run_documented(stack, section: str, containing: str) -> None:
    """Run the command lines of docs/platform.md's `section` that contain `containing`, for this environment, as
    an operator types them: a shell with kubectl on PATH and the cluster's kubeconfig. Lines for what the tier
    does not run (Argo CD's platform Applications, namespaces of the platform) are not among them."""
    text = (ROOT / "docs" / "platform.md").read_text()
    body = text.split(f"### {section}", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in body.splitlines() if line.strip().startswith("kubectl ") and containing in line]
    assert lines, f"docs/platform.md, {section}: no command with {containing!r}"
    env = {**os.environ, "PATH": f"{stack.plane.bin}:{os.environ['PATH']}", "KUBECONFIG": str(stack.plane.kubeconfig)}
    for line in lines:
        result = subprocess.run(["bash", "-c", line.replace("<env>", ENV)], capture_output=True, text=True, env=env,
                                timeout=60)
        assert result.returncode == 0, f"{line}: {result.stderr}"


def data_uids(stack) -> dict[str, str]:
    """UIDs of what holds data or must never be recreated (Prune=false, Delete=false): the database Cluster,
    every PVC, the Namespace. A changed UID is a deletion."""
    out = stack.plane.kubectl("get", "clusters.postgresql.cnpg.io,persistentvolumeclaims", "-n", NS, "-o",
                              "jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.uid}{\"\\n\"}{end}").stdout
    uids = dict(line.split("=", 1) for line in out.split())
    uids[f"Namespace/{NS}"] = stack.get("namespaces", NS, "")["metadata"]["uid"]
    return uids


def deliver(stack, exporter: TrafficExporter, prometheus: PrometheusServer, commit: str | None, message: str) -> str:
    """Push `commit`'s tree (None: the commit under test) with the test's measurement patches, then follow
    the sync, giving every new release of the API healthy traffic; returns the revision once Synced/Healthy."""
    if commit:
        stack.remote.stage_commit(commit)
    else:
        stage_under_test(stack.remote)
    tree = stack.remote.work
    path = tree / "overlays" / ENV / "kustomization.yaml"
    doc = yaml.safe_load(path.read_text())
    doc.setdefault("patches", []).extend(canary_patches(prometheus.url, load_dir(tree / "dist" / "rendered" / ENV)))
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    revision = stack.remote._commit(message)
    take_new_commit(stack, revision)
    follow(stack, exporter, synced_healthy(revision), f"Synced and Healthy at {revision[:8]} ({message})")
    return revision


def follow(stack, exporter: TrafficExporter, predicate, what: str, timeout: float = 420) -> dict:
    app = app_of(stack)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = (rollout(stack).get("status") or {}).get("currentPodHash")
        if current and exporter.profiles.get(current, ("",))[0] != "healthy":
            exporter.set(current, "healthy")
        state = stack.get("applications.argoproj.io", app)
        if predicate(state):
            return state
        time.sleep(1)
    return stack.wait_app(app, predicate, 1, what)


def test_upgrade_and_both_documented_rollbacks_keep_the_data(stack, delivery, measured):
    """4. The previous release, upgraded to this commit, rolled back by git revert, upgraded again, rolled
    back with Argo CD's history (auto-sync off first, as docs/upgrade.md and scripts/release.py do; the
    ApplicationSet leaves that alone) and returned to git: the database Cluster, every PVC and the
    Namespace keep their UIDs throughout."""
    exporter, prometheus = measured
    app = app_of(stack)
    kept = data_uids(stack)
    assert any(k.startswith("Cluster/") for k in kept) and any(k.startswith("PersistentVolumeClaim/") for k in kept), kept
    previous = previous_release_commit(ENV)

    steps = [("the previous release", previous), ("upgrade to this commit", None),
             ("rollback: git revert", previous), ("upgrade again", None)]
    revisions = {}
    for label, commit in steps:
        old_door = stack.get("ingresses", "kubechat", NS)
        if label == "upgrade to this commit" and old_door:
            # The previous release serves through ingress-nginx: docs/platform.md's move to Traefik, step 1.
            run_documented(stack, "Moving a running cluster from ingress-nginx", "annotate ingress")
        revisions[label] = deliver(stack, exporter, prometheus, commit, label)
        assert data_uids(stack) == kept, f"{label}: a data-holding object was recreated"
        if label == "upgrade to this commit" and old_door:
            # Both front doors serve until DNS moves: the annotated Ingress stayed, the Gateway and its routes
            # are live beside it (Synced/Healthy: Traefik's stand-in accepted them).
            assert (stack.get("ingresses", "kubechat", NS) or {}).get("metadata", {}).get("uid") == \
                old_door["metadata"]["uid"], "the upgrade pruned the Ingress users still reach"
            assert stack.get("gateways.gateway.networking.k8s.io", "kubechat", NS)
            assert stack.get("httproutes.gateway.networking.k8s.io", "kubechat-api", NS)
            # Step 4, once DNS has moved: the old Ingress goes (the controller's Application is the platform's).
            run_documented(stack, "Moving a running cluster from ingress-nginx", "delete ingress")
            assert stack.get("ingresses", "kubechat", NS) is None
        if label == "upgrade again":
            # Without step 1 the upgrade prunes the Ingress at once: why the procedure annotates it first.
            assert stack.get("ingresses", "kubechat", NS) is None
    live = stack.get("analysistemplates.argoproj.io", "kubechat-web-canary", NS)["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    assert live == next(d for d in load_dir(DIST / "rendered" / ENV) if d["metadata"]["name"] == "kubechat-web-canary")[
        "spec"]["metrics"][0]["provider"]["prometheus"]["query"], "the upgrade did not apply this commit's template"

    # Argo CD's history rollback: refused while auto-sync is on, so the documented procedure turns it off.
    history = stack.get("applications.argoproj.io", app)["status"]["history"]
    # An entry still in the history (Argo CD keeps the last ten: earlier tests' syncs push the first ones out).
    refused = stack.argocd_cli("app", "rollback", app, str(history[0]["id"]))
    assert refused.returncode != 0 and "auto-sync is enabled" in refused.stderr, refused
    target = next(h for h in reversed(history) if h["revision"] == revisions["rollback: git revert"])
    # The documented procedure: scripts/release.py rollback-argocd (auto-sync off, then argocd app rollback).
    # It waits for the rollback's sync, which may run a canary: followed (and measured) meanwhile.
    script = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "release.py"), "rollback-argocd", "--app", app,
                               "--to", str(target["id"])], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=stack.cli_env())
    follow(stack, exporter, lambda state: script.poll() is not None, "rollback-argocd finished", timeout=600)
    out, err = script.communicate()
    assert script.returncode == 0, out[-2000:] + err[-3000:]
    time.sleep(15)  # the ApplicationSet controller reconciles meanwhile; it must not turn auto-sync back on
    assert not (stack.get("applications.argoproj.io", app)["spec"].get("syncPolicy") or {}).get("automated"), \
        "the ApplicationSet turned auto-sync back on: the emergency rollback would be undone"

    def rolled_back(state: dict) -> bool:
        status = state.get("status", {})
        op = status.get("operationState") or {}
        return (op.get("phase") == "Succeeded" and op.get("syncResult", {}).get("revision") == target["revision"]
                and status.get("health", {}).get("status") == "Healthy")
    follow(stack, exporter, rolled_back, f"rolled back to history {target['id']}")
    assert data_uids(stack) == kept, "Argo CD's rollback recreated a data-holding object"
    assert stack.get("applications.argoproj.io", app)["status"]["sync"]["status"] == "OutOfSync", \
        "after a history rollback the environment differs from git until the release is reverted there"

    # Back to git: auto-sync on again, as release.py prints it; the environment returns to the branch head.
    printed = out.strip().splitlines()[-1].split()
    assert printed[:2] == ["argocd", "app"] and "automated" in printed, out
    on = stack.argocd_cli(*printed[1:])
    assert on.returncode == 0, on.stderr
    follow(stack, exporter, synced_healthy(revisions["upgrade again"]), "back at the branch head")
    assert data_uids(stack) == kept
