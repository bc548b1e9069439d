"""Benchmark: the time of a full render against its floor, over several runs.

Floor: an empty cdk8s app's synth plus `kustomize build` of three trivial overlays, on this machine.
Target: the full render within 2x the floor. Prints numbers; it asserts nothing (tests never time).

Usage: python scripts/bench.py [--runs N]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubechat-bench-") as tmp:
        work = Path(tmp)
        floor_cmds = floor_commands(work)
        render_cmd = [[sys.executable, str(ROOT / "scripts" / "render.py"), "--dist", str(work / "dist")]]
        timed(floor_cmds, work), timed(render_cmd, ROOT)  # warm caches once
        floors, renders = [], []
        for _ in range(args.runs):
            floors.append(timed(floor_cmds, work))
            renders.append(timed(render_cmd, ROOT))
    floor, render = statistics.median(floors), statistics.median(renders)
    print(f"bench: {args.runs} runs each, median (min-max)")
    print(f"bench: floor  (empty synth + 3 trivial kustomize builds): {floor:.2f}s ({min(floors):.2f}-{max(floors):.2f})")
    print(f"bench: render (make render, all environments):           {render:.2f}s ({min(renders):.2f}-{max(renders):.2f})")
    print(f"bench: ratio render/floor: {render / floor:.2f}x (target <= 2.00x)")
    footprint = ROOT / "scripts" / "footprint.py"
    if footprint.exists():
        sys.stdout.flush()
        subprocess.run([sys.executable, str(footprint)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
