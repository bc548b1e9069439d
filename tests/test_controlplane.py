"""How the integration tier finds its binaries: KUBEBUILDER_ASSETS when given (and complete), otherwise a
build whose cache folder changes whenever a pin does."""
from __future__ import annotations

import pytest

from testbed import controlplane


def test_kubebuilder_assets_is_used_when_complete(tmp_path, monkeypatch):
    for name in ("etcd", "kube-apiserver", "kubectl"):
        (tmp_path / name).write_text("#!/bin/sh\n")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    monkeypatch.setattr(controlplane, "build", lambda *a, **k: pytest.fail("built although assets were given"))
    assert controlplane.binaries() == tmp_path


def test_incomplete_kubebuilder_assets_name_what_is_missing(tmp_path, monkeypatch):
    (tmp_path / "etcd").write_text("#!/bin/sh\n")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    with pytest.raises(RuntimeError) as error:
        controlplane.binaries()
    assert "missing kube-apiserver, kubectl" in str(error.value) and str(tmp_path) in str(error.value)


def test_the_cache_folder_follows_the_pins(tmp_path, monkeypatch):
    tools = tmp_path / "tools"
    for module in controlplane.MODULES:
        (tools / module).mkdir(parents=True)
        (tools / module / "go.mod").write_text(f"module {module}\n")
        (tools / module / "go.sum").write_text("")
    (tools / "controlplane" / "go.mod").write_text("module x\n\nrequire k8s.io/kubernetes v1.34.3\n")
    monkeypatch.setattr(controlplane, "TOOLS", tools)
    before = controlplane.pin_hash()
    assert "gitVersion=v1.34.3" in controlplane.version_ldflags() and "gitMinor=34" in controlplane.version_ldflags()
    (tools / "kwok" / "go.sum").write_text("sigs.k8s.io/kwok v0.7.1 h1:changed\n")
    assert controlplane.pin_hash() != before
