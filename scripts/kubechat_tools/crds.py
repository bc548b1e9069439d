"""The pinned upstream CRDs (crds.yaml): fetched from upstream, or from a mirror folder offline.

Set CRD_MIRROR to a folder laid out as <owner>/<repo>/<tag>/<path> (the tail of each
raw.githubusercontent.com address). Without it the files are downloaded. Each file must match the
sha256 crds.yaml pins for it, whether downloaded, mirrored or cached. `fetch_all()` (make crds, part
of make setup) is the only step that downloads; renders and tests read the verified cache
(.cache/crds/, git-ignored) and say once what to run when it is missing. Nothing is ever copied into
the repository.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
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
    sha256: str
    """The file's pinned digest."""
    go_module: str | None = None
    """The same file in a Go module at the same tag (module@version), where the Go module proxy serves it: the
    source used when neither the address nor the mirror has the file (files that the offline mirror lacks)."""

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
            digest = str(entry.get("sha256", ""))
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise SystemExit(f"{path.name}: {entry['url']}: sha256 {digest!r}; allowed: the file's sha256, "
                                 "64 lowercase hex digits")
            module = entry.get("go_module")
            if module is not None and (not isinstance(module, str) or module.count("@") != 1):
                raise SystemExit(f"{path.name}: {entry['url']}: go_module {module!r}; allowed: <module path>@<version>")
            sources.append(CrdSource(group=group, url=entry["url"], typed=entry.get("typed", True), sha256=digest,
                                     go_module=module))
    return sources


OFFLINE_HELP = (
    "Offline, bring a mirror of the pinned CRDs: on any machine that can download them, run `make crds` in a clone "
    "of this repository and copy its .cache/crds/ folder to this machine (or download each address that "
    "`python3 scripts/fetch_crds.py --list` prints into <folder>/<owner>/<repo>/<tag>/<path>), then run "
    "`CRD_MIRROR=<that folder> make crds`. Every file is verified against its sha256 in crds.yaml.")
"""What to do without network; every message about missing CRDs ends with it."""


def mirror_dir() -> Path | None:
    value = os.environ.get("CRD_MIRROR")
    if not value:
        return None
    mirror = (ROOT / value).resolve()
    if not mirror.is_dir():
        raise SystemExit(f"CRD_MIRROR={value!r}: no such folder (expected <owner>/<repo>/<tag>/<path> files)")
    return mirror


class CrdError(SystemExit):
    """A pinned CRD that is missing or differs from its pin."""


def verify(source: CrdSource, content: bytes, where: str) -> None:
    actual = hashlib.sha256(content).hexdigest()
    if actual != source.sha256:
        raise CrdError(f"crds.yaml: {source.relative_path} from {where} has sha256 {actual}, but is pinned as "
                       f"{source.sha256}: refused. A moved tag or a changed file upstream changes what the gates "
                       "validate against: check the file, then update its pin in crds.yaml deliberately.")


def cached_path(source: CrdSource, cache: Path | None = None) -> Path:
    return (cache or CACHE / "crds") / source.relative_path


def fetch(source: CrdSource, *, download: bool = True, cache: Path | None = None) -> Path:
    """A local, verified copy of the CRD file: from the cache, else (download=True) from the mirror or upstream."""
    cached = cached_path(source, cache)
    if cached.is_file():
        verify(source, cached.read_bytes(), str(cached))
        return cached
    if not download:
        raise CrdError(f"the pinned CRDs are not fetched ({source.relative_path} is missing from {cached.parent}): "
                       f"run `make crds` (or `make setup`) once. {OFFLINE_HELP}")
    mirror = mirror_dir()
    if mirror is not None and (mirror / source.relative_path).is_file():
        candidate = mirror / source.relative_path
        content, where = candidate.read_bytes(), str(candidate)
    elif mirror is not None and source.go_module is None:
        raise CrdError(f"CRD_MIRROR: {mirror / source.relative_path} is missing (pinned as {source.url})")
    elif mirror is not None:
        content, where = from_go_module(source)
    else:
        try:
            with urllib.request.urlopen(source.url, timeout=20) as response:
                content, where = response.read(), source.url
        except OSError as error:
            if source.go_module is None:
                raise CrdError(f"cannot download {source.url}: {error}. {OFFLINE_HELP}") from error
            content, where = from_go_module(source)
    verify(source, content, where)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_bytes(content)
    tmp.replace(cached)
    return cached


_MODULE_DIRS: dict[str, Path] = {}


def go_module_download(module: str) -> Path:
    """The folder of module@version in the Go module cache, downloaded from the Go module proxy when missing
    (`go mod download`, outside any go.mod); a module that cannot be had raises CrdError naming it."""
    if module not in _MODULE_DIRS:
        with tempfile.TemporaryDirectory() as scratch:
            result = subprocess.run(["go", "mod", "download", "-json", module], cwd=scratch, capture_output=True,
                                    text=True, env={**os.environ, "GOFLAGS": "-mod=mod"})
        try:
            info = json.loads(result.stdout)
        except json.JSONDecodeError:
            info = {"Error": (result.stderr or result.stdout).strip() or f"exit {result.returncode}"}
        if info.get("Error") or not info.get("Dir"):
            raise CrdError(f"go mod download {module} failed: {info.get('Error') or 'no Dir'}. {OFFLINE_HELP}")
        _MODULE_DIRS[module] = Path(info["Dir"])
    return _MODULE_DIRS[module]


def from_go_module(source: CrdSource) -> tuple[bytes, str]:
    """The file from the Go module proxy: `go mod download` of the pinned module@version (into the Go module
    cache), then the file at the address's path inside it. The sha256 pin is checked by the caller."""
    module = source.go_module
    try:
        folder = go_module_download(module)
    except CrdError as error:
        raise CrdError(f"crds.yaml: {source.url} is not in the mirror, and {error}") from None
    inside = source.relative_path.split("/", 3)[3]  # <owner>/<repo>/<tag>/<path>: the path in the module
    path = folder / inside
    if not path.is_file():
        raise CrdError(f"crds.yaml: {inside} is not in the Go module {module} (pinned as {source.url})")
    return path.read_bytes(), f"the Go module {module}"


def fetch_all(cache: Path | None = None) -> list[Path]:
    """The setup step: every pinned CRD fetched once and verified (stops at the first failure)."""
    return [fetch(source, cache=cache) for source in load_sources()]


def load_crds() -> list[dict]:
    """Every CustomResourceDefinition document of every pinned source."""
    crds = []
    for source in load_sources():
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        for doc in yaml.load_all(fetch(source, download=False).read_text(), Loader=loader):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                crds.append(doc)
    return crds
