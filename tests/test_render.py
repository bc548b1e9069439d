"""The render pipeline: dist/ is current and deterministic, and a failed render writes nothing."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def render(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "render.py"), *args],
                          cwd=ROOT, capture_output=True, text=True)


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def fresh_render(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("render") / "dist"
    result = render("--dist", str(dist))
    assert result.returncode == 0, result.stderr
    return dist


def test_committed_dist_matches_a_fresh_render(fresh_render):
    committed, fresh = tree(ROOT / "dist"), tree(fresh_render)
    stale = sorted(name for name in committed.keys() | fresh.keys() if committed.get(name) != fresh.get(name))
    assert not stale, "dist/ is stale; run `make render` and commit. Files that differ:\n  " + "\n  ".join(stale)


def test_render_is_byte_identical_across_runs(fresh_render, tmp_path):
    again = tmp_path / "dist"
    assert render("--dist", str(again)).returncode == 0
    assert tree(again) == tree(fresh_render)


def test_every_environment_renders_one_file_per_resource(fresh_render):
    for env in ("dev", "staging", "production"):
        folder = fresh_render / "rendered" / env
        for path in folder.glob("*.yaml"):
            text = path.read_text()
            assert "\n---" not in text, f"{path.name} holds more than one resource"
            assert path.name.count("-") >= 1 and path.name == path.name.lower()


def test_failed_synth_leaves_dist_untouched_and_names_the_setting(fresh_render, tmp_path):
    dist = tmp_path / "dist"
    shutil.copytree(fresh_render, dist)
    before = tree(dist)
    result = render("--dist", str(dist), "--app", "python tests/fixtures/bad_app.py")
    assert result.returncode == 1
    assert "scaling.min_replicas: invalid value 0; allowed: an integer >= 1" in result.stderr
    assert "dist/ was left untouched" in result.stderr
    assert tree(dist) == before
    assert not list(tmp_path.glob(".render-*")), "the temporary render folder was left behind"


def test_failed_overlay_is_reported_with_its_environment(fresh_render, tmp_path):
    overlays = tmp_path / "overlays"
    shutil.copytree(ROOT / "overlays", overlays)
    kustomization = overlays / "staging" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "  - path: no-such-patch.yaml\n")
    dist = tmp_path / "dist"
    shutil.copytree(fresh_render, dist)
    before = tree(dist)
    result = render("--dist", str(dist), "--overlays", str(overlays))
    assert result.returncode == 1
    assert "environment 'staging': kustomize build overlays/staging failed" in result.stderr
    assert "no-such-patch.yaml" in result.stderr
    assert tree(dist) == before


@pytest.mark.tree
def test_cdk8s_synth_as_users_run_it_leaves_the_committed_tree_intact(tmp_path):
    """18.1 and 25.4: `npm run synth` (the README's command: the pinned cdk8s CLI with this project's
    cdk8s.yaml) works before the CLI is installed and after, prints no stack trace, renders what
    `make render` does and never deletes the committed dist/ layout: on a copy of the working tree, git
    status stays clean. npm installs the CLI from its local cache only (npm_config_offline): no test reaches
    the registry."""
    clone = tmp_path / "clone"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in (f.decode() for f in files if f):
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    for path in clone.rglob("*"):  # older than every install stamp: make never reinstalls into the shared tools
        os.utime(path, (0, 0), follow_symlinks=False)
    git = lambda *a: subprocess.run(["git", *a], cwd=clone, capture_output=True, text=True, check=True).stdout  # noqa: E731
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-qm", "working tree")
    for tool in (".venv", ".venv-checkov", "bin", ".cache"):  # installed tools, as after make render; no node_modules
        (clone / tool).symlink_to(ROOT / tool)
    (clone / ".git" / "info" / "exclude").write_text("/.venv\n/.venv-checkov\n/node_modules\n/bin\n/.cache\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CDK8S_", "npm_"))}
    env["npm_config_offline"] = "true"
    for when in ("before the CLI is installed", "after"):
        result = subprocess.run(["npm", "run", "synth"], cwd=clone, capture_output=True, text=True, env=env, timeout=600)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"npm run synth {when}:\n{output[-3000:]}"
        assert not re.search(r"^\s+at .*\(.*:\d+:\d+\)$", output, re.M), f"a stack trace {when}:\n{output[-3000:]}"
        assert git("status", "--porcelain") == "", f"npm run synth {when} changed the committed tree"
        for env_name in ("dev", "staging", "production"):
            assert (clone / ".cdk8s.out" / f"{env_name}.k8s.yaml").stat().st_size > 0
    assert (clone / "dist" / "rendered" / "production").is_dir() and (clone / "dist" / "base").is_dir()
    # And `make render` itself, outside the cdk8s CLI (no CDK8S_OUTDIR), renders the same tree.
    result = subprocess.run(["make", "--no-print-directory", "render"], cwd=clone, capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert git("status", "--porcelain") == "", "make render changed the committed tree"


def test_make_render_installs_only_what_rendering_needs():
    """18.2: on a fresh clone `make render` installs the render subset of the Python tree, the cdk8s
    CLI, kustomize and the pinned CRDs (the overlays' values are checked against their schemas); never the
    test-only packages or the other Go tools (make -n -B prints every command a cold run would execute)."""
    plan = subprocess.run(["make", "-n", "-B", "render"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "requirements-render.lock" in plan and "npm ci" in plan and "kustomize/kustomize/v5" in plan
    assert "fetch_crds" in plan
    for not_needed in ("requirements.lock", "checkov", "promtool", "migrate", "kube-score", "kubeconform",
                       "psa-check", "dyff", "apt-get install -y -qq $missing"):
        assert not_needed not in plan, f"make render would install {not_needed!r}:\n{plan}"


def test_make_check_installs_what_its_tests_run():
    """On a fresh clone, make check's tests render (cdk8s synth): it installs the cdk8s CLI too (a cold make
    check on 2026-12-06 failed 25 tests with `node_modules/.bin/cdk8s: No such file or directory`)."""
    plan = subprocess.run(["make", "-n", "-B", "check"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for needed in ("fetch_crds", "requirements.lock", "npm ci", "kustomize/kustomize/v5", "kubeconform",
                   "requirements-checkov.lock"):
        assert needed in plan, f"make check does not install {needed!r}"
