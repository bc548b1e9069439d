"""The background builds (tests/testbed/prebuild.py) follow the tests' own order of asking, and every
build a tier asks for is one the background process knows how to start ahead."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT
from testbed import prebuild


class Item:
    """What groups_for reads of a collected pytest item: its markers and its file."""

    def __init__(self, path: str, *markers: str):
        self.fspath, self.markers = ROOT / path, set(markers)

    def get_closest_marker(self, name: str):
        return name if name in self.markers else None


def test_groups_follow_the_order_the_collected_tests_ask_in():
    items = [Item("tests/admission/test_certificates.py", "admission"),
             Item("tests/delivery/test_first_sync.py", "delivery"),
             Item("tests/integration/test_apply_and_admission.py", "integration"),
             Item("tests/metrics/test_alert_delivery.py", "metrics"),
             Item("tests/test_kyverno.py"),
             Item("tests/test_render.py")]
    assert prebuild.groups_for(items) == ["controlplane", "kyverno", "registry", "certificates", "traefik",
                                          "delivery", "helm", "metrics", "kyverno-cli"]
    assert prebuild.groups_for(items[1:2]) == ["controlplane", "delivery", "traefik", "helm"]
    assert prebuild.groups_for(items[-1:]) == []  # make check's tests: nothing is built ahead


def test_every_tier_marker_is_a_marker_of_the_project_and_every_group_builds_something():
    markers = (ROOT / "pyproject.toml").read_text()
    for marker, groups in prebuild.NEEDS.items():
        assert f'"{marker}: ' in markers, marker
        assert set(groups) <= set(prebuild.GROUPS), marker
    # Each tier module's binaries() is what its tests call: the same function, so the same pins and lock.
    from testbed import argocd, cert_manager, kyverno, prometheus_operator, registry
    for module in (argocd, cert_manager, kyverno, prometheus_operator, registry):
        source = Path(module.__file__).read_text()
        assert "def binaries() -> Path:" in source, module.__name__
        assert f"from testbed import {module.__name__.split('.')[-1]}" in Path(prebuild.__file__).read_text()


def test_an_unknown_group_is_refused_by_name():
    result = subprocess.run([sys.executable, "-m", "testbed.prebuild", "controlplane", "kyvernoo"], cwd=ROOT,
                            capture_output=True, text=True, env={"PYTHONPATH": f"{ROOT / 'tests'}:{ROOT / 'scripts'}:{ROOT}",
                                                                 "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "unknown build group(s) kyvernoo" in result.stderr and "known: controlplane" in result.stderr

