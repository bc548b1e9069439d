"""`make watch` (scripts/kubechat_tools/watch.py), the edit loop's warm render process: what it writes is
byte-identical to `make render`'s, after a construct edit too; a broken edit leaves dist/ as it was and the
next save renders again; a change to what a loaded library was made from (imports/) starts it again."""
from __future__ import annotations

import hashlib
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT

WATCH = ROOT / "scripts" / "watch.py"


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_warm_render_is_byte_identical_to_the_committed_dist(tmp_path):
    """Both parts synthesized in the warm process (the cache off), into another folder: the same bytes as
    dist/, which tests/test_render.py proves is what `make render` writes."""
    result = subprocess.run([sys.executable, str(WATCH), "--once", "--dist", str(tmp_path / "dist")],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "KUBECHAT_RENDER_CACHE": "off"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "render: environments: synthesized (warm process)" in result.stdout
    assert "render: platform: synthesized (warm process)" in result.stdout
    assert tree(tmp_path / "dist") == tree(ROOT / "dist")


def by_hand(repo: Path) -> dict[str, str]:
    """The environment of `python scripts/watch.py` typed in a shell: not make's (under `make test` the tests
    inherit MAKELEVEL, and a watcher that sees it restarts through `make watch`, a process this test did not
    start and whose SIGTERM ends make, not the watcher)."""
    env = {key: value for key, value in os.environ.items() if key not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return {**env, "PYTHONPATH": f"{repo / 'constructs'}:{repo / 'scripts'}"}


class Watcher:
    """scripts/watch.py running in a clone, its output read line by line."""

    def __init__(self, repo: Path):
        self.process = subprocess.Popen([sys.executable, "scripts/watch.py", "--interval", "0.1"], cwd=repo,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=by_hand(repo))
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stdout], daemon=True).start()

    def next_result(self, timeout: float = 180) -> str:
        """The next 'rendered' or 'failed' line (every line is kept in self.seen)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.process.poll() is None, "watch stopped:\n" + "".join(self.seen)
                continue
            self.seen.append(line)
            if line.startswith(("watch: rendered", "watch: render failed")):
                return line
        raise AssertionError("no render within the time:\n" + "".join(self.seen))

    def stop(self) -> None:
        """SIGTERM, as a process manager stops it: it ends as Ctrl-C ends it, saying so, exit 0."""
        self.process.terminate()
        assert self.process.wait(timeout=30) == 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(line.startswith("watch: stopped") for line in self.seen):
            try:
                self.seen.append(self.lines.get(timeout=0.5))
            except queue.Empty:
                pass
        assert any(line.startswith("watch: stopped") for line in self.seen), self.seen[-5:]


@pytest.mark.tree
def test_an_edit_renders_again_as_make_render_would(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    for tool in (".venv", "node_modules", "bin", ".cache"):
        (repo / tool).symlink_to(ROOT / tool)
    web = repo / "constructs" / "kubechat_deploy" / "app" / "web.py"
    original = web.read_text()
    watcher = Watcher(repo)
    try:
        assert watcher.next_result().startswith("watch: rendered"), watcher.seen
        committed = tree(repo / "dist")

        # An application construct edit: the web's port. The environments part synthesizes warm.
        web.write_text(original.replace("http_port: int = 3000", "http_port: int = 3001"))
        line = watcher.next_result()
        assert line.startswith("watch: rendered") and "constructs/kubechat_deploy/app/web.py" in line, watcher.seen
        assert "render: environments: synthesized (warm process)" in "".join(watcher.seen)
        edited = tree(repo / "dist")
        assert edited != committed
        assert "containerPort: 3001" in (repo / "dist/rendered/dev/deployment-kubechat-web.yaml").read_text()
        fresh = subprocess.run([sys.executable, "scripts/render.py", "--no-cache", "--dist", str(tmp_path / "fresh")],
                               cwd=repo, capture_output=True, text=True, timeout=600,
                               env=by_hand(repo))
        assert fresh.returncode == 0, fresh.stderr
        assert tree(tmp_path / "fresh") == edited  # the warm process's output is a fresh process's

        # A broken edit: the render fails, says where, and dist/ stays as it was.
        web.write_text(original.replace("http_port: int = 3000", "http_port: int = = 3000"))
        line = watcher.next_result()
        assert line.startswith("watch: render failed"), watcher.seen
        assert "SyntaxError" in "".join(watcher.seen) and "web.py" in "".join(watcher.seen)
        assert tree(repo / "dist") == edited

        # The fix renders again: back to the committed dist/.
        web.write_text(original)
        assert watcher.next_result().startswith("watch: rendered"), watcher.seen
        assert tree(repo / "dist") == committed

        # The settings contract, read by the overlay checks of the render tooling (not by a synth): an edit that
        # allows a new value, and an overlay using it, render as `make render` renders them.
        contract = repo / "constructs" / "kubechat_deploy" / "app" / "contract.py"
        contract_text = contract.read_text()
        contract.write_text(contract_text.replace('allowed=("debug", "info", "warn", "error")',
                                                  'allowed=("trace", "debug", "info", "warn", "error")', 1))
        assert contract.read_text() != contract_text
        assert watcher.next_result().startswith("watch: rendered"), watcher.seen
        settings = repo / "overlays" / "dev" / "api-settings.env"
        settings_text = settings.read_text()
        settings.write_text(settings_text.replace("LOG_LEVEL=debug", "LOG_LEVEL=trace"))
        assert watcher.next_result().startswith("watch: rendered"), watcher.seen
        assert "LOG_LEVEL: trace" in "".join(p.read_text() for p in (repo / "dist/rendered/dev").glob("configmap-kubechat-api-config*"))
        # ...and the contract back: the overlay's value is refused again, dist/ stays.
        rendered_trace = tree(repo / "dist")
        contract.write_text(contract_text)
        assert watcher.next_result().startswith("watch: render failed"), watcher.seen
        assert "LOG_LEVEL='trace'" in "".join(watcher.seen[-20:]) and tree(repo / "dist") == rendered_trace
        settings.write_text(settings_text)
        assert watcher.next_result().startswith("watch: rendered"), watcher.seen
        assert tree(repo / "dist") == committed

        # imports/ is loaded once per process: a change there starts the process again, which renders.
        (repo / "imports" / "touched.txt").write_text("a new file beside the typed classes\n")
        assert watcher.next_result().startswith("watch: rendered"), watcher.seen
        assert any("imports/touched.txt changed: starting again" in line for line in watcher.seen), watcher.seen
        assert tree(repo / "dist") == committed
    finally:
        watcher.stop()
    # Its scratch folders (one per process: it started twice) are gone with it.
    scratch = [line.split("scratch folder ", 1)[1].strip() for line in watcher.seen if "scratch folder " in line]
    assert len(scratch) == 2 and not any(Path(folder).exists() for folder in scratch), scratch
