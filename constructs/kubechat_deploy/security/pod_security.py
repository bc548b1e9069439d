"""The Pod Security Standards "restricted" security contexts every KubeChat pod runs with."""
from __future__ import annotations

from cdk8s_plus_28 import k8s

from kubechat_deploy.validation import SettingsError


IMAGE_USERS = {26: "postgres in CloudNativePG's PostgreSQL images (api/v1/cluster_types.go: DefaultPostgresUID = 26)"}
"""UIDs below 10000 allowed because an image's tools need their own passwd entry (initdb looks its user up)."""


def pod_security_context(uid: int, gid: int) -> k8s.PodSecurityContext:
    for field, value in (("run_as_user", uid), ("run_as_group", gid)):
        if not isinstance(value, int) or (value < 10000 and value not in IMAGE_USERS):
            raise SettingsError(field, value, "a non-root UID/GID of 10000 or more, or an image's own user: "
                                + "; ".join(f"{u} ({w})" for u, w in IMAGE_USERS.items()))
    return k8s.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=gid,
        fs_group=gid,
        seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context() -> k8s.SecurityContext:
    return k8s.SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        privileged=False,
        capabilities=k8s.Capabilities(drop=["ALL"]),
        seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
    )
