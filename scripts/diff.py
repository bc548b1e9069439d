#!/usr/bin/env python3
"""Per-environment semantic diff of the render against a git ref (`make diff BASE=...`). The code: scripts/kubechat_tools/diff.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from project_python import use_project_python  # noqa: E402

use_project_python()  # started by another Python: run again in .venv/

from kubechat_tools.diff import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
