"""`make watch`: the edit loop's warm render process. It renders everything once, then re-renders into
dist/ (or --dist) each time a file the render reads changes, in one long-lived process that keeps the
typed libraries (cdk8s, cdk8s-plus-28, constructs, imports/) loaded: a synth process spends most of its
time loading them (`make bench` prints the breakdown), a warm re-synth of the environments part well
under a second.

What it re-reads on each render: the project's own modules (every kubechat_deploy module and main.py are
dropped from sys.modules and imported afresh), the data files they read, the overlays. What would need a
new process (imports/, the lock files, cdk8s.yaml, the render tooling itself) makes it start itself
again. A part whose inputs are unchanged comes from the render cache as in `make render`; a changed part
is synthesized warm, by the same main.py and the same cdk8s App code, so the output is byte-identical to
`make render`'s (tests/test_watch.py). A failed render prints why and leaves dist/ as it was; the next
save renders again.

Usage: python scripts/watch.py [--dist DIR] [--interval SECONDS] [--once]
"""
from __future__ import annotations

import argparse
import importlib
import os
import runpy
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from kubechat_tools.paths import DIST, ROOT

WATCHED = ("main.py", "constructs", "overlays", "migrations", "jobs")
"""What a render reads besides the libraries: a change here re-renders."""
RESTART = ("imports", "scripts", "cdk8s.yaml", "requirements-render.lock", "package-lock.json", "pyproject.toml",
           "crds.yaml")
"""What a loaded library or the running tooling was made from: a change here restarts the process."""
PACKAGE = "kubechat_deploy"


class WarmSynth:
    """main.py's parts synthesized in this process. The jsii kernel (a Node.js process started by the first
    import of cdk8s) reads CDK8S_OUTDIR once, when it starts: every synth writes to that one scratch folder
    and is moved from there."""

    def __init__(self, scratch: Path):
        self.out = scratch / "out"
        os.environ["CDK8S_OUTDIR"] = str(self.out)
        import cdk8s  # noqa: F401  (starts the kernel with the environment above)

    def synth(self, part: str, output: Path) -> None:
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()
        shutil.rmtree(self.out, ignore_errors=True)
        main = runpy.run_path(str(ROOT / "main.py"), run_name="kubechat_watch")  # not __main__: build, do not synth
        main["build_app"](parts=(part,)).synth()
        shutil.move(str(self.out), str(output))

    def warm_up(self, parts: tuple[str, ...]) -> None:
        """Synthesize each part once, discarding the output: loads every library a part uses (a render whose
        parts all came from the cache loaded none), so the first edit is as quick as the next."""
        for part in parts:
            self.synth(part, self.out.with_name(f"warm-up-{part}"))


def snapshot(names: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """Path -> (mtime_ns, size) of every file under `names` (hidden entries and bytecode left out)."""
    found = {}
    for name in names:
        top = ROOT / name
        paths = [top] if top.is_file() else top.rglob("*") if top.is_dir() else []
        for path in paths:
            relative = path.relative_to(ROOT).parts
            if any(part.startswith(".") or part == "__pycache__" for part in relative) or not path.is_file():
                continue
            stat = path.stat()
            found[str(path)] = (stat.st_mtime_ns, stat.st_size)
    return found


def changed(old: dict, new: dict) -> list[str]:
    return sorted(str(Path(p).relative_to(ROOT)) for p in old.keys() | new.keys() if old.get(p) != new.get(p))


def watch() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=DIST, help="output folder (default: dist/)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between looks for changes")
    parser.add_argument("--once", action="store_true", help="render once in a warm process, then stop")
    args = parser.parse_args()
    # This checkout's constructs first, as render.py's synth_env puts them: a clone sharing the venv renders
    # its own code, not the editable install's (imported below, before any kubechat_deploy module).
    for folder in (ROOT, ROOT / "constructs"):
        sys.path.insert(0, str(folder))
    from kubechat_deploy.layout import PARTS
    from kubechat_tools import overlay_values
    from kubechat_tools.render import render

    with tempfile.TemporaryDirectory(prefix="kubechat-watch-") as scratch:
        warm, schemas = WarmSynth(Path(scratch)), overlay_values.Schemas()
        watched, restart = snapshot(WATCHED), snapshot(RESTART)
        reason, ok = "start", False
        while True:
            start = time.perf_counter()
            try:
                render(args.dist, warm=warm, schemas=schemas)
                print(f"watch: rendered in {time.perf_counter() - start:.2f}s ({reason})", flush=True)
                ok = True
            except (SystemExit, Exception) as failed:  # dist/ is untouched: the render replaces it only at its end
                if not isinstance(failed, SystemExit):  # an error in a construct (render.fail() printed its own)
                    traceback.print_exc(file=sys.stdout)
                elif isinstance(failed.code, str):
                    print(failed.code, flush=True)
                print(f"watch: render failed ({reason}); dist/ left as it was, waiting for the next change", flush=True)
                ok = False
            if args.once:
                return 0 if ok else 1
            if reason == "start":
                start = time.perf_counter()
                try:
                    warm.warm_up(PARTS)
                    print(f"watch: libraries loaded in {time.perf_counter() - start:.2f}s", flush=True)
                except Exception:  # a broken construct: the next render after the fix loads them
                    print("watch: could not load every library (the next render will)", flush=True)
            print("watch: waiting for changes (Ctrl-C stops)", flush=True)
            while True:
                time.sleep(args.interval)
                now = snapshot(RESTART)
                if now != restart:
                    print(f"watch: {', '.join(changed(restart, now))} changed: starting again", flush=True)
                    shutil.rmtree(scratch, ignore_errors=True)
                    os.execv(sys.executable, [sys.executable, *sys.argv])
                now = snapshot(WATCHED)
                if now != watched:
                    while (settled := snapshot(WATCHED)) != now:  # an editor's save can take several writes
                        now = settled
                        time.sleep(args.interval / 4)
                    reason = ", ".join(changed(watched, now)[:5])
                    watched = now
                    break


def main() -> int:
    try:
        return watch()
    except KeyboardInterrupt:
        print("watch: stopped", flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main())
