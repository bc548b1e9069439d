"""#26.7: CRDs that platform Applications serve from git (an operator whose chart ships an older app runs the
pinned app with the CRDs of its own tag, a second source) are never pruned: Argo CD would prune a CRD that
left the folder, and every object of its kind with it. Each such source is a kustomization that Argo CD
annotates with Prune=false,Delete=false (`kustomize edit add annotation`, then `kustomize build`: argo-cd
v3.5.1 util/kustomize/kustomize.go). Done here as Argo CD does it, with the project's kustomize, on the
operator's own module at the pinned tag (the Go module proxy serves the repository's files): the folder exists
there, builds, holds exactly the CRDs crds.yaml pins for it, and each carries the annotation."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from kubechat_tools.crds import cached_path, load_sources
from kubechat_tools.manifests import load_all_text, load_dir
from kubechat_tools.paths import BIN, DIST

pytestmark = pytest.mark.delivery

MODULES = {"https://github.com/argoproj/argo-rollouts.git": "github.com/argoproj/argo-rollouts",
           "https://github.com/cloudnative-pg/plugin-barman-cloud.git": "github.com/cloudnative-pg/plugin-barman-cloud"}
"""Repository -> its Go module (the module zip holds the repository's files at the tag)."""


def git_sources() -> list[tuple[str, dict]]:
    apps = load_dir(DIST / "platform" / "prerequisites")
    return [(a["metadata"]["name"], s) for a in apps if a["kind"] == "Application"
            for s in a["spec"].get("sources", []) if s.get("path")]


def module_dir(module: str, version: str) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], cwd=scratch,
                                capture_output=True, text=True, env={**os.environ, "GOFLAGS": "-mod=mod"})
    info = json.loads(result.stdout or "{}")
    assert info.get("Dir"), f"go mod download {module}@{version}: {info.get('Error') or result.stderr}"
    return Path(info["Dir"])


def test_git_sources_exist():
    assert {app for app, _ in git_sources()} == {"platform-argo-rollouts", "platform-plugin-barman-cloud"}


@pytest.mark.parametrize("app, source", git_sources(), ids=[app for app, _ in git_sources()])
def test_crds_served_from_git_are_never_pruned(app, source, tmp_path):
    annotations = (source.get("kustomize") or {}).get("commonAnnotations") or {}
    assert annotations == {"argocd.argoproj.io/sync-options": "Prune=false,Delete=false"}, source
    folder = module_dir(MODULES[source["repoURL"]], source["targetRevision"]) / source["path"]
    assert (folder / "kustomization.yaml").is_file(), f"{source['path']} is not a kustomization at {source['targetRevision']}"
    work = tmp_path / "source"  # Argo CD works on a copy too; the module cache is read-only
    shutil.copytree(folder, work)
    for path in [work, *work.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    for key, value in annotations.items():
        subprocess.run([str(BIN / "kustomize"), "edit", "add", "annotation", f"{key}:{value}"], cwd=work, check=True)
    built = subprocess.run([str(BIN / "kustomize"), "build", str(work)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    docs = load_all_text(built.stdout)
    assert docs and all(d["kind"] == "CustomResourceDefinition" for d in docs)
    assert all(d["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false" for d in docs)
    repo = MODULES[source["repoURL"]].removeprefix("github.com/")
    pinned = {yaml.safe_load(cached_path(s).read_text())["metadata"]["name"]
              for s in load_sources() if s.relative_path.startswith(f"{repo}/{source['targetRevision']}/")}
    assert pinned and {d["metadata"]["name"] for d in docs} == pinned
