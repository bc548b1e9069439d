"""Checks on a rendered environment that Kustomize cannot make: the release's settings are valid."""
from __future__ import annotations

import re

from .migrations import MigrationError, check_target
from .paths import ROOT

RELEASE_CONFIG_MAP = re.compile(r"^kubechat-release(-[a-z0-9]{10})?$")


def check_release(docs: list[dict], env: str) -> list[str]:
    """The schema version each environment targets must have a migration."""
    errors = []
    releases = [d for d in docs if d["kind"] == "ConfigMap" and RELEASE_CONFIG_MAP.match(d["metadata"]["name"])]
    if len(releases) != 1:
        return [f"environment {env!r}: expected one kubechat-release ConfigMap (SCHEMA_VERSION), found {len(releases)}"]
    value = (releases[0].get("data") or {}).get("SCHEMA_VERSION", "")
    if not value.isdigit():
        return [f"environment {env!r}: SCHEMA_VERSION={value!r} in overlays/{env}/kustomization.yaml; "
                "allowed: the number of an existing migration"]
    try:
        check_target(ROOT / "migrations", int(value), f"environment {env!r}: SCHEMA_VERSION")
    except MigrationError as error:
        errors.append(str(error))
    return errors
