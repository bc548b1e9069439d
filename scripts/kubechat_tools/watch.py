"""`make watch`: the edit loop's warm render process. It renders everything once, then again into dist/ (and
the generated docs pages; or into --dist) each time a file the render reads changes, in one long-lived
process that keeps the typed libraries (cdk8s, cdk8s-plus-28, constructs, imports/) loaded: a synth process
spends most of its time loading them (`make bench` prints the breakdown), a warm re-synth of the
environments part well under a second.

What it reads afresh for each render: the project's modules (every kubechat_deploy module, main.py, and the
render tooling that binds names from them at import, such as the settings contract the overlay checks read,
are dropped from sys.modules and imported again), the data files they read, the overlays. What would need
a new process makes it start again, through `make watch` when make started it (so the install steps of
`make render` run first): imports/, the tooling in scripts/, the lock files, cdk8s.yaml, crds.yaml, and a
dead jsii kernel. A part whose inputs are unchanged comes from the render cache as in `make render`; a
changed part is synthesized warm by the same main.py and cdk8s App code, so the output is byte-identical to
`make render`'s (tests/test_watch.py). A failed render prints why and leaves dist/ as it was; the next save
renders again.

Usage: python scripts/watch.py [--dist DIR] [--interval SECONDS] [--once]
"""
from __future__ import annotations

import argparse
import importlib
import os
import runpy
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from kubechat_tools.paths import DIST, ROOT

WATCHED = ("main.py", "constructs", "overlays", "migrations", "jobs")
"""What a render reads besides the libraries and the tooling: a change here renders again."""
RESTART = ("imports", "scripts", "cdk8s.yaml", "requirements-render.lock", "package-lock.json", "pyproject.toml",
           "crds.yaml")
"""What a loaded library or the running tooling was made from: a change here starts the process again."""
RESTART_EVERY = 5
"""RESTART is looked at every this many intervals (each look walks the folders: a few ms)."""
FRESH = ("kubechat_deploy", "kubechat_tools")
"""Packages imported afresh for every render (kubechat_tools.watch itself excepted)."""


def drop_project_modules() -> None:
    for name in list(sys.modules):
        if name != __name__ and any(name == p or name.startswith(p + ".") for p in FRESH):
            del sys.modules[name]
    importlib.invalidate_caches()


class KernelGone(Exception):
    """The jsii kernel (the Node.js process the typed libraries run in) is gone: only a new process helps."""


class WarmSynth:
    """main.py's parts synthesized in this process. The jsii kernel (a Node.js process started by the first
    import of cdk8s) reads its environment once, when it starts: CDK8S_OUTDIR (every synth writes to that
    one scratch folder and is moved from there) and the warnings tool_env() silences for `make render`."""

    def __init__(self, scratch: Path):
        self.out = scratch / "out"
        os.environ["CDK8S_OUTDIR"] = str(self.out)
        os.environ["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
        os.environ["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
        import cdk8s  # noqa: F401  (starts the kernel with the environment above)

    def synth(self, part: str, output: Path) -> None:
        drop_project_modules()
        shutil.rmtree(self.out, ignore_errors=True)
        try:
            main = runpy.run_path(str(ROOT / "main.py"), run_name="kubechat_watch")  # not __main__: build only
            main["build_app"](parts=(part,)).synth()
        except (BrokenPipeError, EOFError) as error:
            raise KernelGone(str(error)) from error
        shutil.move(str(self.out), str(output))

    def warm_up(self, parts: tuple[str, ...]) -> None:
        """Synthesize each part once, discarding the output: loads every library a part uses (a render whose
        parts all came from the cache loaded none), so the first edit is as quick as the next."""
        for part in parts:
            self.synth(part, self.out.with_name(f"warm-up-{part}"))

    @staticmethod
    def stop() -> None:
        """Stop the kernel and reap it (before a new process image, which would leave it a zombie)."""
        runtime = sys.modules.get("jsii._runtime")  # never import it here: that would start a kernel
        try:
            if runtime is not None:
                runtime.kernel.provider._process.stop()
        except Exception:  # already gone
            pass


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


def restart(scratch: Path, args: argparse.Namespace, why: str) -> None:
    """A new process: through make when make started this one (MAKELEVEL), so `make render`'s install steps
    (venv, cdk8s CLI, kustomize, CRDs) run first; otherwise this script again."""
    print(f"watch: {why}: starting again", flush=True)
    WarmSynth.stop()
    shutil.rmtree(scratch, ignore_errors=True)
    if os.environ.get("MAKELEVEL"):
        goal = ["make", "-C", str(ROOT), "--no-print-directory", "watch"]
        if args.dist.resolve() != DIST.resolve():
            goal.append(f"DIST={args.dist}")
        os.execvp("make", goal)
    os.execv(sys.executable, [sys.executable, *sys.argv])


def watch(scratch: Path) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=DIST, help="output folder (default: dist/)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between looks for changes")
    parser.add_argument("--once", action="store_true", help="render once in a warm process, then stop")
    args = parser.parse_args()
    # This checkout's constructs first, as render.py's synth_env puts them: a clone sharing the venv renders
    # its own code, not the editable install's.
    for folder in (ROOT, ROOT / "constructs"):
        sys.path.insert(0, str(folder))
    print(f"watch: scratch folder {scratch}", flush=True)
    warm = WarmSynth(scratch)  # first: nothing may start the kernel before CDK8S_OUTDIR is set
    from kubechat_tools import overlay_values
    schemas = overlay_values.Schemas()  # the schemas (crds.yaml, the lock files) change only with a restart
    watched, restart_inputs = snapshot(WATCHED), snapshot(RESTART)
    reason, ok, warmed = "start", False, False
    while True:
        drop_project_modules()  # the tooling binds names of kubechat_deploy at import: both afresh
        from kubechat_deploy.layout import PARTS
        from kubechat_tools.render import render
        start = time.perf_counter()
        try:
            render(args.dist, warm=warm, schemas=schemas)
            print(f"watch: rendered in {time.perf_counter() - start:.2f}s ({reason})", flush=True)
            ok = True
            if not warmed and not args.once:
                start = time.perf_counter()
                warm.warm_up(PARTS)
                warmed = True
                print(f"watch: libraries loaded in {time.perf_counter() - start:.2f}s", flush=True)
        except KernelGone as gone:
            restart(scratch, args, f"the jsii kernel is gone ({gone})")
        except (SystemExit, Exception) as failed:
            message = failed.code if isinstance(failed, SystemExit) else None
            if not isinstance(failed, SystemExit):  # an error in a construct (render.fail() printed its own)
                traceback.print_exc(file=sys.stdout)
            elif isinstance(message, str):
                print(message, flush=True)
            where = ("dist/ is written, the docs pages are not" if isinstance(message, str) and "dist/ is written" in message
                     else "dist/ left as it was")
            print(f"watch: render failed ({reason}); {where}; waiting for the next change", flush=True)
            ok = False
        if args.once:
            return 0 if ok else 1
        print("watch: waiting for changes (Ctrl-C stops)", flush=True)
        ticks = 0
        while True:
            time.sleep(args.interval)
            ticks += 1
            if ticks % RESTART_EVERY == 0 and (now := snapshot(RESTART)) != restart_inputs:
                restart(scratch, args, f"{', '.join(changed(restart_inputs, now)[:5])} changed")
            now = snapshot(WATCHED)
            if now != watched:
                while (settled := snapshot(WATCHED)) != now:  # an editor's save can take several writes
                    now = settled
                    time.sleep(args.interval / 4)
                reason = ", ".join(changed(watched, now)[:5])
                watched = now
                break


def main() -> int:
    # SIGTERM (a test, a process manager) stops it as Ctrl-C does: the scratch folder and the kernel go too.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    scratch = Path(tempfile.mkdtemp(prefix="kubechat-watch-"))
    code = 1
    try:
        code = watch(scratch)
    except KeyboardInterrupt:
        print("watch: stopped", flush=True)
        code = 0
    except SystemExit as exit_:  # argparse: --help, a bad option
        code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        WarmSynth.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # The kernel may have died of the same Ctrl-C: skip the interpreter's exit hooks, which would write
        # to its closed pipe and print a BrokenPipeError after "stopped".
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
