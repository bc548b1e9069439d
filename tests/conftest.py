"""Shared fixtures: the project's paths, the committed render, and a way to write test manifests."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the test bench (tests/testbed): the programs the tiers start

from kubechat_tools.manifests import load_dir  # noqa: E402
from kubechat_tools.paths import DIST, ENVIRONMENTS  # noqa: E402


def pytest_sessionstart(session):
    """Tests never download: the pinned CRDs come from the verified cache `make crds` fills (part of
    `make setup`). Without it the run stops here, once, saying what to run."""
    from kubechat_tools.crds import OFFLINE_HELP, CrdError, cached_path, load_sources, verify

    for source in load_sources():
        path = cached_path(source)
        try:
            if not path.is_file():
                raise CrdError(f"the pinned CRDs are not fetched ({source.relative_path} is missing): run "
                               f"`make crds` (part of `make setup`) once. {OFFLINE_HELP}")
            verify(source, path.read_bytes(), str(path))
        except CrdError as error:
            pytest.exit(f"crds: {error}", returncode=1)


def pytest_collection_modifyitems(items):
    """A test on a copy of the whole project (its `clone` fixture: git history, a render per commit) is
    marked `tree`: make test runs it, make check leaves it out."""
    for item in items:
        if "clone" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.tree)


PREBUILD: subprocess.Popen | None = None


def pytest_collection_finish(session):
    """The tiers' programs are built ahead, in a background process at the lowest CPU priority
    (tests/testbed/prebuild.py), in the order the collected tests will ask for them. KUBECHAT_PREBUILD=0
    turns it off; pytest-xdist workers never start one (each would build everything)."""
    global PREBUILD
    from testbed.prebuild import groups_for

    if session.config.option.collectonly or os.environ.get("PYTEST_XDIST_WORKER") or \
            os.environ.get("KUBECHAT_PREBUILD") == "0":
        return
    groups = groups_for(session.items)
    if not groups:
        return
    log = ROOT / ".cache" / "prebuild.log"
    log.parent.mkdir(exist_ok=True)
    with open(log, "w") as output:
        PREBUILD = subprocess.Popen(
            ["nice", "-n", "19", sys.executable, "-m", "testbed.prebuild", *groups], cwd=ROOT, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / f) for f in ("tests", "scripts", "."))})
    print(f"\nprebuild: building {', '.join(groups)} in the background (pid {PREBUILD.pid}, log "
          f"{log.relative_to(ROOT)})", file=sys.stderr, flush=True)


def pytest_sessionfinish(session):
    """The background builds stop with the session (a finished run has nothing left to build; a run stopped
    early leaves an unfinished build as a .partial folder, which the next build removes)."""
    if PREBUILD is not None and PREBUILD.poll() is None:
        os.killpg(PREBUILD.pid, signal.SIGTERM)
        try:
            PREBUILD.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(PREBUILD.pid, signal.SIGKILL)
            PREBUILD.wait()


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """The committed render of every environment: env -> resources."""
    return {env: load_dir(DIST / "rendered" / env) for env in ENVIRONMENTS}


def find(docs: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected exactly one {kind}/{name}, found {len(matches)}"
    return matches[0]


def write_docs(folder: Path, name: str, docs: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def good_docs() -> list[dict]:
    return list(yaml.safe_load_all((ROOT / "tests" / "fixtures" / "good" / "pod.yaml").read_text()))


def cloudnative_pg_operator_pod_labels() -> dict[str, str]:
    """The labels the CloudNativePG operator's pods get from the platform's Application, per the chart's
    selectorLabels (cloudnative-pg/charts at cloudnative-pg-v0.29.0, charts/cloudnative-pg/templates/_helpers.tpl:
    app.kubernetes.io/name is the chart's name unless nameOverride, app.kubernetes.io/instance the release name)."""
    app = yaml.safe_load((DIST / "platform" / "prerequisites" / "application-platform-cloudnative-pg.yaml").read_text())
    source = app["spec"]["source"]
    assert "nameOverride" not in (source["helm"].get("valuesObject") or {}), "nameOverride changes the pod labels"
    return {"app.kubernetes.io/name": source["chart"], "app.kubernetes.io/instance": source["helm"]["releaseName"]}
