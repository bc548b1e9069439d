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
