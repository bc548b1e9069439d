"""The source layout: constructs/ is a source root and never shadows the `constructs` library."""
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_constructs_library_is_not_shadowed_by_the_source_folder():
    # GIVEN the project root on sys.path (as when cdk8s runs `python main.py`)
    constructs = importlib.import_module("constructs")
    # THEN `constructs` is the library cdk8s needs, not the project's constructs/ folder
    assert hasattr(constructs, "Construct"), f"`constructs` resolved to {constructs.__path__}"
    assert not (ROOT / "constructs" / "__init__.py").exists(), "constructs/ must stay a source root, not a package"


def test_main_builds_the_app_without_synthesizing():
    import main

    app = main.build_app()
    charts = [c for c in app.node.children]
    assert charts[0].node.id == "kubechat"
    assert all(c.node.id.startswith(("component-", "platform-", "environment-")) for c in charts[1:])
    assert charts[0].api.service_name == "kubechat-api"


def test_every_typed_crd_group_has_an_importable_module():
    import yaml

    groups = {g for g, entries in yaml.safe_load((ROOT / "crds.yaml").read_text())["groups"].items()
              if any(e.get("typed", True) for e in entries)}
    imported = {p.name for p in (ROOT / "imports").iterdir() if p.is_dir()}
    assert groups == imported, f"imports/ is out of date with crds.yaml: run `make imports`"
    from imports.cnpg.io.cnpg import postgresql  # noqa: F401  (a generated module loads)

    assert hasattr(postgresql, "Cluster") and hasattr(postgresql, "Pooler")
