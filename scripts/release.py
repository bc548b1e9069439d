#!/usr/bin/env python3
"""Release, upgrade and roll back environments the GitOps way (docs/upgrade.md). The code: scripts/kubechat_tools/release_command.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from project_python import use_project_python  # noqa: E402

use_project_python()  # started by another Python: run again in .venv/

from kubechat_tools.release_command import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
