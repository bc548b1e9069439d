"""The release check (`make preflight RELEASE=1`): staging, production and the platform may not go live
with the repository's example site values; each is named with where the real value is set."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import yaml

from conftest import ROOT
from kubechat_tools.manifests import load_dir
from kubechat_tools.release import released_render, stand_in_digests
from kubechat_tools.site_values import release_problems, undigested_images

sys.path.insert(0, str(ROOT / "scripts"))


def preflight_release(dist) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "preflight.py"), "--release", "--dist", str(dist)],
                          capture_output=True, text=True)


def test_the_repository_examples_are_refused_by_name_and_place():
    result = preflight_release(ROOT / "dist")
    assert result.returncode == 1
    out = result.stdout
    expected = [
        "staging: HTTPRoute/kubechat-web spec.hostnames[0] = 'staging.kubechat.example.com' is an example domain; "
        "set it in overlays/staging/tls.yaml",
        "production: ClusterIssuer/kubechat-production-letsencrypt-production spec.acme.email = 'platform@example.com' "
        "is an example domain; set it in ExposureProps.acme_email",
        "production: ConfigMap/kubechat-api-config-", "data.PUBLIC_URL = 'https://kubechat.example.com'",
        "set it in overlays/production/api-settings.env",
        "staging: ObjectStore/kubechat-backups spec.configuration.destinationPath = 's3://kubechat-backups-staging/"
        "kubechat/physical' is the example backup bucket; set it in overlays/staging/backups.yaml",
        "production: Deployment/kubechat-api runs ghcr.io/kubechat/kubechat-api:1.0.0 without a digest; set it "
        "with scripts/release.py upgrade --env production --api-digest sha256:... --web-digest sha256:...",
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
            "s3://kubechat-backups-": "s3://acme-corp-kubechat-", "https://argocd.example.com": "https://argocd.acme-corp.io"}
    digests = stand_in_digests()
    dist = tmp_path / "dist"
    shutil.copytree(ROOT / "dist", dist)
    for path in dist.rglob("*.yaml"):
        text = path.read_text()
        for example, value in site.items():
            text = text.replace(example, value)
        if path.parent.name == "production":  # what scripts/release.py writes for a release
            for image, digest in digests.items():
                text = re.sub(rf"(ghcr\.io/kubechat/{image}:1\.0\.0)$", rf"\1@{digest}", text, flags=re.M)
        path.write_text(text)
    result = preflight_release(dist)
    assert result.returncode == 0 and "preflight: passed" in result.stdout, result.stdout


def test_production_images_get_their_digests_from_the_release_only():
    """The repository holds no digest for KubeChat's images (no registry holds them for it): the committed
    production render is refused by the release check, and the release (scripts/release.py upgrade, done
    here on a copy with stand-in digests) is what makes it pass."""
    committed = load_dir(ROOT / "dist" / "rendered" / "production")
    problems = release_problems({"staging": [], "production": committed}, [])
    for image in ("kubechat-api", "kubechat-web"):
        assert any(f"Deployment/{image} runs ghcr.io/kubechat/{image}:1.0.0 without a digest; set it with "
                   "scripts/release.py upgrade --env production" in p for p in problems), problems
    released = released_render("production", "1.0.0", stand_in_digests())
    assert undigested_images(released, "production") == []
    images = {c["image"] for d in released if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]}
    assert {f"ghcr.io/kubechat/{i}:1.0.0@{d}" for i, d in stand_in_digests().items()} <= images


def test_no_image_digest_is_committed_for_kubechat():
    tracked = subprocess.run(["git", "grep", "-nE", r"(kubechat-(api|web).*@|digest: )sha256:[0-9a-f]{64}", "--",
                              "overlays", "dist", "constructs", "docs"], cwd=ROOT, capture_output=True, text=True)
    assert tracked.returncode == 1 and not tracked.stdout, tracked.stdout
