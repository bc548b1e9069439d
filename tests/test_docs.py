"""The documentation site builds strictly (no broken link or anchor, no page left out), the
configuration reference is current, and the build would fail on a broken link or an orphan page."""
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

MKDOCS = ROOT / ".venv" / "bin" / "mkdocs"
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}


def build(config, site):
    return subprocess.run([str(MKDOCS), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
                          capture_output=True, text=True, env=ENV)


def test_the_site_builds_strictly(tmp_path):
    result = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("defect, message", [
    ("broken-link", "not found among documentation files"),
    ("broken-anchor", "does not contain an anchor"),
    ("orphan", "not included in the \"nav\""),
])
def test_the_strict_build_rejects_broken_links_and_orphan_pages(tmp_path, defect, message):
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.Loader)  # the config uses a python tag
    if defect == "broken-link":
        (tmp_path / "docs" / "index.md").write_text("[gone](no-such-page.md)\n")
    elif defect == "broken-anchor":
        (tmp_path / "docs" / "index.md").write_text("[gone](install.md#no-such-section)\n")
    else:
        (tmp_path / "docs" / "forgotten.md").write_text("# Forgotten\n")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    result = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert config["strict"] is True


def test_configuration_reference_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_reference.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_troubleshooting_covers_at_least_twenty_failure_modes_with_symptom_confirm_fix():
    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    entries = [e for e in text.split("\n### ")[1:]]
    assert len(entries) >= 20
    for entry in entries:
        assert "- Symptom:" in entry and "- Confirm:" in entry and "- Fix:" in entry, entry.splitlines()[0]


def test_every_documented_make_target_exists():
    import re

    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    documented = set(re.findall(r"`make ([a-z][a-z-]*)", "".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
                                + (ROOT / "README.md").read_text()))
    assert documented <= targets, f"documented but missing: {documented - targets}"


def test_every_argocd_command_names_an_application_the_applicationset_creates():
    """#27: the ApplicationSet names each environment's Application after its cluster (kubechat-<env>-<cluster>);
    a command naming `kubechat-<env>` alone finds nothing at 3 a.m. Every `argocd app <verb> <name>` in the docs,
    the runbooks, the rendered hooks' and alerts' messages and the tools' output names it so, or takes it from
    the ApplicationSet's environment label ($APP)."""
    import re

    appset = yaml.safe_load((ROOT / "dist" / "platform" / "delivery" / "applicationset-kubechat.yaml").read_text())
    template = appset["spec"]["template"]["metadata"]["name"]
    assert template == 'kubechat-{{index .metadata.labels "kubechat.io/environment"}}-{{.nameNormalized}}'
    sources = [*ROOT.glob("docs/**/*.md"), ROOT / "README.md", *ROOT.glob("dist/rendered/*/*.yaml"),
               *ROOT.glob("scripts/kubechat_tools/*.py"), *ROOT.glob("constructs/kubechat_deploy/**/*.py")]
    command = re.compile(r"argocd app (?:get|set|sync|diff|history|rollback|terminate-op|wait|manifests)\s+"
                         r"(?:-\S+\s+)*([^\s`'\"]+)")
    wrong = []
    for path in sources:
        for match in command.finditer(path.read_text()):
            name = match.group(1)
            if not (name.startswith(("$APP", '"$APP', "{app}", "{APP", "<app")) or name.endswith(("-<cluster>", "}"))
                    or re.fullmatch(r"kubechat-(<env>|staging|production|\{[a-z.]+\})-(<cluster>|in-cluster|[a-z0-9-]+-cluster)", name)):
                wrong.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    assert wrong == [], "\n".join(wrong)


def test_every_argocd_proj_command_names_a_project_the_platform_renders():
    """The projects were renamed once (#31: `kubechat` became one per environment); a troubleshooting command
    naming the old one answers "not found" to the person who needs it."""
    import re

    projects = {d["metadata"]["name"] for path in (ROOT / "dist" / "platform").rglob("appproject-*.yaml")
                for d in yaml.safe_load_all(path.read_text()) if d}
    assert {"kubechat-staging", "kubechat-production", "platform"} <= projects
    named = [(path.relative_to(ROOT), m.group(1)) for path in [*ROOT.glob("docs/**/*.md"), ROOT / "README.md"]
             for m in re.finditer(r"argocd proj (?:get|windows list|windows \S+ \d+)\s+([^\s`]+)", path.read_text())]
    assert named, "no `argocd proj` command found: the pattern is stale"
    assert [(p, n) for p, n in named if n not in projects and n != "kubechat-<env>"] == []
