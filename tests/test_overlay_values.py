"""Bad overlay values are refused by `make render` (scripts/render.py) before anything is written, naming the
overlay file and line, the object, the field, the value and what is allowed (issue #25.2). Each case is a
mistake a person makes in an overlay; on the main of 2026-12-06 each of them rendered with exit 0 (the typo
`minReplica` silently took production's minimum from 3 to 1)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kubechat_deploy.app.contract import API_SETTINGS, BACKUP_SETTINGS, SettingType
from kubechat_tools import overlay_values

ROOT = Path(__file__).resolve().parents[1]

# (case id, overlay file, text replaced, replacement, every part the error must contain)
CASES = [
    ("typo-in-a-field-name", "production/scaling.yaml", "  minReplicas: 3\n", "  minReplica: 4\n",
     ["overlays/production/scaling.yaml:6", "HorizontalPodAutoscaler/kubechat-api", "spec.minReplica",
      "unknown field 'minReplica'", "did you mean 'minReplicas'?", "allowed here: behavior, maxReplicas, metrics, "
      "minReplicas, scaleTargetRef"]),
    ("not-a-quantity", "production/resources.yaml", 'limits: {cpu: "1", memory: 512Mi}',
     'limits: {cpu: "1", memory: 256MB}',
     ["overlays/production/resources.yaml:12", "Deployment/kubechat-api",
      "spec.template.spec.containers[api].resources.limits.memory", "'256MB' is not a Kubernetes quantity",
      "Ki, Mi, Gi"]),
    ("misspelt-setting", "production/api-settings.env", "LOG_LEVEL=info", "LOG_LEVL=debug",
     ["overlays/production/api-settings.env:2", "unknown setting LOG_LEVL=debug", "did you mean LOG_LEVEL?"]),
    ("misspelt-setting-drops-the-real-one", "production/api-settings.env", "LOG_LEVEL=info", "LOG_LEVL=debug",
     ["required setting LOG_LEVEL is missing", "one of debug, info, warn, error"]),
    ("value-outside-the-contract", "production/api-settings.env", "LOG_LEVEL=info", "LOG_LEVEL=verbose",
     ["overlays/production/api-settings.env:2", "ConfigMap/kubechat-api-config", "data.LOG_LEVEL",
      "LOG_LEVEL='verbose': allowed: debug, info, warn, error"]),
    ("boolean-written-as-yes", "staging/api-settings.env", "FEATURE_STREAMING=true", "FEATURE_STREAMING=yes",
     ["overlays/staging/api-settings.env:5", "FEATURE_STREAMING='yes': allowed: true, false"]),
    ("unknown-feature-flag", "production/api-settings.env", "FEATURE_WRITE_ACTIONS=false",
     "FEATURE_WRITE_ACTIONS=false\nFEATURE_WRTIE_ACTIONS=true",
     ["overlays/production/api-settings.env:5", "unknown setting FEATURE_WRTIE_ACTIONS=true",
      "did you mean FEATURE_WRITE_ACTIONS?"]),
    ("backup-retention-not-a-number", "production/backup-settings.env", "RETENTION_DAYS=30", "RETENTION_DAYS=30d",
     ["overlays/production/backup-settings.env:", "RETENTION_DAYS='30d': allowed: a whole number of at least 1"]),
    ("settings-of-another-environment", "staging/api-settings.env", "KUBECHAT_ENVIRONMENT=staging",
     "KUBECHAT_ENVIRONMENT=production",
     ["overlays/staging/api-settings.env:1", "this is overlays/staging: allowed: staging"]),
    ("a-json-patch-value", "production/redis-storage.yaml", "  value: 10Gi\n", "  value: 10GB\n",
     ["overlays/production/redis-storage.yaml:4", "StatefulSet/kubechat-redis", "'10GB' is not a Kubernetes quantity"]),
    # In a custom resource, quantities are int-or-string with the CRD's own pattern (review finding: unchecked).
    ("a-quantity-in-a-custom-resource", "staging/database.yaml", "    limits: {memory: 1Gi}", "    limits: {memory: 1GB}",
     ["overlays/staging/database.yaml:12", "Cluster/kubechat-db", "spec.resources.limits.memory",
      "'1GB' is not a Kubernetes quantity"]),
    ("yaml-syntax-error", "production/scaling.yaml", "  maxReplicas: 10\n", "  maxReplicas: [10\n",
     ["overlays/production/scaling.yaml:", "not valid YAML"]),
]


def render(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "render.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def edit(overlays: Path, file: str, old: str, new: str) -> None:
    path = overlays / file
    text = path.read_text()
    assert old in text, f"{file} no longer contains {old!r}: update the case"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("case, file, old, new, expected", CASES, ids=[case[0] for case in CASES])
def test_a_bad_overlay_value_is_refused_before_anything_is_written(tmp_path, case, file, old, new, expected):
    overlays = tmp_path / "overlays"
    shutil.copytree(ROOT / "overlays", overlays)
    edit(overlays, file, old, new)
    dist = tmp_path / "dist"
    result = render("--dist", str(dist), "--overlays", str(overlays))
    assert result.returncode == 1, f"render accepted {case}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
    missing = [part for part in expected if part not in result.stderr]
    assert not missing, f"the error lacks {missing}:\n{result.stderr[-3000:]}"
    assert "dist/ was left untouched" in result.stderr
    assert not dist.exists(), "a failed render wrote dist/"
    assert not list(tmp_path.glob(".render-*")), "the temporary render folder was left behind"


def test_the_committed_overlays_have_no_problem():
    """The same check on the committed render finds nothing (no false alarms); a problem planted in a copy
    of one rendered object is found, so the check is live on these very objects."""
    from kubechat_tools.manifests import load_dir

    schemas = overlay_values.Schemas()
    for env in ("dev", "staging", "production"):
        docs = load_dir(ROOT / "dist" / "rendered" / env)
        assert overlay_values.check(docs, env, ROOT / "overlays" / env, ROOT, schemas) == []
        hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
        planted = {**hpa, "spec": {**hpa["spec"], "maxReplica": 2}}
        assert overlay_values.check([planted], env, ROOT / "overlays" / env, ROOT, schemas)


def test_valid_but_unusual_values_are_accepted(tmp_path):
    """No false alarm: CPU in micro- and nanocores and exponent notation, memory as an exponent."""
    overlays = tmp_path / "overlays"
    shutil.copytree(ROOT / "overlays", overlays)
    edit(overlays, "production/resources.yaml", "requests: {cpu: 250m, memory: 256Mi}",
         "requests: {cpu: 250000u, memory: 256e6}")
    edit(overlays, "staging/resources.yaml", "requests: {cpu: 100m, memory: 128Mi}", "requests: {cpu: 100000000n, memory: 1.5e8}")
    result = render("--dist", str(tmp_path / "dist"), "--overlays", str(overlays))
    assert result.returncode == 0, result.stderr[-3000:]


def test_quantities_follow_kubernetes_parse_quantity():
    """k8s.io/apimachinery pkg/api/resource/quantity.go (ParseQuantity): signed decimal, then a binary-SI,
    decimal-SI or exponent suffix; 'MB', 'Gb' and a bare suffix are not quantities."""
    for good in ("1", "0.5", ".5", "500m", "256Mi", "1Gi", "10G", "1e3", "1E-3", "+1k", "2Ei", "100000u", "100000000n"):
        assert overlay_values.QUANTITY.fullmatch(good), good
    for bad in ("256MB", "1Gb", "Mi", "1 Gi", "1.2.3", "ten", "1mi", ""):
        assert not overlay_values.QUANTITY.fullmatch(bad), bad


def test_the_settings_tables_in_the_docs_come_from_the_contract():
    """docs/app-contract.md lists every setting of the contract with its allowed values (generated)."""
    text = (ROOT / "docs" / "app-contract.md").read_text()
    for setting in API_SETTINGS + BACKUP_SETTINGS:
        assert f"| `{setting.name}` |" in text, f"docs/app-contract.md lacks {setting.name}"
        if setting.type is SettingType.ENUM:
            assert ", ".join(f"`{v}`" for v in setting.allowed) in text
