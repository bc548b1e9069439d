"""GIVEN a real control plane, WHEN an operator follows docs/install.md (`make preflight CLUSTER=1`, then
the laptop targets `make dev-deploy`, `dev-status`, `dev-undeploy`), THEN each does what the docs say."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import pytest

from kubechat_tools.paths import ROOT

pytestmark = pytest.mark.integration

OPERATORS = {"cert-manager": ["cert-manager", "cert-manager-webhook"], "cnpg-system": ["cloudnative-pg", "plugin-barman-cloud"],
             "external-secrets": ["external-secrets"], "traefik": ["traefik"],
             "argo-rollouts": ["argo-rollouts"], "kyverno": ["kyverno-admission-controller"],
             "monitoring": ["kube-prometheus-stack-operator"], "trivy-system": ["trivy-operator"]}
DEV_NEVER_USES = {"cert-manager", "cert-manager-webhook", "plugin-barman-cloud", "external-secrets", "traefik", "argo-rollouts"}
STORE = "kubechat-production-secret-store"


def environ(cluster) -> dict[str, str]:
    """The operator's shell: kubectl on PATH, the cluster's kubeconfig as the current context."""
    return {**os.environ, "PATH": f"{cluster.bin}:{os.environ['PATH']}", "KUBECONFIG": str(cluster.kubeconfig)}


def make(cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-s", *args], cwd=ROOT, env=environ(cluster),
                          capture_output=True, text=True, timeout=600)


def stand_in_operator(namespace: str, name: str) -> list[dict]:
    """A Deployment named like the operator's (its pods run on kwok's fake nodes): preflight checks that the
    operator is available, not what it does."""
    labels = {"app.kubernetes.io/name": name}
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
             "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                 "metadata": {"labels": labels},
                 "spec": {"containers": [{"name": "operator", "image": f"registry.example/{name}:1.0.0"}]}}}}]


def test_preflight_names_what_the_cluster_lacks_then_passes(applied, cluster, tmp_path):
    if not cluster.with_controllers:
        pytest.fail("preflight's operator check needs the controllers and fake nodes")
    before = make(cluster, "preflight", "CLUSTER=1", "ENV=production")
    assert before.returncode != 0
    for namespace, names in OPERATORS.items():
        for name in names:
            assert f"operator {namespace}/{name} is not running: install " in before.stdout, before.stdout
    # What to install, at the pinned version (constructs/kubechat_deploy/versions.py).
    assert "install plugin-barman-cloud v0.14.0 (chart plugin-barman-cloud 0.7.0 from https://cloudnative-pg.github.io/charts)" \
        in before.stdout, before.stdout
    assert "StorageClass fast-ssd does not exist" in before.stdout
    assert "GatewayClass traefik does not exist" in before.stdout
    assert "the resource metrics API (v1beta1.metrics.k8s.io) is not served" in before.stdout
    assert "install metrics-server v0.8.1 (chart metrics-server 3.13.1 from https://kubernetes-sigs.github.io/metrics-server/)" \
        in before.stdout, before.stdout
    assert "no default StorageClass" in before.stdout and "CronJob kubechat-logical-backup (volume tmp)" in before.stdout
    assert f"ClusterSecretStore {STORE} does not exist: the ExternalSecrets " in before.stdout
    assert "no DNS pod in kube-system carries k8s-app=kube-dns" in before.stdout
    assert "CRD " not in before.stdout, "the pinned CRDs are installed: none may be reported"

    # A laptop is told only of what dev uses: no ingress, certificates, secret store or object store there.
    dev = make(cluster, "preflight", "CLUSTER=1", "ENV=dev")
    assert dev.returncode != 0 and "operator cnpg-system/cloudnative-pg is not running" in dev.stdout, dev.stdout
    for name in DEV_NEVER_USES:
        assert f"/{name} is not running" not in dev.stdout, dev.stdout
    assert "SecretStore" not in dev.stdout and "GatewayClass" not in dev.stdout, dev.stdout

    docs = [doc for namespace, names in OPERATORS.items() for name in names for doc in stand_in_operator(namespace, name)]
    docs += [{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast-ssd"},
              "provisioner": "example.com/ssd"},
             {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {
                 "name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
              "provisioner": "example.com/standard"},
             {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "traefik"},
              "spec": {"controllerName": "traefik.io/gateway-controller"}},
             {"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": STORE},
              "spec": {"provider": {"fake": {"data": []}}}}]
    docs += [d for d in stand_in_operator("kube-system", "coredns") if d["kind"] == "Deployment"]
    docs[-1]["spec"]["selector"]["matchLabels"] = docs[-1]["spec"]["template"]["metadata"]["labels"] = {"k8s-app": "kube-dns"}
    cluster.apply_docs(docs)
    for namespace, names in OPERATORS.items():
        for name in names:
            cluster.kubectl("rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=90s")
    cluster.kubectl("rollout", "status", "deployment/coredns", "-n", "kube-system", "--timeout=90s")
    # A GatewayClass no controller has accepted (Traefik not running) is no front door yet, a store External
    # Secrets has not validated is no store yet.
    unaccepted = make(cluster, "preflight", "CLUSTER=1", "ENV=production")
    assert unaccepted.returncode != 0 and "GatewayClass traefik is not Accepted" in unaccepted.stdout, unaccepted.stdout
    assert f"ClusterSecretStore {STORE} is not Ready" in unaccepted.stdout, unaccepted.stdout
    condition = {"status": "True", "reason": "Accepted", "message": "", "lastTransitionTime": "2026-12-07T00:00:00Z"}
    cluster.kubectl("patch", "gatewayclass", "traefik", "--subresource", "status", "--type", "merge", "-p", json.dumps(
        {"status": {"conditions": [{"type": "Accepted", "observedGeneration": 1, **condition}]}}))
    cluster.kubectl("patch", "clustersecretstore", STORE, "--subresource", "status", "--type", "merge", "-p", json.dumps(
        {"status": {"conditions": [{**condition, "type": "Ready", "reason": "Valid"}]}}))
    # metrics.k8s.io served (the tiers' metrics-server stand-in, through the real API server's aggregator).
    with stand_ins(cluster, tmp_path):
        deadline = time.monotonic() + 60
        while True:
            after = make(cluster, "preflight", "CLUSTER=1", "ENV=production")
            if after.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
    cluster.kubectl("annotate", "storageclass", "standard", "storageclass.kubernetes.io/is-default-class-")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "preflight: passed" in after.stdout


@contextlib.contextmanager
def stand_ins(cluster, workdir):
    """The delivery tier's stand-ins (tests/testbed/standins.py) as a process of their own."""
    process = subprocess.Popen([sys.executable, "-m", "testbed.standins", str(cluster.kubeconfig), str(workdir)],
                               env={**os.environ, "PYTHONPATH": f"{ROOT / 'scripts'}:{ROOT / 'tests'}"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture
def operators(cluster, tmp_path):
    """The delivery tier's stand-ins (CloudNativePG's Cluster status, a volume provisioner, ...), so
    dev-deploy's waits see what a laptop's operators would report."""
    with stand_ins(cluster, tmp_path):
        yield


def test_dev_deploy_status_and_undeploy_keep_the_data(applied, cluster, operators):
    deployed = make(cluster, "dev-deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "deployment.apps/kubechat-api serverside-applied" in deployed.stdout
    assert "Warning" not in deployed.stderr, deployed.stderr
    # in Argo CD's order, each wave waited for: the database before the migration, the migration before the API
    out = deployed.stdout
    assert out.index("condition=Ready clusters.postgresql.cnpg.io/kubechat-db") < out.index("job.batch/kubechat-migrate") \
        < out.index("deployment.apps/kubechat-api serverside-applied") < out.index("job.batch/kubechat-smoke-test")

    status = make(cluster, "dev-status")
    assert status.returncode == 0, status.stderr
    assert "cluster.postgresql.cnpg.io/kubechat-db" in status.stdout
    assert "cronjob.batch/kubechat-logical-backup" in status.stdout

    undeployed = make(cluster, "dev-undeploy")
    assert undeployed.returncode == 0, undeployed.stderr
    left = cluster.kubectl("get", "deployments,statefulsets,cronjobs", "-n", "kubechat-dev", "-o", "name").stdout
    assert left.strip() == "", f"dev-undeploy left workloads: {left}"
    kept = cluster.kubectl("get", "clusters.postgresql.cnpg.io,persistentvolumeclaims", "-n", "kubechat-dev",
                           "-o", "name").stdout.split()
    assert "cluster.postgresql.cnpg.io/kubechat-db" in kept
    assert any(name.startswith("persistentvolumeclaim/") for name in kept), kept

    # and the laptop loop continues: deploy again
    assert make(cluster, "dev-deploy").returncode == 0
    cluster.kubectl("get", "deployment", "kubechat-api", "-n", "kubechat-dev")


def test_dev_upgrade_recreates_the_migration_and_deploys_local_images(applied, cluster, operators, tmp_path):
    """A version bump changes the migration Job's pod template (immutable): dev-deploy recreates the hook
    instead of failing, and --api-image deploys a locally built image."""
    import shutil

    assert make(cluster, "dev-deploy").returncode == 0
    before = cluster.kubectl("get", "job", "kubechat-migrate", "-n", "kubechat-dev", "-o", "jsonpath={.metadata.uid}").stdout
    for name in ("overlays", "dist"):
        shutil.copytree(ROOT / name, tmp_path / name)
    kustomization = tmp_path / "overlays" / "dev" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("VERSION=1.0.0,", "VERSION=1.0.1,"))
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "dev_deploy.py"), "--overlay",
                             str(tmp_path / "overlays" / "dev"), "--api-image", "kubechat-api:dev"],
                            cwd=ROOT, env=environ(cluster), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    job = json.loads(cluster.kubectl("get", "job", "kubechat-migrate", "-n", "kubechat-dev", "-o", "json").stdout)
    assert job["metadata"]["uid"] != before
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "1.0.1"
    api = json.loads(cluster.kubectl("get", "deployment", "kubechat-api", "-n", "kubechat-dev", "-o", "json").stdout)
    assert api["spec"]["template"]["spec"]["containers"][0]["image"] == "kubechat-api:dev"


def test_a_failing_failure_hook_never_hides_the_original_error(cluster, tmp_path):
    """Issue #25.6: when the sync-failure hook also fails, its error replaced the real one. GIVEN a cluster
    address nothing listens on (a closed loopback port), every kubectl call fails: the first wave, then the hook.
    THEN the first wave's error is the one dev-deploy ends with, and the hook's failure is reported beside it."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: closed\nclusters: [{name: closed, cluster: {server: "
        "'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: closed, context: "
        "{cluster: closed, user: u}}]\n")
    env = {**environ(cluster), "KUBECONFIG": str(kubeconfig)}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "dev_deploy.py"), "--timeout", "5"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("dev-deploy: ")]
    first = next(line for line in lines if line.startswith("dev-deploy: FAILED: kubectl apply"))
    assert any(line.startswith("dev-deploy: the sync-failure hook failed too: kubectl ") for line in lines), lines
    assert lines[-1] == first.replace("FAILED: ", "", 1), f"the last word is not the original error:\n{result.stderr}"
