"""The pinned upstream CRDs (crds.yaml): fetched from upstream, or from a mirror folder offline.

Set CRD_MIRROR to a folder laid out as <owner>/<repo>/<tag>/<path> (the tail of each
raw.githubusercontent.com address). Without it the files are downloaded. Fetched files are cached
under .cache/crds/ (git-ignored); nothing is ever copied into the repository.
"""
from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from .paths import CACHE, CRDS_FILE, ROOT

RAW_PREFIX = "https://raw.githubusercontent.com/"


@dataclass(frozen=True, kw_only=True)
class CrdSource:
    group: str
    """Import group: the Python module name under imports/."""
    url: str
    """Pinned upstream address."""
    typed: bool
    """Whether typed classes are generated for it (False: validation only)."""

    @property
    def relative_path(self) -> str:
        if not self.url.startswith(RAW_PREFIX):
            raise ValueError(f"crds.yaml: url {self.url!r} must start with {RAW_PREFIX!r}")
        return self.url[len(RAW_PREFIX):]


def load_sources(path: Path = CRDS_FILE) -> list[CrdSource]:
    data = yaml.safe_load(path.read_text())
    sources = []
    for group, entries in data["groups"].items():
        for entry in entries:
            sources.append(CrdSource(group=group, url=entry["url"], typed=entry.get("typed", True)))
    return sources


def mirror_dir() -> Path | None:
    value = os.environ.get("CRD_MIRROR")
    if not value:
        return None
    mirror = (ROOT / value).resolve()
    if not mirror.is_dir():
        raise SystemExit(f"CRD_MIRROR={value!r}: no such folder (expected <owner>/<repo>/<tag>/<path> files)")
    return mirror


def fetch(source: CrdSource) -> Path:
    """Return a local path holding the CRD file, from the cache, the mirror or upstream."""
    cached = CACHE / "crds" / source.relative_path
    if cached.is_file():
        return cached
    mirror = mirror_dir()
    if mirror is not None:
        candidate = mirror / source.relative_path
        if not candidate.is_file():
            raise SystemExit(f"CRD_MIRROR: {candidate} is missing (pinned as {source.url})")
        content = candidate.read_bytes()
    else:
        try:
            with urllib.request.urlopen(source.url, timeout=60) as response:
                content = response.read()
        except OSError as error:
            raise SystemExit(
                f"cannot download {source.url}: {error}. Offline? Set CRD_MIRROR to a mirror folder, "
                "for example CRD_MIRROR=../shared/crds"
            ) from error
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_bytes(content)
    tmp.replace(cached)
    return cached


def load_crds() -> list[dict]:
    """Every CustomResourceDefinition document of every pinned source."""
    crds = []
    for source in load_sources():
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        for doc in yaml.load_all(fetch(source).read_text(), Loader=loader):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                crds.append(doc)
    return crds
