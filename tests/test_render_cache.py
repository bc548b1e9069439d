"""18.4: the render's content-addressed cache of synthesized parts (kubechat_tools/render_cache.py):
a cached render is byte-identical to a full one, and changing any kind of input invalidates exactly the
parts that read it. The invalidation cases run the cache's real recorder on a small app of their own."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kubechat_tools import render_cache
from kubechat_tools.paths import ROOT

RENDER = ROOT / "scripts" / "render.py"


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_cached_render_is_byte_identical_to_a_full_render(tmp_path):
    full, cached = tmp_path / "full" / "dist", tmp_path / "cached" / "dist"
    for dist, extra in ((full, ["--no-cache"]), (cached, [])):
        result = subprocess.run([sys.executable, str(RENDER), "--dist", str(dist), *extra], capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stderr
    again = subprocess.run([sys.executable, str(RENDER), "--dist", str(cached)], capture_output=True, text=True,
                           timeout=600)
    assert "environments: unchanged inputs, synth taken from the cache" in again.stdout
    assert "platform: unchanged inputs, synth taken from the cache" in again.stdout
    assert tree(full) == tree(cached)


def test_each_part_records_what_it_reads(tmp_path):
    """The recorder sees the real synth's inputs: data files and folders, not only modules. The
    environments part reads the migrations and job scripts; the platform part Argo CD's health checks."""
    for part in ("environments", "platform"):  # a miss, so this render records its own inputs
        (render_cache.cache_root(ROOT) / part / "inputs.json").unlink(missing_ok=True)
    subprocess.run([sys.executable, str(RENDER), "--dist", str(tmp_path / "dist")], check=True, capture_output=True)
    inputs = {part: json.loads((render_cache.cache_root(ROOT) / part / "inputs.json").read_text())
              for part in ("environments", "platform")}
    rel = lambda part: set(inputs[part]["files"])  # inside the project, recorded relative to it  # noqa: E731
    assert {"migrations/0001_users_and_roles.up.sql", "jobs/smoke_test.sh", "main.py",
            "constructs/kubechat_deploy/app/web.py"} <= rel("environments")
    assert "migrations" in inputs["environments"]["dirs"]
    assert any(f.startswith("constructs/kubechat_deploy/platform/argocd_health/") and f.endswith(".lua") for f in rel("platform"))
    assert not any(f.startswith("migrations/") for f in rel("platform"))


# --- invalidation, on an app of the test's own ----------------------------------------------------

APP = textwrap.dedent("""\
    import sys
    from pathlib import Path
    import helper
    part = sys.argv[1]
    data = Path("data.txt").read_text() if part == "one" else ""
    listing = sorted(p.name for p in Path("scripts").glob("*.sh")) if part == "one" else []
    Path("out-" + part).write_text(helper.VALUE + data + ",".join(listing))
    """)


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    (root / "main.py").write_text(APP)
    (root / "helper.py").write_text("VALUE = 'a'\n")
    (root / "unrelated.py").write_text("X = 1\n")
    (root / "data.txt").write_text("data\n")
    (root / "scripts" / "one.sh").write_text("echo one\n")
    for name in render_cache.GLOBAL_FILES:
        (root / name).write_text(f"{name} v1\n")
    monkeypatch.chdir(root)
    return root


def synth(root: Path, part: str) -> None:
    """What render.py does for a part that missed: run it under the recorder, store the output."""
    record = root / f"inputs-{part}.json"
    subprocess.run([sys.executable, str(Path(render_cache.__file__)), str(record), "main.py", part], cwd=root,
                   check=True)
    out = root / f"charts-{part}"
    out.mkdir(exist_ok=True)
    (out / "chart.k8s.yaml").write_text((root / f"out-{part}").read_text())
    _, base = render_cache.lookup(root, part, f"app {part}")
    render_cache.store(root, part, base, out, record)


def hit(root: Path, part: str, app: str | None = None) -> bool:
    return render_cache.lookup(root, part, app or f"app {part}")[0] is not None


def test_an_unchanged_part_is_a_hit_and_the_cache_holds_its_output(project):
    synth(project, "one")
    folder, _ = render_cache.lookup(project, "one", "app one")
    assert folder is not None and (folder / "chart.k8s.yaml").read_text() == "a" + "data\n" + "one.sh"


@pytest.mark.parametrize("change", [
    pytest.param(lambda r: (r / "helper.py").write_text("VALUE = 'b'\n"), id="an-imported-module"),
    pytest.param(lambda r: (r / "main.py").write_text(APP + "# edited\n"), id="the-app"),
    pytest.param(lambda r: (r / "data.txt").write_text("other\n"), id="a-data-file-read"),
    pytest.param(lambda r: (r / "data.txt").unlink(), id="a-data-file-removed"),
    pytest.param(lambda r: (r / "scripts" / "two.sh").write_text("echo two\n"), id="a-file-added-to-a-listed-folder"),
    pytest.param(lambda r: (r / "requirements-render.lock").write_text("cdk8s==9\n"), id="the-python-lock"),
    pytest.param(lambda r: (r / "package-lock.json").write_text("{}\n"), id="the-npm-lock"),
    pytest.param(lambda r: (r / "pyproject.toml").write_text("[project]\n"), id="pyproject"),
])
def test_changing_an_input_invalidates_the_part(project, change):
    synth(project, "one")
    assert hit(project, "one")
    change(project)
    assert not hit(project, "one")


def test_tool_versions_and_the_command_are_part_of_the_key(project, monkeypatch):
    synth(project, "one")
    assert not hit(project, "one", "app one --other-flag")
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    assert not hit(project, "one")
    monkeypatch.undo()
    monkeypatch.chdir(project)
    real = subprocess.run
    monkeypatch.setattr(render_cache.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 0, stdout="v99.0.0\n") if cmd[:2] == ["node", "--version"] else real(cmd, **kw))
    assert not hit(project, "one")


def test_an_edit_re_synthesizes_only_the_parts_that_read_it(project):
    synth(project, "one")
    synth(project, "two")
    (project / "data.txt").write_text("other\n")  # read by part one only
    (project / "unrelated.py").write_text("X = 2\n")  # read by no part
    assert not hit(project, "one") and hit(project, "two")


def test_the_cache_can_be_turned_off(project, monkeypatch):
    synth(project, "one")
    monkeypatch.setenv("KUBECHAT_RENDER_CACHE", "off")
    assert not hit(project, "one")


def test_a_copy_of_the_project_sharing_the_cache_keys_its_own_files(project, tmp_path):
    """`make diff` renders a git worktree of the base beside the working tree, and the release tests a clone,
    each with .cache/ shared. GIVEN a part cached by the project WHEN a copy with .cache/ linked to the
    project's looks it up THEN an unchanged copy hits, and a copy whose module differs misses (the cache
    recorded absolute paths: the copy looked up the project's files and got the project's synth)."""
    import shutil

    synth(project, "one")
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".cache"))
    (copy / ".cache").symlink_to(project / ".cache")
    assert hit(copy, "one"), "an unchanged copy should find the project's synth"
    (copy / "helper.py").write_text("VALUE = 'copy'\n")
    assert not hit(copy, "one"), "the copy's edited module was not part of its key"
    assert hit(project, "one")
