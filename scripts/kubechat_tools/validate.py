"""Run every validation gate on every rendered environment (dist/rendered/<env>) and report.

Usage: python scripts/validate.py [ENV...]
"""
from __future__ import annotations

import sys
from pathlib import Path


from kubechat_tools.gates import GATES, lint_gate  # noqa: E402
from kubechat_tools.paths import DIST, ENVIRONMENTS  # noqa: E402


def main(argv: list[str]) -> int:
    if argv in (["-h"], ["--help"]):
        print(f"usage: validate.py [ENV ...]\n  run every validation gate on dist/rendered/<ENV> "
              f"(default: {', '.join(ENVIRONMENTS)}), with a report per environment and gate")
        return 0
    environments = argv or list(ENVIRONMENTS)
    total = 0
    for env in environments:
        folder = DIST / "rendered" / env
        if not folder.is_dir():
            print(f"validate: {folder} does not exist; run `make render` first", file=sys.stderr)
            return 1
        for name, gate in GATES.items():
            failures = lint_gate([folder], env) if gate is lint_gate else gate([folder])
            status = "ok" if not failures else f"{len(failures)} failure(s)"
            print(f"validate: {env}: {name}: {status}", flush=True)
            for failure in failures:
                print(f"  {failure}")
            total += len(failures)
    print(f"validate: {'passed' if total == 0 else f'FAILED with {total} failure(s)'}")
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
