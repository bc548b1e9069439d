#!/usr/bin/env python3
"""Reach dev from the laptop on 127.0.0.1 only (`make dev-open`). The code: scripts/kubechat_tools/dev_open.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from project_python import use_project_python  # noqa: E402

use_project_python()  # started by another Python: run again in .venv/

from kubechat_tools.dev_open import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
