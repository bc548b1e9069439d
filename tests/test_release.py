"""The release and rollback script on a throwaway clone of this repository with two releases."""
import hashlib
import subprocess
import sys

import pytest

from conftest import ROOT
from kubechat_deploy.data.migration_files import latest_version

LATEST = latest_version(ROOT / "migrations")
"""The newest schema version, which every overlay deploys (a release keeps it)."""

API = "sha256:" + "a" * 64
WEB = "sha256:" + "b" * 64


def tree(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def clone(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    for tool in (".venv", "node_modules", "bin", ".cache"):
        (repo / tool).symlink_to(ROOT / tool)
    (repo / ".git" / "info" / "exclude").write_text("/.venv\n/node_modules\n/bin\n/.cache\n")  # links, not folders
    for key, value in (("user.email", "release@example.com"), ("user.name", "release test")):
        subprocess.run(["git", "config", key, value], cwd=repo, check=True)
    return repo


def work_tree(folder):
    """Every file outside .git (whose index git refreshes when it restores files), and git's status."""
    files = {name: digest for name, digest in tree(folder).items() if not name.startswith(".git/")}
    status = subprocess.run(["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True).stdout
    return files, status


def in_clone(repo) -> dict:
    """The clone's own code first: the venv's editable install points at the working tree."""
    import os

    return {**os.environ, "PYTHONPATH": f"{repo / 'constructs'}:{repo / 'scripts'}"}


def release(repo, *args):
    return subprocess.run([sys.executable, "scripts/release.py", *args], cwd=repo, capture_output=True, text=True,
                          env=in_clone(repo))


def test_revert_rollback_brings_back_the_previous_release_byte_for_byte(clone):
    before = tree(clone / "dist" / "rendered")
    result = release(clone, "upgrade", "--env", "production", "--version", "1.1.0", "--api-digest", API,
                     "--web-digest", WEB, "--schema", str(LATEST))
    assert result.returncode == 0, result.stderr
    upgraded = (clone / "dist" / "rendered" / "production" / "deployment-kubechat-api.yaml").read_text()
    assert f"kubechat-api:1.1.0@{API}" in upgraded and "app.kubernetes.io/version: 1.1.0" in upgraded
    assert tree(clone / "dist" / "rendered") != before
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    result = release(clone, "rollback-revert", "--release", head)
    assert result.returncode == 0, result.stderr
    assert tree(clone / "dist" / "rendered") == before
    log = subprocess.run(["git", "log", "--format=%s", "-2"], cwd=clone, capture_output=True, text=True).stdout
    assert log.splitlines() == ['Revert "release production 1.1.0"', "release production 1.1.0"]


def test_dry_run_prints_every_command_and_changes_nothing(clone):
    before = tree(clone)
    result = release(clone, "rollback-argocd", "--app", "kubechat-production-in-cluster", "--to", "7", "--dry-run")
    assert result.returncode == 0
    assert "+ argocd app set kubechat-production-in-cluster --sync-policy none" in result.stdout
    assert "+ argocd app rollback kubechat-production-in-cluster 7" in result.stdout
    assert "--sync-policy automated --self-heal --auto-prune" in result.stdout
    assert "dry run: auto-sync of kubechat-production-in-cluster is unchanged and nothing was rolled back" in result.stdout
    result = release(clone, "upgrade", "--env", "staging", "--version", "2.0.0", "--dry-run")
    assert result.returncode == 0 and "+ git commit -m 'release staging 2.0.0'" in result.stdout
    # It says what it did not do, and never that it committed (issue #25: it printed "committed; push it").
    assert "nothing was edited, rendered or committed" in result.stdout and "committed '" not in result.stdout
    result = release(clone, "rollback-revert", "--release", "HEAD", "--dry-run")
    assert result.returncode == 0 and "nothing was reverted, rendered or verified" in result.stdout
    assert "reverted and verified" not in result.stdout
    assert tree(clone) == before


def test_upgrade_writes_everything_make_render_writes_and_the_freshness_tests_pass(clone):
    """Issue #25: the release ran only scripts/render.py's manifests, so docs/configuration.md went stale and the
    commit failed the tests. GIVEN a release commit made by `upgrade` WHEN the test suite's freshness checks
    run on that tree THEN they pass, and the working tree is clean (everything generated was committed)."""
    result = release(clone, "upgrade", "--env", "staging", "--version", "1.2.0", "--schema", str(LATEST))
    assert result.returncode == 0, result.stderr
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
    assert status.strip() == "", f"the release left changes it did not commit:\n{status}"
    assert "| Release version (image tags, VERSION) | `kustomization.yaml` | 1.0.0 | 1.2.0 | 1.0.0 |" in \
        (clone / "docs" / "configuration.md").read_text()
    checks = ["tests/test_render.py::test_committed_dist_matches_a_fresh_render",
              "tests/test_docs.py::test_configuration_reference_is_current",
              "tests/test_monitoring.py::test_runbooks_are_current"]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *checks], cwd=clone,
                            capture_output=True, text=True, env=in_clone(clone), timeout=900)
    assert result.returncode == 0 and "3 passed" in result.stdout, result.stdout[-3000:]


def test_a_refused_upgrade_leaves_the_tree_exactly_as_it_was(clone):
    """GIVEN an overlay the render refuses (committed by someone) WHEN upgrade edits the kustomization and the
    render fails THEN the command fails saying so, and every file is as before (issue #25: the kustomization
    stayed edited)."""
    settings = clone / "overlays" / "staging" / "api-settings.env"
    settings.write_text(settings.read_text().replace("LOG_LEVEL=info", "LOG_LEVEL=verbose"))
    subprocess.run(["git", "commit", "-qam", "a bad setting"], cwd=clone, check=True)
    before = work_tree(clone)
    result = release(clone, "upgrade", "--env", "staging", "--version", "1.2.0")
    assert result.returncode == 1
    assert "LOG_LEVEL='verbose'" in result.stderr and "the tree is as it was before" in result.stderr
    assert work_tree(clone) == before
    head = subprocess.run(["git", "log", "-1", "--format=%s"], cwd=clone, capture_output=True, text=True).stdout
    assert head.strip() == "a bad setting"


def test_upgrade_refuses_to_mix_its_change_with_uncommitted_ones(clone):
    scaling = clone / "overlays" / "staging" / "scaling.yaml"
    scaling.write_text(scaling.read_text() + "# a local edit\n")
    before = tree(clone)
    result = release(clone, "upgrade", "--env", "staging", "--version", "1.2.0")
    assert result.returncode == 1 and "changes the release commit would include" in result.stderr
    assert "overlays/staging/scaling.yaml" in result.stderr
    assert tree(clone) == before


@pytest.mark.parametrize("change", ["a staged file elsewhere", "an edited construct", "a dry run on an edited construct"])
def test_upgrade_refuses_what_would_slip_into_the_release_commit(clone, change):
    """Review finding: a staged README and an uncommitted construct edit (rendered into dist/) went into the
    commit 'release dev 1.0.1'. The release commits exactly its own change, rendered from committed code."""
    if change == "a staged file elsewhere":
        (clone / "README.md").write_text((clone / "README.md").read_text() + "\nlocal note\n")
        subprocess.run(["git", "add", "README.md"], cwd=clone, check=True)
    else:
        api = clone / "constructs" / "kubechat_deploy" / "app" / "api.py"
        api.write_text(api.read_text().replace("database_pool_size: int = 10", "database_pool_size: int = 8"))
    before = work_tree(clone)
    extra = ["--dry-run"] if "dry run" in change else []
    result = release(clone, "upgrade", "--env", "dev", "--version", "1.0.1", *extra)
    assert result.returncode == 1 and "changes the release commit would include" in result.stderr, result.stderr
    assert work_tree(clone) == before


def test_a_commit_that_fails_leaves_nothing_staged_or_written(clone):
    """Review finding: after `git add`, a failing commit (here a pre-commit hook) left new files staged while
    the command said the tree was restored."""
    hook = clone / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'pre-commit: refused' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = work_tree(clone)
    result = release(clone, "upgrade", "--env", "dev", "--version", "1.0.1")
    assert result.returncode == 1 and "the tree is as it was before" in result.stderr
    assert work_tree(clone) == before


@pytest.mark.parametrize("args, message", [
    (["upgrade", "--env", "production", "--version", "1.1.0"], "production pins digests"),
    (["upgrade", "--env", "dev", "--version", "latest"], "allowed: a semantic version"),
    (["upgrade", "--env", "staging", "--version", "1.0.1", "--api-digest", "sha256:xyz"], "allowed: sha256:<64 hex digits>"),
    (["rollback-argocd", "--app", "production", "--to", "3"], "allowed: an Application the ApplicationSet generated"),
    # A schema version the migrations do not have, even in a dry run (issue #25: it was accepted).
    (["upgrade", "--env", "staging", "--version", "1.0.1", "--schema", "99", "--dry-run"],
     f"--schema: schema version 99 has no migration (migrations/ goes up to {LATEST}); allowed for overlays/staging: "
     f"{LATEST}..{LATEST}"),
    (["upgrade", "--env", "staging", "--version", "1.0.1", "--schema", "3"],
     f"overlays/staging is at schema version {LATEST}, and the migration hook only migrates up; allowed: {LATEST}..{LATEST}"),
])
def test_bad_release_input_is_rejected_before_anything_changes(clone, args, message):
    before = tree(clone)
    result = release(clone, *args)
    assert result.returncode == 1 and message in result.stderr
    assert tree(clone) == before


def test_make_diff_shows_exactly_the_changed_resources(clone):
    scaling = clone / "overlays" / "production" / "scaling.yaml"
    scaling.write_text(scaling.read_text().replace("maxReplicas: 10", "maxReplicas: 12"))
    result = subprocess.run([sys.executable, "scripts/diff.py", "HEAD"], cwd=clone, capture_output=True, text=True,
                            env=in_clone(clone))
    assert result.returncode == 0, result.stderr
    sections = dict(part.split("\n", 1) for part in result.stdout.split("## ")[1:])
    assert "no changes" in sections["dev"] and "no changes" in sections["staging"]
    production = sections["production"]
    assert "HorizontalPodAutoscaler/kubechat-production/kubechat-api" in production
    assert "- 10" in production and "+ 12" in production
    assert production.count("(") == 1, f"only one resource changed:\n{production}"


def test_the_github_workflow_passes_actionlint():
    result = subprocess.run([str(ROOT / "bin" / "actionlint"), "-no-color", str(ROOT / ".github" / "workflows" / "ci.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    workflow = (ROOT / ".github" / "workflows" / "ci.yaml").read_text()
    assert "make test" in workflow and "git diff --exit-code" in workflow and "make --no-print-directory diff" in workflow


@pytest.mark.slow
def test_preflight_accepts_every_supported_kubernetes_version():
    for version in ("1.30", "1.31", "1.37"):
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "preflight.py"), "--kubernetes-version", version],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def test_preflight_reports_an_api_the_target_version_removed(tmp_path):
    import shutil

    dist = tmp_path / "dist"
    shutil.copytree(ROOT / "dist", dist)
    (dist / "rendered" / "production" / "poddisruptionbudget-legacy.yaml").write_text(
        "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: legacy\n  namespace: kubechat-production\n"
        "spec:\n  maxUnavailable: 1\n  selector: {matchLabels: {app: x}}\n")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "preflight.py"), "--kubernetes-version", "1.30",
                             "--dist", str(dist)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "MISSING OR BROKEN" in result.stdout and "PodDisruptionBudget/legacy" in result.stdout


def test_make_diff_renders_the_base_with_the_base_code(clone):
    # A change in Python (not in an overlay) must show up too: the base is rendered with its own code.
    api = clone / "constructs" / "kubechat_deploy" / "app" / "api.py"
    api.write_text(api.read_text().replace('database_pool_size: int = 10', 'database_pool_size: int = 8'))
    result = subprocess.run([sys.executable, "scripts/diff.py", "HEAD"], cwd=clone, capture_output=True, text=True,
                            env=in_clone(clone))
    assert result.returncode == 0, result.stderr
    production = result.stdout.split("## production")[1]
    assert "kubechat-production/kubechat-api" in production and "- 10" in production and "+ 8" in production, production


def test_a_canary_pause_shorter_than_the_analysis_delay_is_refused(rendered):
    """Background analysis measures first after its initialDelay; a pause that ends sooner promotes a
    canary nobody measured (staging's 1m pause did, with the 1m delay)."""
    import copy

    from kubechat_tools.release import check_canary_measured

    for env in ("staging", "production"):
        assert check_canary_measured(rendered[env], env) == []
    docs = copy.deepcopy(rendered["staging"])
    rollout = next(d for d in docs if d["kind"] == "Rollout" and d["metadata"]["name"] == "kubechat-api")
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    index = next(i for i, step in enumerate(steps) if "pause" in step)
    steps[index]["pause"]["duration"] = "1m"
    errors = check_canary_measured(docs, "staging")
    assert errors == [f"environment 'staging': Rollout/kubechat-api spec.strategy.canary.steps[{index}].pause.duration="
                      "'1m'; allowed: longer than the analysis' initialDelay (60 s), so the canary is measured before "
                      "the next step"], errors


def test_promote_refuses_staging_and_what_is_not_on_main_before_it_reads_argo_cd(tmp_path):
    """The promote command's refusals that need no cluster (the rest runs against the real Argo CD:
    tests/delivery/test_promotion.py): staging is never promoted; a revision not on origin/main is refused."""
    bare, work = tmp_path / "remote.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch", "main", str(bare)], check=True)
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    git = lambda *a: subprocess.run(["git", *a], cwd=work, check=True, capture_output=True, text=True).stdout.strip()  # noqa: E731
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "on main")
    git("push", "-q", "origin", "HEAD:main")
    git("checkout", "-q", "-b", "unmerged")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "not merged")
    script = [sys.executable, str(ROOT / "scripts" / "release.py"), "promote"]
    staging = subprocess.run([*script, "--env", "staging"], cwd=work, capture_output=True, text=True)
    assert staging.returncode == 1 and "--env 'staging': allowed: production" in staging.stderr, staging.stderr
    # No kubectl on PATH: the refusal must come from git alone, before Argo CD is read.
    env = {**__import__("os").environ, "PATH": "/usr/bin:/bin"}
    unmerged = subprocess.run([*script, "--env", "production", "--revision", "HEAD"], cwd=work, capture_output=True,
                              text=True, env=env)
    assert unmerged.returncode == 1, unmerged.stdout + unmerged.stderr
    assert "is not on origin/main" in unmerged.stderr, unmerged.stderr
