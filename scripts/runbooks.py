#!/usr/bin/env python3
"""Write docs/runbooks/ from the alerts (run by `make render`). The code: scripts/kubechat_tools/runbooks.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from project_python import use_project_python  # noqa: E402

use_project_python()  # started by another Python: run again in .venv/

from kubechat_tools.runbooks import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
