#!/usr/bin/env python3
"""The edit loop (`make watch`): re-render on save in a warm process. The code: scripts/kubechat_tools/watch.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from project_python import use_project_python  # noqa: E402

use_project_python()  # started by another Python: run again in .venv/

from kubechat_tools.watch import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
