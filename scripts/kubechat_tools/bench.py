"""Benchmark: render times against their floor, over several runs.

Floor: an empty cdk8s app's synth plus `kustomize build` of three trivial overlays, on this machine.
Measured: a full render (every part synthesized, --no-cache); a render with nothing changed; a render
after an overlay edit; renders after a construct edit (app/web.py, an application construct only the
environments part reads, and platform/log_aggregation.py, read by the platform part only: real edits of the
files, restored afterwards); the same edits with `make watch`'s warm process running as users run it
(into the project's dist/ with the docs pages: from the write of the file until it waits again, so noticing
the save, the warm synth and the rest of the render), against a floor timed between those edits;
and the breakdown of a full render (each synth part,
each kustomize build, the generated docs). Target: 2x the floor. Prints numbers; asserts nothing
(tests never time).

Usage: python scripts/bench.py [--runs N]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from kubechat_tools.paths import BIN, ROOT  # noqa: E402
from kubechat_tools.toolenv import tool_env  # noqa: E402

CDK8S = str(ROOT / "node_modules" / ".bin" / "cdk8s")
EMPTY_APP = "from cdk8s import App, Chart\napp = App()\nChart(app, 'empty')\napp.synth()\n"


def timed(commands: list[list[str]], cwd: Path) -> float:
    start = time.perf_counter()
    for command in commands:
        subprocess.run(command, cwd=cwd, env=tool_env(), check=True, capture_output=True)
    return time.perf_counter() - start


def floor_commands(work: Path) -> list[list[str]]:
    (work / "empty.py").write_text(EMPTY_APP)
    (work / "cdk8s.yaml").write_text("language: python\napp: python empty.py\n")
    base = work / "base"
    base.mkdir()
    (base / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: floor\n")
    (base / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    commands = [[CDK8S, "synth", "--no-check-upgrade", "--output", str(work / "out")]]
    for env in ("dev", "staging", "production"):
        overlay = work / env
        overlay.mkdir()
        (overlay / "kustomization.yaml").write_text(f"namespace: {env}\nresources: [../base]\n")
        commands.append([str(BIN / "kustomize"), "build", str(overlay)])
    return commands


def stats(label: str, values: list[float], floor: float) -> None:
    value = statistics.median(values)
    print(f"bench: {label:<52} {value:5.2f}s ({min(values):.2f}-{max(values):.2f})  {value / floor:5.2f}x floor")


def watch_edits(constructs: list[Path], originals: dict[Path, bytes], runs: int,
                floor_cmds: list[list[str]], work: Path) -> tuple[dict[Path, list[float]], list[float]]:
    """Edit-to-render with scripts/watch.py running as `make watch` runs it (the project's dist/ and the generated
    docs pages, the default interval between looks): each construct edited in turn, the time from the write to
    the watcher waiting again after its render. The edits are comments, so dist/ is rewritten with the bytes
    `make render` writes. The floor is timed between the edits too (the machine's load then), returned second."""
    process = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "watch.py")], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)

    def rendered() -> None:
        """Until the watcher waits again (after its first render it loads the libraries first)."""
        for line in process.stdout:
            if line.startswith("watch: render failed"):
                raise SystemExit(f"bench: make watch failed to render: {line.strip()}")
            if line.startswith("watch: waiting for changes"):
                return
        raise SystemExit("bench: make watch stopped")

    times: dict[Path, list[float]] = {path: [] for path in constructs}
    floors = []
    try:
        rendered()  # the first, full render
        for i in range(runs):
            for path in constructs:
                floors.append(timed(floor_cmds, work))
                start = time.perf_counter()
                path.write_bytes(originals[path] + f"# bench edit {i} {time.time_ns()}\n".encode())
                rendered()
                times[path].append(time.perf_counter() - start)
                path.write_bytes(originals[path])
                rendered()
    finally:
        process.terminate()
        process.wait(timeout=30)
    return times, floors


def breakdown(work: Path) -> None:
    """The parts of a full render, each timed alone (sequentially; a render runs synths and builds in parallel)."""
    env = tool_env()
    for part in ("environments", "platform"):
        start = time.perf_counter()
        subprocess.run([CDK8S, "synth", "--no-check-upgrade", "--output", str(work / f"b-{part}"), "--app",
                        f"python main.py {part}"], cwd=ROOT, env=env, check=True, capture_output=True)
        print(f"bench:   synth {part:<14} {time.perf_counter() - start:5.2f}s")
    for env_name in ("dev", "staging", "production"):
        start = time.perf_counter()
        subprocess.run([str(BIN / "kustomize"), "build", str(ROOT / "overlays" / env_name)], check=True,
                       capture_output=True)
        print(f"bench:   kustomize build {env_name:<10} {time.perf_counter() - start:5.2f}s")
    for script in ("runbooks.py", "config_reference.py"):
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "scripts" / script)], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        print(f"bench:   {script:<24} {time.perf_counter() - start:5.2f}s")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import cdk8s_plus_28"], env=env, check=True)
    print(f"bench:   (of which loading cdk8s-plus-28 alone: {time.perf_counter() - start:.2f}s per process)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # app/web.py is read by the environments part only (the platform part loads no application module,
    # tests/test_architecture.py); platform/log_aggregation.py by the platform part only.
    constructs = [ROOT / "constructs" / "kubechat_deploy" / name for name in ("app/web.py", "platform/log_aggregation.py")]
    originals = {path: path.read_bytes() for path in constructs}
    with tempfile.TemporaryDirectory(prefix="kubechat-bench-") as tmp:
        work = Path(tmp)
        floor_cmds = floor_commands(work)
        dist = str(work / "dist")
        render = [sys.executable, str(ROOT / "scripts" / "render.py"), "--dist", dist]
        overlays = work / "overlays"
        shutil.copytree(ROOT / "overlays", overlays)
        timed(floor_cmds, work), timed([render], ROOT)  # warm caches once
        floors, full, same, overlay_edit = [], [], [], []
        construct_edit: dict[Path, list[float]] = {path: [] for path in constructs}
        try:
            for i in range(args.runs):
                floors.append(timed(floor_cmds, work))
                full.append(timed([render + ["--no-cache"]], ROOT))
                same.append(timed([render], ROOT))
                scaling = overlays / "dev" / "scaling.yaml"  # a value edit: dev's API scales to 2 + i replicas
                scaling.write_text((ROOT / "overlays" / "dev" / "scaling.yaml").read_text().replace(
                    "maxReplicas: 2", f"maxReplicas: {2 + i + 1}", 1))
                overlay_edit.append(timed([render + ["--overlays", str(overlays)]], ROOT))
                for path in constructs:
                    path.write_bytes(originals[path] + f"# bench edit {i} {time.time_ns()}\n".encode())
                    construct_edit[path].append(timed([render], ROOT))
                    path.write_bytes(originals[path])
            watched, watch_floors = watch_edits(constructs, originals, args.runs, floor_cmds, work)
        finally:
            for path, original in originals.items():
                path.write_bytes(original)
        floor = statistics.median(floors)
        print(f"bench: {args.runs} runs each, median (min-max)")
        print(f"bench: {'floor (empty synth + 3 trivial kustomize builds)':<52} {floor:5.2f}s "
              f"({min(floors):.2f}-{max(floors):.2f})")
        stats("full render (every part synthesized, --no-cache)", full, floor)
        stats("render, nothing changed (synth parts cached)", same, floor)
        stats("render after an overlay edit (overlays/dev)", overlay_edit, floor)
        stats("render after an application construct edit (app/web.py)", construct_edit[constructs[0]], floor)
        stats("render after a platform construct edit (platform/log_aggregation.py)", construct_edit[constructs[1]], floor)
        watch_floor = statistics.median(watch_floors)
        print(f"bench: {'floor, timed between the make watch edits':<52} {watch_floor:5.2f}s "
              f"({min(watch_floors):.2f}-{max(watch_floors):.2f})")
        stats("make watch: edit to render, application construct (app/web.py)", watched[constructs[0]], watch_floor)
        stats("make watch: edit to render, platform construct (log_aggregation.py)", watched[constructs[1]], watch_floor)
        print("bench: target <= 2.00x floor")
        print("bench: breakdown of a full render, each part alone:")
        breakdown(work)
    footprint = ROOT / "scripts" / "footprint.py"
    if footprint.exists():
        sys.stdout.flush()
        subprocess.run([sys.executable, str(footprint)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
