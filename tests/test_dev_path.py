"""The laptop path's make targets (issue #25.6): `make dev-build` builds with nerdctl or docker, whichever the
laptop has, and says so when it has neither; `make dev-deploy` installs only what rendering needs (it runs
kustomize and PyYAML), not the test toolchain."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_with(tools: list[str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """make with a PATH of the system's folders and a folder holding exactly `tools` (programs that print what
    they were asked, standing for the laptop's container runtime)."""
    folder = tmp_path / "path"
    folder.mkdir(exist_ok=True)
    for tool in tools:
        (folder / tool).write_text("#!/bin/sh\necho \"$0 $*\"\n")
        (folder / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{folder}:/usr/bin:/bin"}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_dev_build_uses_docker_when_the_laptop_has_no_nerdctl(tmp_path):
    plan = make_with(["docker"], tmp_path, "-n", "dev-build").stdout.splitlines()
    builds = [line for line in plan if " build -t kubechat-" in line]
    assert len(builds) == 2 and all(line.startswith("docker build -t kubechat-") for line in builds), plan


def test_dev_build_prefers_nerdctl_in_rancher_desktops_namespace(tmp_path):
    plan = make_with(["docker", "nerdctl"], tmp_path, "-n", "dev-build").stdout.splitlines()
    builds = [line for line in plan if " build -t kubechat-" in line]
    assert len(builds) == 2 and all(line.startswith("nerdctl --namespace k8s.io build -t kubechat-") for line in builds), plan


def test_dev_build_without_a_container_runtime_says_what_to_install(tmp_path):
    result = make_with([], tmp_path, "dev-build")
    assert result.returncode != 0
    assert "neither nerdctl nor docker is on the PATH" in result.stdout + result.stderr


def test_dev_deploy_installs_only_what_rendering_needs():
    plan = subprocess.run(["make", "-n", "-B", "dev-deploy"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "requirements-render.lock" in plan and "kustomize/kustomize/v5" in plan
    for not_needed in ("requirements.lock", "checkov", "promtool", "kube-score", "kubeconform", "dyff"):
        assert not_needed not in plan, f"make dev-deploy would install {not_needed!r}"
