"""Fetch every CRD pinned in crds.yaml once (upstream, or CRD_MIRROR offline), verify each against its
pinned sha256, and keep the verified copies in .cache/crds/ for renders and tests (`make crds`)."""
from __future__ import annotations

import sys
from pathlib import Path


from kubechat_tools.crds import CrdError, fetch_all, load_sources  # noqa: E402


def main(argv: list[str]) -> int:
    if argv in (["-h"], ["--help"]):
        print("usage: fetch_crds.py [--list]\n  fetch and verify every CRD pinned in crds.yaml into .cache/crds/ "
              "(CRD_MIRROR=<folder> offline); --list prints each address, its sha256 and its path in a mirror")
        return 0
    if argv == ["--list"]:
        for source in load_sources():
            print(f"{source.url}  sha256:{source.sha256}  <mirror>/{source.relative_path}")
        return 0
    try:
        paths = fetch_all()
    except CrdError as error:
        print(f"crds: FAILED: {error}", file=sys.stderr)
        return 1
    print(f"crds: {len(paths)} pinned CRD files verified (sha256) in .cache/crds/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
