"""The tiers' pinned builds on a fresh machine: two builds of the same program at once both get a working
binary (one builds, the other waits), a killed build leaves nothing that looks finished, and a Go module's
files are read only after the module is downloaded (an empty module cache is what a new machine has).

Real `go build` and `go mod download` on a tiny module made here; the module is served from a file:// module
proxy in tmp_path, so nothing leaves the machine."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from testbed import argocd as delivery, controlplane

HELLO = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello from the pinned build") }\n'


def hello_tools(root: Path) -> Path:
    tools = root / "tools"
    (tools / "hello").mkdir(parents=True)
    (tools / "hello" / "go.mod").write_text("module example.com/hello\n\ngo 1.24\n")
    (tools / "hello" / "main.go").write_text(HELLO)
    return tools


BUILD_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from testbed import controlplane
    controlplane.TOOLS = Path(sys.argv[1])
    print(controlplane.build(Path(sys.argv[2]), {"hello": [(".", "hello")]}))
""")


def test_two_builds_of_the_same_pins_at_once_both_get_a_working_binary(tmp_path):
    """GIVEN an empty cache WHEN two processes build the same pins at once THEN one builds, the other waits,
    and both return the one finished folder with a binary that runs (issue #25: the second build used to
    delete the first one's result and fail)."""
    tools, cache = hello_tools(tmp_path), tmp_path / "cache"
    tests = Path(controlplane.__file__).parents[1]
    env = {**os.environ, "GOTOOLCHAIN": "local", "PYTHONPATH": f"{tests}:{tests.parent / 'scripts'}"}
    runs = [subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, str(tools), str(cache)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=600), run.stdout.read().strip(), run.stderr.read()) for run in runs]
    for code, _, stderr in results:
        assert code == 0, f"a concurrent build failed:\n{stderr}"
    folders = {Path(out) for _, out, _ in results}
    assert len(folders) == 1, f"the two builds returned different folders: {folders}"
    folder = folders.pop()
    assert (folder / ".complete").exists()
    assert subprocess.run([folder / "hello"], capture_output=True, text=True).stdout == "hello from the pinned build\n"
    logs = "".join(stderr for _, _, stderr in results)
    assert logs.count("building hello") == 1, f"the program was built twice:\n{logs}"
    assert not list(cache.glob("*.partial")), "a finished build left its .partial folder"


def test_a_killed_build_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    """GIVEN what a build killed half-way leaves (a .partial folder with a binary in it) WHEN the next build
    runs THEN it builds again instead of taking the leftover for a finished build."""
    tools, cache = hello_tools(tmp_path), tmp_path / "cache"
    monkeypatch.setattr(controlplane, "TOOLS", tools)
    modules = {"hello": [(".", "hello")]}
    target = cache / controlplane.pin_hash(modules)
    leftover = cache / (target.name + ".partial")
    leftover.mkdir(parents=True)
    (leftover / "hello").write_text("#!/bin/sh\nexit 3\n")
    monkeypatch.setenv("GOTOOLCHAIN", "local")
    folder = controlplane.build(cache, modules)
    assert folder == target and not leftover.exists()
    assert subprocess.run([folder / "hello"], capture_output=True, text=True).returncode == 0


def file_proxy(root: Path, module: str, version: str, files: dict[str, str]) -> str:
    """A GOPROXY=file:// folder serving one module version (the module proxy protocol's list, info, mod, zip)."""
    folder = root / module / "@v"
    folder.mkdir(parents=True)
    (folder / "list").write_text(f"{version}\n")
    (folder / f"{version}.info").write_text(f'{{"Version": "{version}", "Time": "2026-01-01T00:00:00Z"}}\n')
    (folder / f"{version}.mod").write_text(files["go.mod"])
    with zipfile.ZipFile(folder / f"{version}.zip", "w") as archive:
        for name, text in files.items():
            archive.writestr(f"{module}@{version}/{name}", text)
    return root.as_uri()


def test_a_module_not_yet_in_an_empty_module_cache_is_downloaded_before_its_files_are_read(tmp_path, monkeypatch):
    """GIVEN an empty Go module cache (a fresh machine) WHEN a tier asks for a pinned module's folder THEN the
    module is downloaded and its files are there (issue #25: `go list -m -f {{.Dir}}` printed nothing and the
    metrics and admission tiers errored)."""
    module = "example.com/charts"
    proxy = file_proxy(tmp_path / "proxy", module, "v1.2.3",
                       {"go.mod": f"module {module}\n\ngo 1.24\n", "charts/values.yaml": "image: solver\n",
                        "doc.go": "package charts\n"})
    tools = tmp_path / "tools"
    (tools / "pinned").mkdir(parents=True)
    (tools / "pinned" / "go.mod").write_text(f"module example.com/pinned\n\ngo 1.24\n\nrequire {module} v1.2.3\n")
    (tools / "pinned" / "tools.go").write_text(f'//go:build tools\n\npackage tools\n\nimport _ "{module}"\n')
    monkeypatch.setattr(delivery, "TOOLS", tools)
    for name, value in {"GOMODCACHE": str(tmp_path / "empty-modcache"), "GOPROXY": proxy, "GOSUMDB": "off",
                        "GOTOOLCHAIN": "local", "GONOSUMDB": module}.items():
        monkeypatch.setenv(name, value)
    listed = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", module], cwd=tools / "pinned",
                            capture_output=True, text=True, env={**os.environ, "GOFLAGS": "-mod=mod"})
    assert listed.stdout.strip() == "", "the precondition of the bug: go list prints no folder before a download"
    folder = delivery.go_module_dir("pinned", module)
    assert (folder / "charts" / "values.yaml").read_text() == "image: solver\n"
    assert delivery.go_module_version("pinned", module) == "v1.2.3"


def test_a_module_that_cannot_be_had_names_the_module_and_the_reason(tmp_path, monkeypatch):
    tools = tmp_path / "tools"
    (tools / "pinned").mkdir(parents=True)
    (tools / "pinned" / "go.mod").write_text("module example.com/pinned\n\ngo 1.24\n\nrequire example.com/gone v1.0.0\n")
    monkeypatch.setattr(delivery, "TOOLS", tools)
    for name, value in {"GOMODCACHE": str(tmp_path / "empty-modcache"), "GOPROXY": "off", "GOSUMDB": "off",
                        "GOTOOLCHAIN": "local"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError) as error:
        delivery.go_module_dir("pinned", "example.com/gone")
    assert "example.com/gone" in str(error.value) and "tools/pinned" in str(error.value)


def test_a_crd_without_status_conditions_is_not_yet_established():
    """`kubectl wait --for condition=Established crd --all` failed at once on a CRD the API server had not
    yet given conditions; the tiers' wait treats such a CRD as not yet established and keeps polling."""
    assert not controlplane.crd_established({"metadata": {"name": "a"}})
    assert not controlplane.crd_established({"metadata": {"name": "a"}, "status": {"conditions": None}})
    assert not controlplane.crd_established({"status": {"conditions": [{"type": "NamesAccepted", "status": "True"},
                                                                       {"type": "Established", "status": "False"}]}})
    assert controlplane.crd_established({"status": {"conditions": [{"type": "Established", "status": "True"}]}})
