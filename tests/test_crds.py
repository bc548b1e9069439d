"""18.3: every pinned CRD is pinned by sha256 as well as its address; the setup step refuses a file that
differs from its pin (naming the file and both digests), and without network or mirror fails once with
one message saying how to provide the CRDs."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from pathlib import Path
from kubechat_tools.crds import CrdError, fetch_all, load_sources


def test_every_pin_has_a_sha256_the_verified_cache_matches():
    sources = load_sources()
    assert sources and all(len(s.sha256) == 64 for s in sources)
    from kubechat_tools.crds import cached_path

    for source in sources:
        assert hashlib.sha256(cached_path(source).read_bytes()).hexdigest() == source.sha256, source.url


def copy_mirror(tmp_path):
    """A mirror holding exactly the pinned files (from the verified cache)."""
    from kubechat_tools.crds import cached_path

    mirror = tmp_path / "mirror"
    for source in load_sources():
        target = mirror / source.relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(cached_path(source), target)
    return mirror


def test_a_tampered_crd_is_refused_with_its_name_and_both_digests(tmp_path, monkeypatch):
    mirror = copy_mirror(tmp_path)
    victim = load_sources()[3]
    path = mirror / victim.relative_path
    path.write_bytes(path.read_bytes().replace(b"description:", b"description: tampered", 1))
    tampered = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setenv("CRD_MIRROR", str(mirror))
    with pytest.raises(CrdError) as refused:
        fetch_all(cache=tmp_path / "cache")
    message = str(refused.value)
    assert victim.relative_path in message and tampered in message and victim.sha256 in message, message
    assert not (tmp_path / "cache" / victim.relative_path).exists(), "a refused file must not enter the cache"


def test_a_tampered_cache_is_refused_too(tmp_path, monkeypatch):
    mirror = copy_mirror(tmp_path)
    monkeypatch.setenv("CRD_MIRROR", str(mirror))
    cache = tmp_path / "cache"
    fetch_all(cache=cache)
    victim = load_sources()[0]
    (cache / victim.relative_path).write_text("kind: CustomResourceDefinition\n")
    with pytest.raises(CrdError, match=victim.sha256):
        fetch_all(cache=cache)


def test_without_network_or_mirror_setup_fails_once_saying_how_to_provide_them(tmp_path):
    """The setup step, offline (downloads are refused by an unreachable proxy) and without CRD_MIRROR, on a
    copy of the project with an empty cache: one message, exit 1."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copytree(ROOT / "scripts" / "kubechat_tools", project / "scripts" / "kubechat_tools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for script in ("fetch_crds.py", "project_python.py"):
        shutil.copy(ROOT / "scripts" / script, project / "scripts" / script)
    shutil.copy(ROOT / "crds.yaml", project / "crds.yaml")
    (project / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if k != "CRD_MIRROR"}
    env.update({"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""})
    result = subprocess.run([sys.executable, str(project / "scripts" / "fetch_crds.py")], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("crds: FAILED: cannot download https://raw.githubusercontent.com/"), lines
    # It says how to obtain a mirror, not only how to point at one (issue #25.5: it named ../shared/crds, a
    # folder a user does not have).
    assert "run `make crds` in a clone of this repository and copy its .cache/crds/ folder" in lines[0]
    assert "`python3 scripts/fetch_crds.py --list`" in lines[0] and "`CRD_MIRROR=<that folder> make crds`" in lines[0]
    assert "../shared" not in lines[0]
    listed = subprocess.run([sys.executable, str(project / "scripts" / "fetch_crds.py"), "--list"], capture_output=True,
                            text=True, env=env, timeout=120)
    sources = load_sources()
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == len(sources)
    assert f"{sources[0].url}  sha256:{sources[0].sha256}  <mirror>/{sources[0].relative_path}" in listed.stdout


def test_the_crd_step_runs_before_the_long_installs():
    """Offline without a mirror, make check, make test and make render fail at the CRD step after the render
    venv, not after the test packages, checkov and the Go tools (issue #25.5: 11 minutes of installs first)."""
    for target in ("check", "test", "render"):
        plan = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        crds = plan.index("scripts/fetch_crds.py")
        for later in ("requirements.lock", "npm ci", "go build", "requirements-checkov.lock"):
            if later in plan:
                assert plan.index(later) > crds, f"make {target} runs {later!r} before the CRD step"


def module_proxy(root: Path, module: str, version: str, files: dict[str, bytes]) -> str:
    """A Go module proxy on disk (GOPROXY=file://...: the layout the go command reads, <module>/@v/...) serving
    one module version holding `files`; returns its GOPROXY value."""
    import zipfile

    folder = root / module / "@v"
    folder.mkdir(parents=True)
    (folder / "list").write_text(version + "\n")
    (folder / f"{version}.info").write_text(json.dumps({"Version": version, "Time": "2026-01-01T00:00:00Z"}))
    (folder / f"{version}.mod").write_text(f"module {module}\n")
    with zipfile.ZipFile(folder / f"{version}.zip", "w") as archive:
        archive.writestr(f"{module}@{version}/go.mod", f"module {module}\n")
        for name, content in files.items():
            archive.writestr(f"{module}@{version}/{name}", content)
    return f"file://{root}"


def test_a_file_the_mirror_lacks_comes_from_its_go_module_and_is_verified(tmp_path, monkeypatch):
    """A pin may name the Go module holding the same file at the same tag (go_module: the front door's Gateway
    API and Traefik CRDs are served by the Go module proxy, not by the offline mirror). With CRD_MIRROR set and
    the file missing from the mirror, it comes from that module through the real go command (here from a
    module proxy on disk, so offline), still checked against its sha256; a source without go_module that the
    mirror lacks is still an error naming the file."""
    import dataclasses

    from kubechat_tools import crds

    content = b"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: tests.example.com\n"
    module, version, path = "example.com/crds", "v1.2.3", "config/crd/example.com_tests.yaml"
    source = crds.CrdSource(group="example", url=f"https://raw.githubusercontent.com/example/crds/{version}/{path}",
                            typed=False, sha256=hashlib.sha256(content).hexdigest(), go_module=f"{module}@{version}")
    monkeypatch.setenv("GOPROXY", module_proxy(tmp_path / "proxy", module, version, {path: content}))
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "modcache"))
    monkeypatch.setenv("GOSUMDB", "off")
    monkeypatch.setenv("GOFLAGS", "-mod=mod")
    monkeypatch.setenv("CRD_MIRROR", str(tmp_path / "mirror"))
    (tmp_path / "mirror").mkdir()
    monkeypatch.setattr(crds, "_MODULE_DIRS", {})
    cached = crds.fetch(source, cache=tmp_path / "cache")
    assert cached.read_bytes() == content
    # A pin that differs from the module's file is refused, naming where the file came from; nothing is cached.
    wrong = dataclasses.replace(source, sha256="0" * 64)
    with pytest.raises(CrdError, match=f"from the Go module {module}@{version}.*refused"):
        crds.fetch(wrong, cache=tmp_path / "other")
    assert not (tmp_path / "other" / wrong.relative_path).exists()
    # A path the module does not hold, and a module the proxy does not serve, are named.
    with pytest.raises(CrdError, match="is not in the Go module"):
        crds.fetch(dataclasses.replace(source, url=source.url.replace("tests.yaml", "other.yaml")), cache=tmp_path / "x")
    monkeypatch.setattr(crds, "_MODULE_DIRS", {})
    with pytest.raises(CrdError, match="go mod download example.com/missing@v1.0.0 failed"):
        crds.fetch(dataclasses.replace(source, go_module="example.com/missing@v1.0.0"), cache=tmp_path / "y")
    # Without go_module, a file the mirror lacks is still an error naming it.
    with pytest.raises(CrdError, match="CRD_MIRROR: .* is missing"):
        crds.fetch(dataclasses.replace(source, go_module=None), cache=tmp_path / "z")
