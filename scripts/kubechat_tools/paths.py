"""Where things live in the project; every tool resolves paths from here."""
from pathlib import Path

from kubechat_deploy.layout import ENVIRONMENTS  # noqa: F401  (one list, shared with main.py)

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
OVERLAYS = ROOT / "overlays"
BIN = ROOT / "bin"
CACHE = ROOT / ".cache"
CRDS_FILE = ROOT / "crds.yaml"
LINT_CONFIG = ROOT / "lint-exceptions.yaml"
