"""Resource footprint of each rendered environment: the CPU and memory its pods request at their
minimum replica count (HPA minReplicas, else replicas), and the per-workload breakdown.

Usage: python scripts/footprint.py   (make bench prints it too)
"""
from __future__ import annotations

import sys
from pathlib import Path


from kubechat_tools.footprint import footprint  # noqa: E402
from kubechat_tools.manifests import load_dir  # noqa: E402
from kubechat_tools.paths import DIST, ENVIRONMENTS  # noqa: E402


def main() -> int:
    for env in ENVIRONMENTS:
        total = footprint(load_dir(DIST / "rendered" / env))
        print(f"footprint: {env}: requests {total.cpu_millis}m CPU, {total.memory_bytes / 2**20:.0f}Mi memory "
              f"({len(total.items)} workloads)")
        for name, replicas, cpu, memory in total.items:
            print(f"footprint:   {name}: {replicas} x ({cpu}m, {memory / 2**20:.0f}Mi)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
