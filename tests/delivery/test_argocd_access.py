"""#31.4 with the real argocd-server and CLI: Argo CD access as code (dist/platform/argocd/configmap-argocd-rbac-cm.yaml,
rendered from constructs/kubechat_deploy/delivery/access.py and ArgoCdAccessProps).

First the rendered policy as Argo CD's own RBAC engine reads it (`argocd admin settings rbac can`, the same
code argocd-server enforces with: argo-cd v3.5.1 util/rbac/rbac.go), for the SSO groups the policy names.
Then an authenticating argocd-server with that policy live: local accounts stand in for SSO users (SSO needs
an identity provider; argocd-cm `accounts.<name>` and argocd-secret `accounts.<name>.password`, argo-cd
v3.5.1 util/settings/accounts.go), mapped to the rendered roles by an extra `policy.*.csv` key (which Argo CD
appends to policy.csv, util/rbac/rbac.go PolicyCSV). A read-only user cannot sync production; the built-in
admin cannot log in once `admin.enabled` is "false" (what ArgoCdAccessProps.local_admin=False renders)."""
from __future__ import annotations

import json
import secrets
import subprocess
import time
from datetime import datetime, timezone

import pytest
import yaml

from kubechat_tools.paths import DIST

pytestmark = pytest.mark.delivery

RBAC_CM = DIST / "platform" / "argocd" / "configmap-argocd-rbac-cm.yaml"
PRODUCTION, STAGING = "kubechat-production/kubechat-production-in-cluster", "kubechat-staging/kubechat-staging-staging-eu"
TEST_POLICY = "policy.kubechat-test.csv"


def can(stack, subject: str, action: str, resource: str, obj: str) -> bool:
    result = subprocess.run([str(stack.bin / "argocd"), "admin", "settings", "rbac", "can", subject, action, resource,
                             obj, "--policy-file", str(RBAC_CM)], capture_output=True, text=True, timeout=60,
                            env=stack.argocd_env("argocd"))
    assert result.stdout.strip() in ("Yes", "No"), result.stdout + result.stderr
    return result.stdout.strip() == "Yes"


def test_the_rendered_policy_gives_each_group_its_environment_and_everyone_else_read_only(stack):
    check = subprocess.run([str(stack.bin / "argocd"), "admin", "settings", "rbac", "validate", "--policy-file", str(RBAC_CM)],
                           capture_output=True, text=True, timeout=60, env=stack.argocd_env("argocd"))
    assert check.returncode == 0, check.stdout + check.stderr
    expected = {
        # subject: (may sync staging, may sync production, may read production, may change projects)
        "kubechat-developers": (True, False, True, False),
        "kubechat-release-managers": (False, True, True, False),
        "kubechat-platform-admins": (True, True, True, True),
        "someone-who-can-log-in": (False, False, True, False),  # policy.default: role:readonly
    }
    for subject, (staging, production, read, projects) in expected.items():
        found = (can(stack, subject, "sync", "applications", STAGING), can(stack, subject, "sync", "applications", PRODUCTION),
                 can(stack, subject, "get", "applications", PRODUCTION), can(stack, subject, "update", "projects", "kubechat-production"))
        assert found == (staging, production, read, projects), subject
    # The production role covers what the emergency rollback needs (docs/upgrade.md: auto-sync off, then
    # `argocd app rollback`): update and sync, and nothing of another environment.
    assert can(stack, "kubechat-release-managers", "update", "applications", PRODUCTION)
    assert not can(stack, "kubechat-release-managers", "update", "applications", STAGING)
    assert not can(stack, "kubechat-developers", "delete", "applications", STAGING)


def bcrypt(stack, password: str) -> str:
    result = subprocess.run([str(stack.bin / "argocd"), "account", "bcrypt", "--password", password],
                            capture_output=True, text=True, timeout=60, env=stack.argocd_env("argocd"), check=True)
    return result.stdout.strip()


@pytest.fixture(scope="module")
def server(stack, delivery, tmp_path_factory):
    users = {"viewer": None, "developer": "role:kubechat-staging-deployer",
             "releaser": "role:kubechat-production-deployer"}
    passwords = {name: secrets.token_urlsafe(12) for name in [*users, "admin"]}
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    secret = {}
    for name, password in passwords.items():
        prefix = "admin" if name == "admin" else f"accounts.{name}"
        secret.update({f"{prefix}.password": bcrypt(stack, password), f"{prefix}.passwordMtime": now})
    plane = stack.plane
    plane.kubectl("patch", "secret", "argocd-secret", "-n", "argocd", "--type", "merge", "-p",
                  json.dumps({"stringData": secret}))
    plane.kubectl("patch", "configmap", "argocd-cm", "-n", "argocd", "--type", "merge", "-p",
                  json.dumps({"data": {f"accounts.{name}": "login" for name in users}}))
    plane.kubectl("patch", "configmap", "argocd-rbac-cm", "-n", "argocd", "--type", "merge", "-p", json.dumps(
        {"data": {TEST_POLICY: "".join(f"g, {name}, {role}\n" for name, role in users.items() if role)}}))
    address = stack.start_authenticated_api_server()
    yield address, passwords, tmp_path_factory.mktemp("argocd-config")
    plane.kubectl("patch", "configmap", "argocd-rbac-cm", "-n", "argocd", "--type", "json", "-p",
                  json.dumps([{"op": "remove", "path": f"/data/{TEST_POLICY}"}]))
    plane.kubectl("patch", "configmap", "argocd-cm", "-n", "argocd", "--type", "json", "-p", json.dumps(
        [{"op": "remove", "path": f"/data/accounts.{name}"} for name in users] +
        [{"op": "remove", "path": "/data/admin.enabled"}]), check=False)


def cli(stack, config, *args: str) -> subprocess.CompletedProcess:
    """The argocd CLI as a person runs it, with a config file of its own (what `argocd login` writes)."""
    env = {k: v for k, v in stack.argocd_env("argocd").items()}
    return subprocess.run([str(stack.bin / "argocd"), "--config", str(config), *args], capture_output=True, text=True,
                          timeout=120, env=env)


def login(stack, server, user: str) -> tuple[object, subprocess.CompletedProcess]:
    address, passwords, folder = server
    config = folder / f"{user}.config"
    result = cli(stack, config, "login", address, "--plaintext", "--username", user, "--password", passwords[user])
    return config, result


def test_a_read_only_user_cannot_sync_production_and_a_release_manager_may(stack, server):
    config, result = login(stack, server, "viewer")
    assert result.returncode == 0, result.stdout + result.stderr
    got = cli(stack, config, "app", "get", "kubechat-production-in-cluster", "-o", "json")
    assert got.returncode == 0 and json.loads(got.stdout)["metadata"]["name"] == "kubechat-production-in-cluster", got.stderr
    refused = cli(stack, config, "app", "sync", "kubechat-production-in-cluster", "--async")
    assert refused.returncode != 0 and "permission denied" in refused.stderr.lower(), refused.stdout + refused.stderr
    app = stack.get("applications.argoproj.io", "kubechat-production-in-cluster")
    assert (app.get("operation") or {}).get("initiatedBy", {}).get("username") != "viewer"

    for user, allowed in (("developer", {"kubechat-staging": True, "kubechat-production": False}),
                          ("releaser", {"kubechat-staging": False, "kubechat-production": True})):
        config, result = login(stack, server, user)
        assert result.returncode == 0, result.stdout + result.stderr
        for project, app in (("kubechat-staging", STAGING), ("kubechat-production", PRODUCTION)):
            answer = cli(stack, config, "account", "can-i", "sync", "applications", app)
            assert answer.stdout.strip() == ("yes" if allowed[project] else "no"), (user, app, answer.stdout, answer.stderr)


def test_the_built_in_admin_cannot_log_in_once_disabled(stack, server):
    config, result = login(stack, server, "admin")
    assert result.returncode == 0, "control: the admin logs in while enabled:\n" + result.stdout + result.stderr
    stack.plane.kubectl("patch", "configmap", "argocd-cm", "-n", "argocd", "--type", "merge", "-p",
                        json.dumps({"data": {"admin.enabled": "false"}}))
    deadline = time.monotonic() + 30
    while True:
        config, result = login(stack, server, "admin")
        if result.returncode != 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert result.returncode != 0 and "disabled" in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    rendered = yaml.safe_load((DIST / "platform" / "argocd" / "configmap-argocd-cm.yaml").read_text())["data"]
    assert "admin.enabled" not in rendered, "the render's default keeps the admin (ArgoCdAccessProps.local_admin)"
