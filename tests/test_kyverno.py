"""The rendered Kyverno ClusterPolicies run through Kyverno's own CLI (engine and policy validation, pinned
in tools/kyverno at the version of the pinned CRDs): every environment's policies are valid for Kyverno,
every workload KubeChat renders passes the image rules, and bad pods fail the rule that names their fault.
Signature and attestation checks need a registry and Sigstore and are not run here (docs/security.md)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from testbed.controlplane import kyverno_cli

ENVS = ("dev", "staging", "production")
WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob")


@pytest.fixture(scope="module")
def kyverno() -> Path:
    return kyverno_cli()


def apply(kyverno: Path, policies: list[Path], resources: list[Path], *extra: str) -> tuple[dict[str, int], str]:
    args = [str(kyverno), "apply", *map(str, policies), "--remove-color"]
    for resource in resources:
        args += ["--resource", str(resource)]
    result = subprocess.run(args + list(extra), capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    counts = re.search(r"pass: (\d+), fail: (\d+), warn: (\d+), error: (\d+), skip: (\d+)", output)
    assert counts, output
    return dict(zip(("pass", "fail", "warn", "error", "skip"), map(int, counts.groups()))), output


def policies(env: str) -> list[Path]:
    return sorted((ROOT / "dist" / "rendered" / env).glob("clusterpolicy-*.yaml"))


def pod(tmp_path: Path, env: str, name: str, image: str, init_image: str | None = None) -> Path:
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": f"kubechat-{env}"},
           "spec": {"containers": [{"name": "main", "image": image}]}}
    if init_image:
        doc["spec"]["initContainers"] = [{"name": "init", "image": init_image}]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("env", ENVS)
def test_kyverno_accepts_every_rendered_policy_and_every_workload_passes(kyverno, env):
    found = policies(env)
    assert len(found) == 2, found
    workloads = [p for p in sorted((ROOT / "dist" / "rendered" / env).glob("*.yaml"))
                 if p.name.split("-")[0] in {k.lower() for k in WORKLOADS}]
    counts, output = apply(kyverno, found, workloads)
    assert "Policies Skipped" not in output, output
    assert counts["fail"] == 0 and counts["error"] == 0, output
    assert counts["pass"] >= 3 * len(workloads), f"the image rules did not apply to the workloads:\n{output}"


def test_kyverno_rejects_a_policy_that_rewrites_digests_in_audit_mode(kyverno, tmp_path):
    # GIVEN dev's verify-images policy with the one field the dev overlay must change put back
    text = (ROOT / "dist" / "rendered" / "dev" / "clusterpolicy-kubechat-dev-verify-images.yaml").read_text()
    assert "mutateDigest: false" in text
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("mutateDigest: false", "mutateDigest: true"))
    counts, output = apply(kyverno, [broken], [pod(tmp_path, "dev", "any", "docker.io/valkey/valkey:8.1.4-alpine")])
    # THEN Kyverno's policy validation refuses it, as the admission webhook would
    assert counts["error"] == 1 and "mutateDigest must be set to false for" in output, output


BAD = [
    ("latest", "docker.io/valkey/valkey:latest", None, "disallow-latest"),
    ("untagged-init", "docker.io/valkey/valkey:8.1.4-alpine", "docker.io/valkey/valkey", "require-tag"),
    ("foreign", "quay.io/someone/tool:1.0", None, "allowed-registries"),
    ("short-name", "valkey/valkey:8.1.4-alpine", None, "allowed-registries"),
    ("other-acme-solver", "quay.io/jetstack/cert-manager-acmesolver:v1.20.0", None, "allowed-registries"),
]


def test_the_pinned_acme_solver_passes_the_image_rules(kyverno, tmp_path):
    """cert-manager's HTTP-01 solver pod (its image at the pinned cert-manager version) is admitted."""
    from kubechat_deploy.versions import ACME_HTTP01_SOLVER_IMAGE

    for env in ("staging", "production"):
        policy = ROOT / "dist" / "rendered" / env / f"clusterpolicy-kubechat-{env}-image-references.yaml"
        counts, output = apply(kyverno, [policy], [pod(tmp_path, env, "acme-solver", ACME_HTTP01_SOLVER_IMAGE)])
        assert counts["fail"] == 0 and counts["pass"] == 3, output


@pytest.mark.parametrize("name, image, init_image, rule", BAD)
def test_staging_and_production_fail_bad_pods_on_the_rule_that_names_the_fault(kyverno, tmp_path, name, image,
                                                                               init_image, rule):
    for env in ("staging", "production"):
        policy = ROOT / "dist" / "rendered" / env / f"clusterpolicy-kubechat-{env}-image-references.yaml"
        counts, output = apply(kyverno, [policy], [pod(tmp_path, env, name, image, init_image)])
        assert counts["fail"] == 1, output
        assert re.search(rf"{rule} validation error", output), output


def test_dev_only_warns_about_bad_pods(kyverno, tmp_path):
    policy = ROOT / "dist" / "rendered" / "dev" / "clusterpolicy-kubechat-dev-image-references.yaml"
    resources = [pod(tmp_path, "dev", name, image, init) for name, image, init, _ in BAD]
    counts, output = apply(kyverno, [policy], resources, "--audit-warn")
    assert counts["fail"] == 0 and counts["warn"] == len(BAD), output


def test_policies_guard_only_their_own_namespace(kyverno, tmp_path):
    policy = ROOT / "dist" / "rendered" / "staging" / "clusterpolicy-kubechat-staging-image-references.yaml"
    elsewhere = pod(tmp_path, "production", "latest", "quay.io/someone/tool:latest")
    counts, output = apply(kyverno, [policy], [elsewhere])
    assert counts["fail"] == 0 and counts["pass"] == 0, output
