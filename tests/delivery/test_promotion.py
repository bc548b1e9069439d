"""#29 with the real Argo CD and Argo Rollouts: a change reaches production only after it has run in staging,
and only when promoted (docs/upgrade.md, "Promotion").

staging's Application follows main; production's follows its promotion branch promoted/production (the
ApplicationSet's targetRevision, constructs/kubechat_deploy/delivery/argocd.py), which only
`scripts/release.py promote` moves. The command is run here as an operator runs it: in a clone of the
repository, with kubectl pointed at Argo CD's cluster. The tests run in order, one history:
C1 a change to the base both environments build on (committed to main only), C2 a release that breaks
staging. Production stays at the commit under test (P0) until C1 is promoted; C2 is refused, then promoted
with a logged override (a hotfix: C2 changes nothing of production's render); a rollback promotes C1 again,
and staging is untouched by all of it. Production auto-syncs what is promoted (the tier holds its sync window
open; tests/delivery/test_sync_window.py shows the closed window)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from kubechat_tools.paths import ROOT
from testbed.argocd import PROMOTION_PREFIX, at_revision, synced_healthy

from .conftest import publish_under_test
from .test_hook_failure import break_migration

pytestmark = pytest.mark.delivery

STAGING, PRODUCTION = "kubechat-staging-staging-eu", "kubechat-production-in-cluster"
BRANCH = f"{PROMOTION_PREFIX}production"
PROBE = "kubechat.io/promotion-probe"
HISTORY: dict[str, str] = {}


@pytest.fixture(scope="module")
def operator(stack, delivery, tmp_path_factory):
    """A clone of the repository (what the operator works in) and the environment of their shell."""
    clone = tmp_path_factory.mktemp("operator") / "kubechat-deploy"
    subprocess.run(["git", "clone", "--quiet", stack.remote.url, str(clone)], check=True)
    env = {**os.environ, "KUBECONFIG": str(stack.plane.kubeconfig),
           "PATH": os.pathsep.join([str(stack.plane.bin), os.environ["PATH"]]),
           "GIT_AUTHOR_NAME": "release-manager", "GIT_AUTHOR_EMAIL": "release-manager@example.com",
           "GIT_COMMITTER_NAME": "release-manager", "GIT_COMMITTER_EMAIL": "release-manager@example.com"}
    subprocess.run(["git", "config", "user.email", "release-manager@example.com"], cwd=clone, check=True)
    HISTORY["P0"] = stack.get("applications.argoproj.io", PRODUCTION)["status"]["sync"]["revision"]
    yield clone, env
    good = publish_under_test(stack.remote, "the commit under test again, everywhere")
    for app in (STAGING, PRODUCTION):
        stack.refresh(app)
        stack.wait_app(app, at_revision(good), 420, f"Synced and Healthy at {good[:8]}")


def promote(operator, *args: str) -> subprocess.CompletedProcess:
    clone, env = operator
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "release.py"), "promote", "--env", "production", *args],
                          cwd=clone, env=env, capture_output=True, text=True, timeout=300)


def branch_head(stack) -> str:
    return stack.remote.git("ls-remote", "origin", f"refs/heads/{BRANCH}").split()[0]


def probe(stack, env: str) -> str | None:
    service = stack.get("services", "kubechat-redis", f"kubechat-{env}")
    return (service["metadata"].get("annotations") or {}).get(PROBE)


def test_a_change_on_main_reaches_staging_and_not_production(stack, operator):
    # The base both overlays build on, and the committed renders as `make render` would write them.
    for path in ("dist/base", "dist/rendered/staging", "dist/rendered/production"):
        file = stack.remote.work / path / "service-kubechat-redis.yaml"
        doc = yaml.safe_load(file.read_text())
        doc["metadata"].setdefault("annotations", {})[PROBE] = "c1"
        file.write_text(yaml.safe_dump(doc))
    c1 = HISTORY["C1"] = stack.remote._commit("a change to the base of every environment", promote=False)
    for app in (STAGING, PRODUCTION):
        stack.refresh(app)
    stack.wait_app(STAGING, synced_healthy(c1), 300, f"staging Synced and Healthy at {c1[:8]}")
    production = stack.wait_app(PRODUCTION, lambda a: a.get("status", {}).get("reconciledAt", "") >
                                stack.get("applications.argoproj.io", STAGING)["status"]["operationState"]["finishedAt"],
                                120, "production reconciled after staging synced")
    assert production["status"]["sync"]["revision"] == HISTORY["P0"], "production compared itself to main"
    assert production["spec"]["source"]["targetRevision"] == BRANCH
    assert (probe(stack, "staging"), probe(stack, "production")) == ("c1", None)


def test_promotion_moves_production_to_exactly_what_staging_runs(stack, operator):
    dry = promote(operator, "--dry-run")
    assert dry.returncode == 0 and "pushed nothing" in dry.stdout, dry.stdout + dry.stderr
    assert branch_head(stack) == HISTORY["P0"], "the dry run moved the branch"
    done = promote(operator)
    assert done.returncode == 0, done.stdout + done.stderr
    c1 = HISTORY["C1"]
    assert "dist/rendered/production" in done.stdout and PROBE in done.stdout, "the change production gets was not shown"
    assert branch_head(stack) == c1
    stack.refresh(PRODUCTION)
    stack.wait_app(PRODUCTION, lambda a: a.get("status", {}).get("sync", {}).get("revision") == c1, 120,
                   f"production compares itself to the promoted {c1[:8]}")
    stack.wait_app(PRODUCTION, at_revision(c1), 420, f"production Synced and Healthy at {c1[:8]}")
    assert probe(stack, "production") == "c1"
    tags = stack.remote.git("ls-remote", "--tags", "origin", "refs/tags/promotion/production/*")
    assert len(tags.splitlines()) == 2  # the annotated tag and its peeled commit


def test_promotion_is_refused_until_staging_has_run_it_and_an_override_is_logged(stack, operator):
    break_migration(stack.remote.work, "staging")
    c2 = HISTORY["C2"] = stack.remote._commit("a release whose staging migration fails", promote=False)
    stack.refresh(STAGING)
    stack.wait_app(STAGING, lambda a: ((a.get("status") or {}).get("operationState") or {}).get("operation", {})
                   .get("sync", {}).get("revision") == c2, 300, f"staging syncing {c2[:8]}")
    refused = promote(operator, "--revision", c2)
    assert refused.returncode == 1 and "has not run in staging" in refused.stderr, refused.stdout + refused.stderr
    assert branch_head(stack) == HISTORY["C1"]
    forced = promote(operator, "--revision", c2, "--override", "hotfix drill: production's render is unchanged")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert branch_head(stack) == c2
    subprocess.run(["git", "fetch", "--quiet", "--tags", "origin"], cwd=operator[0], check=True)
    tag = subprocess.run(["git", "tag", "--points-at", c2, "-l", "promotion/production/*"], cwd=operator[0],
                         capture_output=True, text=True, check=True).stdout.split()[0]
    message = subprocess.run(["git", "tag", "-l", "--format=%(contents)", tag], cwd=operator[0], capture_output=True,
                             text=True, check=True).stdout
    assert "OVERRIDE" in message and "hotfix drill" in message and "release-manager@example.com" in message, message
    stack.refresh(PRODUCTION)
    # C2 changes nothing of production's render: Synced at it without a sync.
    stack.wait_app(PRODUCTION, at_revision(c2), 420, f"production Synced and Healthy at {c2[:8]}")


def test_a_production_rollback_promotes_the_previous_revision_and_leaves_staging_alone(stack, operator):
    staging_before = stack.get("applications.argoproj.io", STAGING)["status"]["sync"]["revision"]
    c1 = HISTORY["C1"]
    back = promote(operator, "--revision", c1)
    assert back.returncode == 0 and "a rollback" in back.stdout, back.stdout + back.stderr
    assert branch_head(stack) == c1
    stack.refresh(PRODUCTION)
    stack.wait_app(PRODUCTION, at_revision(c1), 420, f"production Synced and Healthy at {c1[:8]}")
    assert stack.get("applications.argoproj.io", STAGING)["status"]["sync"]["revision"] == staging_before
