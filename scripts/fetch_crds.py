"""Fetch every CRD pinned in crds.yaml once (upstream, or CRD_MIRROR offline), verify each against its
pinned sha256, and keep the verified copies in .cache/crds/ for renders and tests (`make crds`)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubechat_tools.crds import CrdError, fetch_all  # noqa: E402


def main() -> int:
    try:
        paths = fetch_all()
    except CrdError as error:
        print(f"crds: FAILED: {error}", file=sys.stderr)
        return 1
    print(f"crds: {len(paths)} pinned CRD files verified (sha256) in .cache/crds/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
