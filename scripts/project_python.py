"""Every script here runs in the project's Python environment, whichever Python a user started it with:
outside .venv/ it runs itself again with .venv/bin/python (`make render` and `make setup` install it), or
says how to install it; inside, the project's own folders come first on the import path."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"


def use_project_python() -> None:
    if Path(sys.prefix).resolve() != VENV.resolve():
        python = VENV / "bin" / "python"
        if not python.exists():
            raise SystemExit(f"{Path(sys.argv[0]).name}: the project's Python environment ({VENV}) is not installed "
                             f"yet: run `make render` (or `make setup`) in {ROOT} once, then run this again")
        if os.environ.get("KUBECHAT_PROJECT_PYTHON") == str(python):  # ran again and still outside: no loop
            raise SystemExit(f"{Path(sys.argv[0]).name}: {python} does not run in {VENV} (sys.prefix {sys.prefix}): "
                             f"remove {VENV} and run `make render` to create it again")
        os.environ["KUBECHAT_PROJECT_PYTHON"] = str(python)
        os.execv(python, [str(python), *sys.argv])
    for folder in (ROOT / "constructs", ROOT / "scripts"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
