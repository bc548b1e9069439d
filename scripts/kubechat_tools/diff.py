"""Per-environment semantic diff between a git ref and the working tree, for reviewers:
renders both (the ref in a temporary git worktree), then `dyff between` each environment.

Usage: python scripts/diff.py BASE     (make diff BASE=origin/main)
Exit code: 0 whether or not there are differences; 1 when a render fails.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "staging", "production")
TOOLS = (".venv", "node_modules", "bin", ".cache")  # the installed tools and the verified CRDs


def render(checkout: Path, dist: Path) -> None:
    # Each checkout renders with its own constructs, not the venv's editable install of the working tree.
    env = {**os.environ, "PYTHONPATH": f"{checkout / 'constructs'}:{checkout / 'scripts'}"}
    result = subprocess.run([sys.executable, str(checkout / "scripts" / "render.py"), "--dist", str(dist)],
                            cwd=checkout, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"diff: rendering {checkout} failed:\n{result.stderr}")


def concatenate(folder: Path, out: Path) -> Path:
    out.write_text("".join(f"---\n{p.read_text()}" for p in sorted(folder.glob("*.yaml"))))
    return out


def main(argv: list[str]) -> int:
    if argv in (["-h"], ["--help"]):
        print("usage: diff.py BASE\n  per-environment semantic diff (dyff) of the render against BASE, a git ref such "
              "as origin/main, each side rendered with its own code")
        return 0
    if len(argv) != 1:
        print("usage: diff.py BASE (a git ref, e.g. origin/main)", file=sys.stderr)
        return 2
    base = argv[0]
    if subprocess.run(["git", "rev-parse", "--verify", "--quiet", base + "^{commit}"], cwd=ROOT,
                      capture_output=True).returncode != 0:
        print(f"diff: BASE={base!r} is not a commit in this repository", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kubechat-diff-") as tmp:
        work = Path(tmp)
        worktree = work / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(worktree), base], cwd=ROOT, check=True)
        try:
            for tool in TOOLS:
                (worktree / tool).symlink_to(ROOT / tool)
            render(worktree, work / "base-dist")
            render(ROOT, work / "head-dist")
            for env in ENVIRONMENTS:
                old = concatenate(work / "base-dist" / "rendered" / env, work / f"{env}-base.yaml")
                new = concatenate(work / "head-dist" / "rendered" / env, work / f"{env}-head.yaml")
                result = subprocess.run([str(ROOT / "bin" / "dyff"), "between", "--omit-header", "--set-exit-code",
                                         "--no-table-style", str(old), str(new)], capture_output=True, text=True)
                if result.returncode not in (0, 1):
                    print(f"diff: dyff failed for {env}: {result.stderr}", file=sys.stderr)
                    return 1
                body = result.stdout.strip() if result.returncode == 1 else "no changes"
                print(f"## {env}\n\n```\n{body}\n```\n", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, capture_output=True)
            shutil.rmtree(worktree, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
