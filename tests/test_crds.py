"""18.3: every pinned CRD is pinned by sha256 as well as its address; the setup step refuses a file that
differs from its pin (naming the file and both digests), and without network or mirror fails once with
one message saying how to provide the CRDs."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
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


def test_a_file_the_mirror_lacks_comes_from_its_go_module_and_is_verified(tmp_path, monkeypatch):
    """The offline mirror (../shared/crds) has no Gateway API or Traefik CRDs: with CRD_MIRROR set, each such pin
    comes from its Go module (the proxy; here GOPROXY=off, so only the module cache `make crds` filled), the same
    bytes as the pinned address, and still checked against its sha256."""
    import dataclasses

    from kubechat_tools import crds

    mirror = copy_mirror(tmp_path)
    from_modules = [s for s in load_sources() if s.go_module]
    assert {s.group for s in from_modules} == {"gateway_api", "traefik"}
    for source in from_modules:
        (mirror / source.relative_path).unlink()
    monkeypatch.setenv("CRD_MIRROR", str(mirror))
    monkeypatch.setenv("GOPROXY", "off")
    monkeypatch.setattr(crds, "_MODULE_DIRS", {})
    paths = fetch_all(cache=tmp_path / "cache")
    assert len(paths) == len(load_sources())
    for source in from_modules:
        assert hashlib.sha256(crds.cached_path(source, tmp_path / "cache").read_bytes()).hexdigest() == source.sha256
    # A pin that differs from the module's file is refused, naming where the file came from.
    wrong = dataclasses.replace(from_modules[0], sha256="0" * 64)
    with pytest.raises(CrdError, match=f"from the Go module {from_modules[0].go_module}.*refused"):
        crds.fetch(wrong, cache=tmp_path / "other")
    # A source without a go_module that the mirror lacks is still an error naming the file.
    plain = next(s for s in load_sources() if not s.go_module)
    (mirror / plain.relative_path).unlink()
    with pytest.raises(CrdError, match="CRD_MIRROR: .* is missing"):
        crds.fetch(plain, cache=tmp_path / "third")
