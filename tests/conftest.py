"""Shared fixtures: the project's paths, the committed render, and a way to write test manifests."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from kubechat_tools.manifests import load_dir  # noqa: E402
from kubechat_tools.paths import DIST, ENVIRONMENTS  # noqa: E402


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """The committed render of every environment: env -> resources."""
    return {env: load_dir(DIST / "rendered" / env) for env in ENVIRONMENTS}


def find(docs: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected exactly one {kind}/{name}, found {len(matches)}"
    return matches[0]


def write_docs(folder: Path, name: str, docs: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def good_docs() -> list[dict]:
    return list(yaml.safe_load_all((ROOT / "tests" / "fixtures" / "good" / "pod.yaml").read_text()))
