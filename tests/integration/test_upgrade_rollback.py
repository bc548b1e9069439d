"""GIVEN production's previous release (the newest earlier commit rendering it differently), WHEN it is
upgraded to this one, rolled back, and upgraded again with pruning, THEN every step applies and the
database Cluster and the PersistentVolumeClaims keep their identity throughout."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_upgrade_and_rollback_apply_without_errors(applied, upgrade_path):
    assert upgrade_path["errors"] == [], "\n".join(upgrade_path["errors"])
    labels = [label for label, _ in upgrade_path["steps"]]
    assert labels == ["install previous", "upgrade", "roll back", "upgrade again"], labels


def test_upgrade_and_rollback_never_delete_the_database_or_volumes(applied, upgrade_path):
    first = upgrade_path["steps"][0][1]
    assert "Cluster/kubechat-db" in first, first
    claims = [key for key in first if key.startswith("PersistentVolumeClaim/")]
    assert claims, f"no PersistentVolumeClaim after installing {upgrade_path['previous_commit'][:12]}: {first}"
    for label, uids in upgrade_path["steps"][1:]:
        for key, uid in first.items():
            assert uids.get(key) == uid, f"{label}: {key} was deleted or replaced ({uid} -> {uids.get(key)})"
