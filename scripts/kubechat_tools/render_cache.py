"""The render's content-addressed cache of each synthesized part (main.py's `environments` and
`platform`), so that an edit re-synthesizes only the parts that read what changed.

Why: loading jsii's typed libraries (cdk8s-plus-28, the imported CRD classes) costs seconds per synth
process, far above the floor of an empty app (`make bench` prints the breakdown); kustomize builds
and the rest of a render take well under a second.

Exactness: a part's key is a sha256 over
  - the global inputs: the cache format, the part, the app command, the Python version, `node
    --version`, requirements-render.lock, package-lock.json and pyproject.toml (which fix every library
    and the cdk8s CLI), and this file;
  - every file the part's synth process read, by content, and every folder it listed, by its sorted
    entries (less hidden entries and __pycache__); inside the project by their path relative to it, so a
    copy of the project sharing .cache/ (make diff's worktree, a test's clone) keys its own files. Python's audit hook records them while the part synthesizes (run as
    `python scripts/kubechat_tools/render_cache.py RECORD main.py PART`); modules are taken from sys.modules.
    Files of the interpreter and of the installed libraries are left out: the lock files and versions
    above pin them.
A part is looked up with the inputs its previous synth read: any change to one of them, or to a folder
it listed (a new migration, a new module), changes the key; an edit that makes the part read a new file
is itself an edit to a file the part read. tests/test_render_cache.py proves each kind of input
invalidates the cache. `KUBECHAT_RENDER_CACHE=off` (or render.py --no-cache) bypasses it.

Layout: .cache/render/<part>/inputs.json (what the last synth read) and .cache/render/<part>/<key>/
(its charts, as cdk8s wrote them); the newest KEEP keys per part are kept.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

FORMAT = "2"
KEEP = 12
GLOBAL_FILES = ("requirements-render.lock", "package-lock.json", "pyproject.toml")
IGNORED_ENTRIES = (".", "__pycache__")
"""Folder entries a listing's key leaves out: hidden entries (the render's own .render-* scratch folder,
.cache) and bytecode caches, which Python and glob('*') never treat as inputs."""


def cache_root(root: Path) -> Path:
    return root / ".cache" / "render"


def enabled() -> bool:
    return os.environ.get("KUBECHAT_RENDER_CACHE", "on") != "off"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def global_key(root: Path, part: str, app: str) -> str:
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    h = hashlib.sha256()
    for item in (FORMAT, part, app, sys.version, node, _sha(Path(__file__).read_bytes())):
        h.update(item.encode() + b"\0")
    for name in GLOBAL_FILES:
        path = root / name
        h.update(name.encode() + b"\0" + (_sha(path.read_bytes()) if path.is_file() else "missing").encode() + b"\0")
    return h.hexdigest()


def relative_inputs(root: Path, inputs: dict) -> dict:
    """`inputs` with the paths inside the project relative to it: a copy of the project (a git worktree, a
    clone sharing .cache/) then looks up its own files, never the ones of the tree that recorded them."""
    prefix = os.path.realpath(root) + os.sep
    rel = lambda name: name[len(prefix):] if name.startswith(prefix) else name  # noqa: E731
    return {**inputs, "files": sorted(rel(n) for n in inputs["files"]), "dirs": sorted(rel(n) for n in inputs["dirs"])}


def inputs_key(base: str, inputs: dict, root: Path) -> str:
    """The key of a part whose synth read `inputs` ({"files": [...], "dirs": [...]}, relative to `root` when
    inside it), from their current contents."""
    h = hashlib.sha256(base.encode() + b"\0")
    for name in sorted(inputs["files"]):
        path = root / name
        digest = _sha(path.read_bytes()) if path.is_file() else "missing"
        h.update(f"file\0{name}\0{digest}\0".encode())
    for name in sorted(inputs["dirs"]):
        path = root / name
        listing = "\n".join(sorted(n for n in os.listdir(path) if not n.startswith(IGNORED_ENTRIES))) \
            if path.is_dir() else "missing"
        h.update(f"dir\0{name}\0{_sha(listing.encode())}\0".encode())
    return h.hexdigest()


def lookup(root: Path, part: str, app: str) -> tuple[Path | None, str]:
    """(the cached charts folder of `part`, or None; the global key)."""
    base = global_key(root, part, app)
    manifest = cache_root(root) / part / "inputs.json"
    if not enabled() or not manifest.is_file():
        return None, base
    recorded = json.loads(manifest.read_text())
    if recorded.get("global") != base:
        return None, base
    folder = cache_root(root) / part / inputs_key(base, recorded, root)
    if not (folder / ".complete").is_file():
        return None, base
    os.utime(folder)  # the newest KEEP used keys stay
    return folder, base


def store(root: Path, part: str, base: str, charts: Path, inputs_file: Path) -> None:
    """Keep a freshly synthesized part under the key of what its synth read."""
    if not enabled():
        return
    inputs = relative_inputs(root, json.loads(inputs_file.read_text()))
    inputs["global"] = base
    folder = cache_root(root) / part / inputs_key(base, inputs, root)
    if not (folder / ".complete").is_file():
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}")  # renders may run side by side
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(charts, tmp)
        (tmp / ".complete").write_text("")
        shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:  # another render stored the same key first
            shutil.rmtree(tmp, ignore_errors=True)
    manifest = folder.parent / f".inputs.json.{os.getpid()}"
    manifest.write_text(json.dumps(inputs, indent=1, sort_keys=True))
    os.replace(manifest, folder.parent / "inputs.json")
    entries = sorted((p for p in folder.parent.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


def record(output: Path, script: str, argv: list[str]) -> None:
    """Run `script` as __main__ with `argv`, writing to `output` the files it read and the folders it
    listed (outside the interpreter's and the libraries' installation)."""
    import atexit
    import runpy

    skip = tuple({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
    files: set[str] = set()
    dirs: set[str] = set()

    def keep(path) -> str | None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return None  # a file descriptor
        path = os.path.realpath(path)
        if path.startswith(skip) or "/__pycache__/" in path or path.startswith(("/dev/", "/proc/", "/sys/")):
            return None
        return path

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            mode, flags = args[1], args[2]
            reads = (not any(c in mode for c in "wax+")) if isinstance(mode, str) else \
                not (flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            if reads and (path := keep(args[0])) and os.path.isfile(path):
                files.add(path)
        elif event in ("os.listdir", "os.scandir") and args and args[0] is not None:
            if (path := keep(args[0])) and os.path.isdir(path):
                dirs.add(path)

    def write() -> None:
        modules = {os.path.realpath(m.__file__) for m in list(sys.modules.values())
                   if getattr(m, "__file__", None) and os.path.isfile(m.__file__)}
        found = files | {m for m in modules if not m.startswith(skip)}
        output.write_text(json.dumps({"files": sorted(found), "dirs": sorted(dirs)}))

    atexit.register(write)
    sys.addaudithook(hook)
    sys.argv = [script, *argv]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python SCRIPT` would
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    # python scripts/kubechat_tools/render_cache.py RECORD_FILE SCRIPT [ARGS...]
    record(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
