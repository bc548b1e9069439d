"""Where things live in the project; every tool resolves paths from here."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
OVERLAYS = ROOT / "overlays"
ENVIRONMENTS = ("dev", "staging", "production")
BIN = ROOT / "bin"
CACHE = ROOT / ".cache"
CRDS_FILE = ROOT / "crds.yaml"
LINT_CONFIG = ROOT / "lint-exceptions.yaml"
