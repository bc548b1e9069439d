"""Last in the tier (it removes an Application): a cluster that loses its environment label loses its
Application, and nothing that Application deployed is deleted (preserveResourcesOnDeletion; the
namespace, database Cluster and volumes also carry Delete=false)."""
from __future__ import annotations

import json
import time

import pytest

from .conftest import LABEL

pytestmark = pytest.mark.delivery


def test_unlabelling_a_cluster_deletes_its_application_and_keeps_everything(stack, delivery, clusters):
    app = next(a for a, env in delivery.items() if env == "staging")
    ns = "kubechat-staging"
    before = {kind: json.loads(stack.plane.kubectl("get", kind, "-n", ns, "-o", "json").stdout)["items"]
              for kind in ("clusters.postgresql.cnpg.io", "persistentvolumeclaims", "deployments", "rollouts.argoproj.io")}
    assert all(before.values()), {k: len(v) for k, v in before.items()}
    namespace_uid = stack.get("namespace", ns, "")["metadata"]["uid"]
    stack.plane.kubectl("label", "secret", "cluster-staging-eu", "-n", "argocd", f"{LABEL}-")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and stack.get("applications.argoproj.io", app):
        time.sleep(1)
    assert stack.get("applications.argoproj.io", app) is None, f"{app} was not deleted"
    time.sleep(10)  # a cascade would be under way by now
    assert stack.get("namespace", ns, "")["metadata"]["uid"] == namespace_uid
    assert "deletionTimestamp" not in stack.get("namespace", ns, "")["metadata"]
    for kind, items in before.items():
        after = {i["metadata"]["uid"] for i in json.loads(stack.plane.kubectl("get", kind, "-n", ns, "-o", "json").stdout)["items"]
                 if "deletionTimestamp" not in i["metadata"]}
        assert {i["metadata"]["uid"] for i in items} <= after, f"{kind} deleted with the Application"
