"""#26.2: production's safety backup is taken once per schema version, not on every sync. With the real Argo CD
(production synced by hand here, as outside its sync window), starting from the commit under test:
- a release that keeps the schema (a backup setting changes) creates no Backup;
- a release that raises SCHEMA_VERSION creates the Backup of the new schema, and it completed before the
  migration Job of that sync was created; the previous schema's Backup stays, and the Application is Synced;
- the rollback (the previous commit again) creates no Backup: the old schema's is still there.
CloudNativePG's part (taking the backup) is the stand-in of tests/testbed/standins.py, which completes Backups."""
from __future__ import annotations

import json
import re

import pytest

from testbed.argocd import PROMOTION_PREFIX, synced_healthy
from kubechat_tools.release import overlay_version, release_tree, stand_in_digests

from .conftest import publish_under_test

pytestmark = pytest.mark.delivery

ENV = "production"
NS = f"kubechat-{ENV}"


def backups(stack) -> dict[str, dict]:
    items = json.loads(stack.plane.kubectl("get", "backups.postgresql.cnpg.io", "-n", NS, "-o", "json").stdout)["items"]
    return {b["metadata"]["name"]: b for b in items}


def deliver(stack, app: str, revision: str, what: str) -> dict:
    """A manual sync with pruning, as an operator syncs production outside its window (`argocd app sync --prune`;
    inside it, auto-sync prunes): a release's renamed generated ConfigMap leaves the old one behind otherwise."""
    stack.refresh(app)
    stack.sync(app, revision, prune=True)
    return stack.wait_app(app, synced_healthy(revision), 420, f"Synced and Healthy at {what} {revision[:8]}")


def schema_of(work) -> int:
    text = (work / "overlays" / ENV / "kustomization.yaml").read_text()
    return int(re.search(r"SCHEMA_VERSION=(\d+)", text).group(1))


def test_the_safety_backup_is_taken_once_per_schema_version(stack, delivery):
    app = next(a for a, env in delivery.items() if env == ENV)
    work = stack.remote.work
    start = publish_under_test(stack.remote, "production at the commit under test")
    deliver(stack, app, start, "the commit under test")
    schema = schema_of(work)
    before = backups(stack)
    assert set(before) >= {f"kubechat-db-pre-migration-schema-{schema}"}, before.keys()
    uids = {name: b["metadata"]["uid"] for name, b in before.items()}

    # 1. A release that keeps the schema: no Backup is created (the hook this replaces took one every sync).
    settings = work / "overlays" / ENV / "backup-settings.env"
    settings.write_text(settings.read_text().replace("RETENTION_KEEP_NEWEST=30", "RETENTION_KEEP_NEWEST=31"))
    same_schema = stack.remote._commit("a release that keeps the schema")
    deliver(stack, app, same_schema, "a release that keeps the schema")
    assert {name: b["metadata"]["uid"] for name, b in backups(stack).items()} == uids

    # 2. A release that raises the schema: its Backup, completed before the migration of that sync started.
    release_tree(work, ENV, overlay_version(ENV, work), stand_in_digests(), schema + 1)
    raised = stack.remote._commit("a release that raises the schema")
    state = deliver(stack, app, raised, "a release that raises the schema")
    after = backups(stack)
    new = after[f"kubechat-db-pre-migration-schema-{schema + 1}"]
    assert new["status"]["phase"] == "completed"
    assert {name: b["metadata"]["uid"] for name, b in after.items() if name in uids} == uids, "an older Backup went"
    migration = stack.get("jobs", "kubechat-migrate", NS)
    assert new["status"]["stoppedAt"] <= migration["metadata"]["creationTimestamp"], (new["status"], migration["metadata"])
    assert state["status"]["sync"]["status"] == "Synced", "the kept Backup of the previous schema made it OutOfSync"

    # 3. The rollback: the commit before the raise again. No Backup is taken, none is waited for.
    rolled = {name: b["metadata"]["uid"] for name, b in after.items()}
    stack.remote.git("revert", "--no-edit", raised)
    stack.remote.git("push", "--quiet", "origin", "HEAD:main", f"+HEAD:refs/heads/{PROMOTION_PREFIX}{ENV}")  # promoted
    revert = stack.remote.git("rev-parse", "HEAD").strip()
    deliver(stack, app, revert, "the rollback (git revert)")
    assert {name: b["metadata"]["uid"] for name, b in backups(stack).items()} == rolled
