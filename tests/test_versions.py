"""16.7: one pin table (constructs/kubechat_deploy/versions.py, OPERATORS) decides each operator's version;
crds.yaml, the prerequisite charts the platform renders, the delivery tier's builds and docs/upgrade.md's
matrix follow it. The chart-to-app mapping in the table was read from each chart's own Chart.yaml upstream
(the table cites repository, path and commit); this file checks that everything else agrees with it."""
from __future__ import annotations

import re

import pytest
import yaml

from conftest import ROOT
from kubechat_deploy.versions import ARGO_ROLLOUTS, ARGOCD, OPERATORS, Operator
from kubechat_tools.manifests import load_dir

CRD_URL = re.compile(r"https://raw\.githubusercontent\.com/([^/]+/[^/]+)/([^/]+)/")
WITH_CRDS = [o for o in OPERATORS if o.crd_repo]


def crd_tags() -> dict[str, set[str]]:
    tags: dict[str, set[str]] = {}
    for group in yaml.safe_load((ROOT / "crds.yaml").read_text())["groups"].values():
        for entry in group:
            repo, tag = CRD_URL.match(entry["url"]).groups()
            tags.setdefault(repo, set()).add(tag)
    return tags


def prerequisite(name: str) -> dict:
    return yaml.safe_load((ROOT / "dist" / "platform" / "prerequisites" / f"application-platform-{name}.yaml").read_text())


def dig(values: dict, path: str):
    for key in path.split("."):
        values = (values or {}).get(key)
    return values


def test_every_imported_crd_comes_from_a_pinned_operator_at_its_version():
    pinned = {o.crd_repo: o.version for o in WITH_CRDS} | {"argoproj/argo-cd": ARGOCD.version}
    for repo, tags in crd_tags().items():
        assert repo in pinned, f"crds.yaml imports CRDs of {repo}, which the pin table does not list"
        assert tags == {pinned[repo]}, f"crds.yaml: {repo} at {sorted(tags)}, the pin table says {pinned[repo]}"
    assert set(pinned) <= set(crd_tags()), "an operator of the pin table has no CRD in crds.yaml"


@pytest.mark.parametrize("pin", OPERATORS, ids=lambda o: o.name)
def test_the_platform_installs_each_operator_at_its_pin(pin: Operator):
    app = prerequisite(pin.name)["spec"]
    sources = app.get("sources") or [app["source"]]
    if pin.chart is None:  # CRDs only: the API's own repository at the pinned tag, never pruned
        assert pin.crd_repo and pin.crds_path, pin.name
        assert sources == [{"repoURL": f"https://github.com/{pin.crd_repo}.git", "targetRevision": pin.version,
                            "path": pin.crds_path,
                            "kustomize": {"commonAnnotations": {"argocd.argoproj.io/sync-options": "Prune=false,Delete=false"}}}]
        return
    chart = sources[0]
    assert (chart["repoURL"], chart["chart"], chart["targetRevision"]) == \
        (pin.chart.repo_url, pin.chart.name, pin.chart.version)
    values = chart.get("helm", {}).get("valuesObject") or {}
    if not pin.crd_repo:
        return
    if pin.chart.ships.lstrip("v") == pin.version.lstrip("v"):
        assert len(sources) == 1, f"{pin.name}: the chart ships {pin.chart.ships}: no override needed"
        for path in pin.image_tag_values:
            assert dig(values, path) is None, f"{pin.name}: {path} overrides a chart that ships the pin"
        return
    # The chart ships another app version: every image it runs and the CRDs must be the pin's.
    assert pin.image_tag_values and pin.crds_values and pin.crds_path, \
        f"{pin.name}: chart {pin.chart.version} ships {pin.chart.ships}, not {pin.version}, and nothing overrides it"
    for path in pin.image_tag_values:
        assert dig(values, path) == pin.version, f"{pin.name}: {path}"
    assert dig(values, pin.crds_values) is False, f"{pin.name}: the chart's own ({pin.chart.ships}) CRDs are installed"
    assert sources[1:] == [{"repoURL": f"https://github.com/{pin.crd_repo}.git", "targetRevision": pin.version,
                            "path": pin.crds_path,  # never pruned (tests/delivery/test_platform_crds.py)
                            "kustomize": {"commonAnnotations": {"argocd.argoproj.io/sync-options": "Prune=false,Delete=false"}}}]


def test_the_override_crds_are_the_ones_crds_yaml_validates_against():
    """The second source installs the folder of the pinned tag whose files crds.yaml imports."""
    urls = [e["url"] for g in yaml.safe_load((ROOT / "crds.yaml").read_text())["groups"].values() for e in g]
    for pin in (o for o in WITH_CRDS if o.crds_path):
        prefix = f"https://raw.githubusercontent.com/{pin.crd_repo}/{pin.version}/{pin.crds_path}/"
        assert any(u.startswith(prefix) for u in urls), f"{pin.name}: no CRD of crds.yaml under {prefix}"


@pytest.mark.parametrize("folder,module,pin", [
    ("argocd", "github.com/argoproj/argo-cd/v3", ARGOCD.version),
    ("rollouts", "github.com/argoproj/argo-rollouts", ARGO_ROLLOUTS.version),
    ("kyverno", "github.com/kyverno/kyverno", next(o.version for o in OPERATORS if o.name == "kyverno")),
])
def test_the_test_tiers_build_the_pinned_versions(folder, module, pin):
    go_mod = (ROOT / "tools" / folder / "go.mod").read_text()
    assert re.search(rf"^\s*(require\s+)?{re.escape(module)} {re.escape(pin)}$", go_mod, re.M), \
        f"tools/{folder}/go.mod does not require {module} {pin}"


def test_the_compatibility_matrix_states_the_pins():
    text = (ROOT / "docs" / "upgrade.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    names = {"argo-rollouts": "Argo Rollouts", "cert-manager": "cert-manager", "cloudnative-pg": "CloudNativePG",
             "plugin-barman-cloud": "barman-cloud plugin", "kube-prometheus-stack": "Prometheus Operator",
             "external-secrets": "External Secrets", "kyverno": "Kyverno", "traefik": "Traefik",
             "gateway-api": "Gateway API"}
    for pin in WITH_CRDS:
        row = rows[names[pin.name]]
        if pin.chart is None:
            assert f"{pin.version}:" in row and "CRDs" in row, row
            continue
        assert f"{pin.version}:" in row and f"chart {pin.chart.version}" in row, row
        assert f"ships {pin.chart.ships}" in row, row
    assert f"| Argo CD | {ARGOCD.version.lstrip('v')}" in text


def test_a_disagreeing_pin_fails_the_check():
    """The chart check above is not vacuous: a table where the chart ships another app version and nothing
    overrides it is refused."""
    from dataclasses import replace

    rollouts = next(o for o in OPERATORS if o.name == "argo-rollouts")
    broken = replace(rollouts, image_tag_values=(), crds_values=None, crds_path=None)
    with pytest.raises(AssertionError, match="nothing overrides it"):
        test_the_platform_installs_each_operator_at_its_pin(broken)
