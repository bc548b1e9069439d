"""The point-in-time recovery manifest generator: valid CloudNativePG Clusters for every kind of
target, validated against the pinned CRD schema, and malformed targets rejected."""
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from kubechat_tools.gates import schema_gate

SCRIPT = ROOT / "scripts" / "restore_manifest.py"


def generate(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


@pytest.mark.parametrize("args, target", [
    (["--target-time", "2026-11-26T09:41:00Z"], {"targetTime": "2026-11-26T09:41:00Z"}),
    (["--target-time", "2026-11-26T10:41:00+01:00"], {"targetTime": "2026-11-26T09:41:00Z"}),
    (["--target-lsn", "0/3000060"], {"targetLSN": "0/3000060"}),
    (["--target-name", "before-release-1.4"], {"targetName": "before-release-1.4"}),
    (["--latest"], None),
])
@pytest.mark.parametrize("env", ["staging", "production"])
def test_generates_a_valid_recovery_cluster(tmp_path, env, args, target):
    out = tmp_path / "recovery.yaml"
    result = generate("--env", env, *args, "--output", str(out))
    assert result.returncode == 0, result.stderr
    cluster = yaml.safe_load(out.read_text())
    recovery = cluster["spec"]["bootstrap"]["recovery"]
    assert recovery.get("recoveryTarget") == target
    assert recovery["source"] == "origin" and recovery["database"] == "kubechat" and recovery["owner"] == "kubechat"
    origin = cluster["spec"]["externalClusters"][0]["plugin"]["parameters"]
    archiver = cluster["spec"]["plugins"][0]["parameters"]
    assert origin == {"barmanObjectName": "kubechat-backups", "serverName": "kubechat-db"}
    assert archiver["serverName"] != "kubechat-db", "must never archive over the origin's WAL"
    assert cluster["metadata"]["name"].startswith("kubechat-db-r") and cluster["metadata"]["namespace"] == f"kubechat-{env}"
    assert "initdb" not in cluster["spec"]["bootstrap"]
    assert schema_gate([out]) == []


def test_in_place_keeps_the_name_and_says_how_to_stop_argo_first(tmp_path):
    result = generate("--env", "production", "--target-time", "2026-11-26T09:41:00Z", "--in-place")
    assert result.returncode == 0
    cluster = yaml.safe_load(result.stdout)
    assert cluster["metadata"]["name"] == "kubechat-db"
    assert cluster["spec"]["plugins"][0]["parameters"]["serverName"] == "kubechat-db-r20261126094100"
    assert "--sync-policy none" in result.stdout and "delete cluster kubechat-db" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--target-time", "2026-11-26 09:41"], "allowed: RFC 3339 with a zone"),
    (["--target-time", "2026-11-26T09:41:00"], "allowed: RFC 3339 with a zone"),
    (["--target-time", "2026-13-26T09:41:00Z"], "--target-time '2026-13-26T09:41:00Z'"),
    (["--target-lsn", "3000060"], "allowed: an LSN like 0/3000060"),
    (["--target-name", "two words"], "allowed: a restore point name"),
])
def test_rejects_malformed_targets(tmp_path, args, message):
    out = tmp_path / "recovery.yaml"
    result = generate("--env", "production", *args, "--output", str(out))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not out.exists()


def test_dev_has_no_physical_backups_to_recover_from():
    result = generate("--env", "dev", "--latest")
    assert result.returncode == 2 and "needs the physical-backups component" in result.stderr


@pytest.mark.parametrize("env", ["staging", "production"])
def test_the_recovery_cluster_keeps_the_roles_and_the_certificate_names_and_inspects_with_one_instance(env):
    """#27/#31: the recovered cluster manages the same database roles (the API's password from its Secret, so
    the API logs in unchanged) and names the pooler in its certificate (the API verifies it); side by side it
    runs one instance, to fit the quota beside the environment's own."""
    from kubechat_tools.manifests import load_dir
    from kubechat_tools.restore_manifest import build

    rendered = load_dir(ROOT / "dist" / "rendered" / env)
    origin = next(d for d in rendered if d["kind"] == "Cluster")
    for in_place, instances in ((False, 1), (True, origin["spec"]["instances"])):
        cluster = build(env, {"targetTime": "2026-11-26T09:41:00Z"}, "20261126094100", rendered, in_place=in_place)
        assert cluster["spec"]["managed"] == origin["spec"]["managed"]
        assert cluster["spec"]["certificates"] == origin["spec"]["certificates"]
        assert cluster["spec"]["instances"] == instances


def test_a_side_by_side_recovery_that_would_not_fit_the_quota_is_refused_before_anything_is_written(tmp_path):
    from kubechat_tools.manifests import load_dir
    from kubechat_tools.restore_manifest import TargetError, build

    rendered = load_dir(ROOT / "dist" / "rendered" / "production")
    build("production", None, "20261126094100", rendered)  # fits as rendered
    quota = next(d for d in rendered if d["kind"] == "ResourceQuota")
    quota["spec"]["hard"]["requests.memory"] = "14Gi"
    with pytest.raises(TargetError, match=r"more than the ResourceQuota's requests.memory 14Gi: raise it in "
                                          r"overlays/production/quota.yaml"):
        build("production", None, "20261126094100", rendered)


@pytest.mark.parametrize("env", ["staging", "production"])
def test_in_place_recovery_stops_the_pods_that_write(env):
    """#27: the API's pods belong to its Rollout in staging and production (workloadRef; the Deployment is the
    template at 0 replicas), so the steps scale the Rollout and wait for its pods to go; the Application is
    found by the ApplicationSet's label, whatever cluster name it carries."""
    result = generate("--env", env, "--target-time", "2026-11-26T09:41:00Z", "--in-place")
    assert result.returncode == 0, result.stderr
    assert f"kubectl -n kubechat-{env} scale rollout/kubechat-api --replicas=0" in result.stdout
    assert "scale deployment/kubechat-api" not in result.stdout
    assert f"wait --for=delete pod -l app.kubernetes.io/component=api" in result.stdout
    assert f"APP=$(argocd app list -l kubechat.io/environment={env} -o name)" in result.stdout
    appset = yaml.safe_load((ROOT / "dist" / "platform" / "delivery" / "applicationset-kubechat.yaml").read_text())
    assert "kubechat.io/environment" in appset["spec"]["template"]["metadata"]["labels"]
    assert "argocd app set kubechat-" not in result.stdout
