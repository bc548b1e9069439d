"""The environment the project's tools run in: project-local binaries first, jsii quiet on Node 20."""
from __future__ import annotations

import os

from .paths import BIN, ROOT


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    path = [str(ROOT / ".venv" / "bin"), str(BIN), str(ROOT / "node_modules" / ".bin")]
    env["PATH"] = os.pathsep.join(path + [env.get("PATH", "")])
    env["CDK8S_CHECK_UPGRADE"] = "false"
    # jsii prints a banner on every run under Node 20 (end of life for jsii since 2026-10-30); it still works.
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    return env
