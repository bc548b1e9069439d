"""The layout shows the design (issue #24): constructs grouped by concern, the platform independent of the
application, the product's tools apart from the test bench, dependencies pointing one way
(entry points -> tools -> constructs -> imports; the test bench -> tools), no import cycles, and a README
layout table that names every folder, sub-package and script."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRUCTS = ROOT / "constructs" / "kubechat_deploy"
TOOLS = ROOT / "scripts" / "kubechat_tools"
TESTBED = ROOT / "tests" / "testbed"
SUBPACKAGES = ("app", "data", "delivery", "observability", "security", "platform")
APPLICATION = ("kubechat_deploy.app", "kubechat_deploy.data", "kubechat_deploy.observability",
               "kubechat_deploy.security", "kubechat_deploy.chart", "kubechat_deploy.environment",
               "kubechat_deploy.delivery.progressive")
"""What the environments are made of; the platform part must load none of it."""


def module_name(path: Path) -> str:
    for root, prefix in ((CONSTRUCTS.parent, ""), (TOOLS.parent, ""), (TESTBED.parent, ""), (ROOT, "")):
        if path.is_relative_to(root):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            return prefix + ".".join(parts)
    return path.stem  # a file outside the project (a test's planted module)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file (a function-level import counts too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def graph(folder: Path, prefix: str) -> dict[str, set[str]]:
    modules = {module_name(p): p for p in folder.rglob("*.py") if "__pycache__" not in p.parts}
    return {name: {i for i in imports_of(path) if i in modules and i != name and i.startswith(prefix)}
            for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_no_import_cycles_in_the_constructs_the_tools_or_the_test_bench():
    for folder, prefix in ((CONSTRUCTS, "kubechat_deploy"), (TOOLS, "kubechat_tools"), (TESTBED, "testbed")):
        found = cycles(graph(folder, prefix))
        assert not found, f"import cycles in {folder.relative_to(ROOT)}:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def upward(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(i for i in imports_of(path) if i.split(".")[0] in forbidden)


def test_dependencies_point_one_way():
    """entry points (scripts/*.py) -> tools (kubechat_tools) -> constructs (kubechat_deploy) -> imports/; the
    test bench (tests/testbed) -> tools. Never the other way."""
    entry_points = {p.stem for p in (ROOT / "scripts").glob("*.py")}
    problems = []
    for path in CONSTRUCTS.rglob("*.py"):
        problems += [f"{path.relative_to(ROOT)} imports {i}" for i in upward(path, ("kubechat_tools", "testbed", *entry_points))]
    for path in (ROOT / "imports").rglob("*.py"):  # generated, large: their import lines, without parsing them
        names = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", path.read_text(), re.M)
        problems += [f"{path.relative_to(ROOT)} imports {n}" for n in names
                     if n.split(".")[0] in ("kubechat_deploy", "kubechat_tools", "testbed")]
    for path in TOOLS.rglob("*.py"):
        problems += [f"{path.relative_to(ROOT)} imports {i}" for i in upward(path, ("testbed", *entry_points))]
    for path in (ROOT / "scripts").glob("*.py"):
        problems += [f"{path.relative_to(ROOT)} imports {i}" for i in upward(path, ("testbed",))]
    assert not problems, "imports against the direction entry points -> tools -> constructs -> imports:\n" + "\n".join(problems)


def test_the_direction_check_sees_an_upward_import(tmp_path):
    construct = CONSTRUCTS / "app" / "api.py"
    assert not upward(construct, ("kubechat_tools",))
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from kubechat_tools.migrations import load_migrations\n")
    assert upward(planted, ("kubechat_tools",)) == ["kubechat_tools.migrations", "kubechat_tools.migrations.load_migrations"]


def test_the_platform_part_loads_no_application_module():
    """In a fresh interpreter, building only the platform part of main.py loads none of the application's
    constructs (an edit to web.py then cannot re-synthesize the platform: its render cache key is what it reads)."""
    code = ("import json, sys, main; main.build_app(parts=('platform',)); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('kubechat_deploy'))))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'constructs'}:{ROOT}"})
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert "kubechat_deploy.platform.charts" in loaded, loaded
    application = [m for m in loaded if m.startswith(APPLICATION)]
    assert not application, f"the platform part loaded application modules: {application}"


def test_every_subpackage_says_what_it_owns():
    for name in SUBPACKAGES:
        init = CONSTRUCTS / name / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc) > 40, f"{init.relative_to(ROOT)} needs a docstring saying what it owns"
    flat = sorted(p.name for p in CONSTRUCTS.glob("*.py") if p.name != "__init__.py")
    assert flat == ["chart.py", "environment.py", "labels.py", "layout.py", "validation.py", "versions.py"], \
        f"the package root holds only the composition and the shared vocabulary; group the rest by concern: {flat}"


def layout_table() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## How the code is organized", 1)[1]
    return section.split("\n## ", 1)[0]


def test_the_readme_layout_table_names_every_folder_subpackage_and_script():
    table = layout_table()
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    top_level = sorted({name.split("/")[0] for name in tracked if "/" in name and not name.startswith((".", "site/"))})
    missing = [f"`{folder}/`" for folder in top_level if f"`{folder}/" not in table]
    missing += [f"`constructs/kubechat_deploy/{name}/`" for name in SUBPACKAGES
                if f"`constructs/kubechat_deploy/{name}/`" not in table]
    missing += [f"`{p.name}`" for p in sorted((ROOT / "scripts").glob("*.py")) if f"`{p.name}`" not in table]
    missing += [f"`{p.name}`" for p in sorted(TOOLS.glob("*.py")) if p.name != "__init__.py" and f"`{p.name}`" not in table]
    missing += [f"`{p.name}`" for p in sorted(TESTBED.glob("*.py")) if p.name != "__init__.py" and f"`{p.name}`" not in table]
    missing += [f"`tools/{p.parent.relative_to(ROOT / 'tools')}`" for p in sorted((ROOT / "tools").rglob("go.mod"))
                if p.parent != ROOT / "tools" and f"`tools/{p.parent.relative_to(ROOT / 'tools')}`" not in table]
    assert not missing, "README.md's layout table (How the code is organized) lacks: " + ", ".join(missing)


def test_no_build_artefact_is_committed():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    installed = (".venv", ".venv-checkov", "node_modules", "bin", ".cache")  # make's installs, or links to them
    artefacts = [name for name in tracked if ".egg-info/" in name or "__pycache__" in name or name.endswith(".pyc")
                 or name.split("/")[0] in installed]
    assert not artefacts, f"build artefacts are committed: {artefacts[:5]}"


def test_scripts_are_thin_entry_points():
    """scripts/ keeps only entry points: each starts the main() of its module in kubechat_tools."""
    fat = []
    for path in sorted((ROOT / "scripts").glob("*.py")):
        if path.name == "project_python.py":
            continue
        text = path.read_text()
        code = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if len(code) > 12 or not any(line.startswith("from kubechat_tools.") and " import main" in line for line in code):
            fat.append(f"{path.name} ({len(code)} lines of code)")
    assert not fat, f"scripts that hold more than an entry point (move the code into scripts/kubechat_tools): {fat}"


PROGRAMS = {"controlplane": "ControlPlane", "argocd": "DeliveryStack", "prometheus_operator": "Operator",
            "kyverno": "Kyverno", "cert_manager": "CertManager", "registry": "Registry"}
"""The test bench's program modules and the process group each starts."""


def test_every_program_of_the_test_bench_has_the_same_shape():
    """Reading one teaches the others: binaries() builds the pinned program into .cache/ (or finds it),
    BUILD_TIMES holds what each build took, and a ProcessGroup starts the program on loopback
    (start) and stops exactly its processes (stop)."""
    import importlib

    from testbed.controlplane import ProcessGroup

    for module_name, group in PROGRAMS.items():
        module = importlib.import_module(f"testbed.{module_name}")
        assert callable(getattr(module, "binaries", None)), f"testbed/{module_name}.py has no binaries()"
        assert isinstance(getattr(module, "BUILD_TIMES", None), dict), f"testbed/{module_name}.py has no BUILD_TIMES"
        cls = getattr(module, group)
        assert issubclass(cls, ProcessGroup) and callable(getattr(cls, "start", None)), f"{module_name}.{group}"
        assert cls.stop is ProcessGroup.stop or "stop" in vars(cls), f"{module_name}.{group} cannot stop"
