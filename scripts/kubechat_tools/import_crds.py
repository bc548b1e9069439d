"""Regenerate imports/ from the pinned CRDs with `cdk8s import`, one Python module per group.

Usage: python scripts/import_crds.py   (CRD_MIRROR=../shared/crds offline)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


from kubechat_tools.crds import fetch, load_sources  # noqa: E402
from kubechat_tools.paths import ROOT  # noqa: E402

CDK8S = ROOT / "node_modules" / ".bin" / "cdk8s"


def main(argv: list[str] | None = None) -> int:
    if (argv if argv is not None else sys.argv[1:]) in (["-h"], ["--help"]):
        print("usage: import_crds.py\n  regenerate imports/ with `cdk8s import` from the CRDs pinned in crds.yaml")
        return 0
    groups: dict[str, list[Path]] = {}
    for source in load_sources():
        if source.typed:
            groups.setdefault(source.group, []).append(fetch(source))
    env = dict(os.environ, CDK8S_CHECK_UPGRADE="false", JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="1",
               JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1")
    with tempfile.TemporaryDirectory(prefix="kubechat-imports-") as tmp:
        out = Path(tmp) / "imports"
        for group, files in sorted(groups.items()):
            combined = Path(tmp) / f"{group}.yaml"
            combined.write_text("\n---\n".join(f.read_text() for f in files))
            print(f"import: {group} ({len(files)} CRD files)", flush=True)
            subprocess.run(
                [str(CDK8S), "import", "--no-check-upgrade", "--language", "python", "--output", str(out),
                 f"{group}:={combined}"],
                check=True, env=env, cwd=tmp,
            )
        target = ROOT / "imports"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(out, target)
    print(f"import: wrote {target.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
