"""The release check (`make preflight RELEASE=1`): staging, production and the platform may not go live
with the repository's example site values; each is named with where the real value is set."""
from __future__ import annotations

import shutil
import subprocess
import sys

import yaml

from conftest import ROOT
from kubechat_tools.manifests import load_dir
from kubechat_tools.site_values import EXAMPLE_DIGESTS, release_problems

sys.path.insert(0, str(ROOT / "scripts"))


def preflight_release(dist) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "preflight.py"), "--release", "--dist", str(dist)],
                          capture_output=True, text=True)


def test_the_repository_examples_are_refused_by_name_and_place():
    result = preflight_release(ROOT / "dist")
    assert result.returncode == 1
    out = result.stdout
    expected = [
        "staging: Ingress/kubechat spec.rules[0].host = 'staging.kubechat.example.com' is an example domain; "
        "set it in overlays/staging/tls.yaml",
        "production: ClusterIssuer/kubechat-production-letsencrypt-production spec.acme.email = 'platform@example.com' "
        "is an example domain; set it in IngressProps.acme_email",
        "production: ConfigMap/kubechat-api-config-", "data.PUBLIC_URL = 'https://kubechat.example.com'",
        "set it in overlays/production/api-settings.env",
        "staging: ObjectStore/kubechat-backups spec.configuration.destinationPath = 's3://kubechat-backups-staging/"
        "kubechat/physical' is the example backup bucket; set it in overlays/staging/backups.yaml",
        f"production: Deployment/kubechat-api spec.template.spec.containers[0].image = "
        f"'ghcr.io/kubechat/kubechat-api:1.0.0@{EXAMPLE_DIGESTS[0]}' is an example image digest no registry holds; "
        f"set it in scripts/release.py upgrade --env production",
        "platform: ApplicationSet/kubechat spec.template.spec.source.repoURL = "
        "'https://github.com/kubechat/kubechat-deploy.git' is the upstream repository URL; set it in DeliveryProps.repo_url",
    ]
    for line in expected:
        assert line in out, f"missing: {line}\n{out}"


def test_a_site_with_its_own_values_passes(tmp_path):
    """The same render with a team's values (as make render would write them after the documented edits)."""
    site = {"staging.kubechat.example.com": "staging.chat.acme-corp.io", "kubechat.example.com": "chat.acme-corp.io",
            "platform@example.com": "platform-team@acme-corp.io",
            "https://github.com/kubechat/kubechat-deploy.git": "https://git.acme-corp.io/platform/kubechat-deploy.git",
            "s3://kubechat-backups-": "s3://acme-corp-kubechat-",
            EXAMPLE_DIGESTS[0]: "sha256:" + "1" * 64, EXAMPLE_DIGESTS[1]: "sha256:" + "2" * 64}
    dist = tmp_path / "dist"
    shutil.copytree(ROOT / "dist", dist)
    for path in dist.rglob("*.yaml"):
        text = path.read_text()
        for example, value in site.items():
            text = text.replace(example, value)
        path.write_text(text)
    result = preflight_release(dist)
    assert result.returncode == 0 and "preflight: passed" in result.stdout, result.stdout


def test_production_images_without_digest_are_refused():
    docs = load_dir(ROOT / "dist" / "rendered" / "production")
    undigested = yaml.safe_load(yaml.safe_dump(docs).replace("@" + EXAMPLE_DIGESTS[0], ""))
    problems = release_problems({"staging": [], "production": undigested}, [])
    assert any("Deployment/kubechat-api runs ghcr.io/kubechat/kubechat-api:1.0.0 without a digest; set it with "
               "scripts/release.py upgrade --env production" in p for p in problems), problems
