"""Supply chain and admission as rendered: Kyverno policies per environment, the vulnerability condition
evaluated with a JMESPath implementation on a Trivy attestation, settings rejected with clear errors, the
image allowlist consistent with what KubeChat runs, and no plaintext secret in the repository or render.
(The CEL policies are evaluated by a real API server: tests/integration/test_apply_and_admission.py.)"""
from __future__ import annotations

import re
import shutil
import subprocess

import jmespath
import pytest

from conftest import ROOT, find
from kubechat_deploy.security.admission import Severity, SupplyChainProps, severity_count_query
from kubechat_deploy.validation import SettingsError
from kubechat_tools.secret_scan import scan_render, scan_repository, scan_text

ENVS = ("dev", "staging", "production")
PUBLIC_KEY = ("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEjNVmoe+h36rK+d5hG+pCWvKmMw/z\n"
              "pCcWrxdpIK2Ux3pIZPq8uGvHfszZdVw6ZN27n7dTe4fNYtz9mI7LcZ4Xcw==\n-----END PUBLIC KEY-----\n")


def images_of(docs: list[dict]) -> list[str]:
    found = []
    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet", "Job", "CronJob", "Cluster"):
            continue
        spec = doc.get("spec", {})
        template = (spec.get("jobTemplate", {}).get("spec", {}).get("template") or spec.get("template") or {})
        pod = template.get("spec", {})
        for key in ("containers", "initContainers"):
            found += [c["image"] for c in pod.get(key, [])]
        if doc["kind"] == "Cluster" and "imageName" in spec:
            found.append(spec["imageName"])
    return found


# --- Kyverno policies as rendered -----------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_kyverno_policies_guard_only_their_environment(rendered, env):
    for name in ("verify-images", "image-references"):
        policy = find(rendered[env], "ClusterPolicy", f"kubechat-{env}-{name}")
        assert "namespace" not in policy["metadata"]
        for rule in policy["spec"]["rules"]:
            assert rule["match"] == {"any": [{"resources": {"kinds": ["Pod"], "namespaces": [f"kubechat-{env}"]}}]}


@pytest.mark.parametrize("env, action", [("dev", "Audit"), ("staging", "Enforce"), ("production", "Enforce")])
def test_kyverno_audits_in_dev_and_enforces_elsewhere(rendered, env, action):
    verify = find(rendered[env], "ClusterPolicy", f"kubechat-{env}-verify-images")["spec"]
    entry = verify["rules"][0]["verifyImages"][0]
    assert entry["failureAction"] == action
    # Kyverno refuses a policy that rewrites digests in Audit mode; Enforce pins tags to digests
    assert entry["mutateDigest"] is (action == "Enforce")
    assert entry["verifyDigest"] is True and entry["required"] is True
    assert verify["failurePolicy"] == "Fail" and verify["background"] is False
    references = find(rendered[env], "ClusterPolicy", f"kubechat-{env}-image-references")["spec"]["rules"]
    assert {r["name"]: r["validate"]["failureAction"] for r in references} == {
        "require-tag": action, "disallow-latest": action, "allowed-registries": action}
    for binding in [d for d in rendered[env] if d["kind"] == "ValidatingAdmissionPolicyBinding"]:
        assert binding["spec"]["validationActions"] == (["Warn", "Audit"] if env == "dev" else ["Deny"])
        if binding["metadata"]["name"] == f"kubechat-{env}-api-write-limits":
            # The API's own requests, wherever its write grant is bound (#31.5): every namespace.
            assert "matchResources" not in binding["spec"]
        else:
            assert binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"] == {
                "kubernetes.io/metadata.name": f"kubechat-{env}"}
        assert binding["spec"]["policyName"] == binding["metadata"]["name"]


def test_only_production_binds_the_digest_policy(rendered):
    names = {env: {d["metadata"]["name"] for d in rendered[env] if d["kind"] == "ValidatingAdmissionPolicyBinding"}
             for env in ENVS}
    assert "kubechat-production-image-digests" in names["production"]
    assert not any("image-digests" in n for n in names["dev"] | names["staging"])


def test_signature_and_attestation_use_the_release_identity(rendered):
    """14.7: the signature must come from the release workflow; the vulnerability attestation from it or
    from the scheduled re-scan (which runs on the default branch); findings are enforced, the scan's age
    only audited, so an expired scan never refuses a scale-up, a drain or a restart."""
    rules = {r["name"]: r for r in find(rendered["production"], "ClusterPolicy", "kubechat-production-verify-images")["spec"]["rules"]}
    props = SupplyChainProps()
    keyless = lambda subject: {"keyless": {"issuer": props.keyless_issuer, "subject": subject,  # noqa: E731
                                           "rekor": {"url": props.rekor_url}}}
    entry = rules["signed-and-scanned"]["verifyImages"][0]
    assert entry["imageReferences"] == ["ghcr.io/kubechat/*"] and entry["failureAction"] == "Enforce"
    assert entry["attestors"][0]["entries"] == [keyless(props.keyless_subject)]
    attestation = entry["attestations"][0]
    assert attestation["predicateType"] == "https://cosign.sigstore.dev/attestation/vuln/v1"
    assert attestation["attestors"] == [{"count": 1, "entries": [keyless(props.keyless_subject),
                                                                  keyless(props.rescan_subject)]}]
    assert props.rescan_subject.endswith("@refs/heads/main")
    conditions = attestation["conditions"][0]["all"]
    assert len(conditions) == 1 and conditions[0]["operator"] == "Equals" and conditions[0]["value"] == 0
    assert not any("time_since" in c["key"] for c in conditions), "the scan's age must not be enforced"
    fresh = rules["scan-fresh"]["verifyImages"][0]
    assert fresh["failureAction"] == "Audit" and fresh["mutateDigest"] is False and fresh["required"] is False
    age = fresh["attestations"][0]["conditions"][0]["all"]
    assert age == [{"key": "{{ time_since('', '{{ metadata.scanFinishedOn }}', '') }}", "operator": "LessThanOrEquals",
                    "value": "168h", "message": age[0]["message"]}]
    assert fresh["attestations"][0]["attestors"] == attestation["attestors"]


def test_a_public_key_replaces_keyless_verification():
    from cdk8s import App, Chart, Testing

    from kubechat_deploy.security.admission import KyvernoPolicies

    app = App()
    chart = Chart(app, "test")
    KyvernoPolicies(chart, "kyverno", props=SupplyChainProps(public_key=PUBLIC_KEY, attestation_max_age_days=3,
                                                             blocking_severity=Severity.HIGH), namespace="kubechat")
    verify = next(d for d in Testing.synth(chart) if d["metadata"]["name"] == "verify-images")
    entry = verify["spec"]["rules"][0]["verifyImages"][0]
    assert entry["attestors"][0]["entries"] == [{"keys": {"publicKeys": PUBLIC_KEY, "ctlog": {"ignoreSCT": True},
                                                          "rekor": {"url": "https://rekor.sigstore.dev"}}}]
    conditions = entry["attestations"][0]["conditions"][0]["all"]
    assert "Severity == 'HIGH' || Severity == 'CRITICAL'" in conditions[0]["key"]
    age = verify["spec"]["rules"][1]["verifyImages"][0]["attestations"][0]
    assert age["conditions"][0]["all"][0]["value"] == "72h"
    assert age["attestors"][0]["entries"] == entry["attestors"][0]["entries"], "the key holder attests rescans too"


def test_a_key_pair_outside_the_transparency_log_is_verified_by_its_key_alone():
    """tests/admission/test_signed_images.py runs Kyverno's admission controller on this form."""
    from cdk8s import App, Chart, Testing

    from kubechat_deploy.security.admission import KyvernoPolicies

    app = App()
    chart = Chart(app, "test")
    KyvernoPolicies(chart, "kyverno", props=SupplyChainProps(public_key=PUBLIC_KEY, transparency_log=False),
                    namespace="kubechat")
    verify = next(d for d in Testing.synth(chart) if d["metadata"]["name"] == "verify-images")
    for rule in verify["spec"]["rules"]:
        entry = rule["verifyImages"][0]
        for attestors in [entry.get("attestors", [])] + [a["attestors"] for a in entry["attestations"]]:
            for attestor in attestors:
                assert attestor["entries"] == [{"keys": {"publicKeys": PUBLIC_KEY, "ctlog": {"ignoreSCT": True}, "rekor": {
                    "url": "https://rekor.sigstore.dev", "ignoreTlog": True}}}]


# --- the vulnerability condition, evaluated -------------------------------------------------------

def trivy_predicate(*severities_per_result: list[str]) -> dict:
    """The shape `trivy image --format cosign-vuln` writes (https://cosign.sigstore.dev/attestation/vuln/v1)."""
    results = []
    for index, severities in enumerate(severities_per_result):
        result = {"Target": f"layer-{index}", "Class": "os-pkgs"}
        if severities:  # Trivy leaves Vulnerabilities out when a target has none
            result["Vulnerabilities"] = [{"VulnerabilityID": f"CVE-2026-{index}{n:04d}", "Severity": s}
                                         for n, s in enumerate(severities)]
        results.append(result)
    return {"invocation": {}, "scanner": {"uri": "pkg:github/aquasecurity/trivy@v0.67.0", "version": "0.67.0",
                                          "result": {"SchemaVersion": 2, "Results": results}},
            "metadata": {"scanStartedOn": "2026-11-25T10:00:00Z", "scanFinishedOn": "2026-11-25T10:01:00Z"}}


@pytest.mark.parametrize("predicate, blocking, expected", [
    (trivy_predicate(["LOW", "HIGH"], [], ["MEDIUM"]), Severity.CRITICAL, 0),
    (trivy_predicate(["LOW"], ["CRITICAL", "HIGH"], ["CRITICAL"]), Severity.CRITICAL, 2),
    (trivy_predicate(["LOW", "HIGH"], []), Severity.HIGH, 1),
    (trivy_predicate([], []), Severity.CRITICAL, 0),
])
def test_the_severity_condition_counts_blocking_findings(predicate, blocking, expected):
    query = severity_count_query(SupplyChainProps(blocking_severity=blocking).blocked_severities)
    assert jmespath.search(query, predicate) == expected


def test_the_rendered_condition_is_the_tested_query(rendered):
    entry = find(rendered["production"], "ClusterPolicy", "kubechat-production-verify-images")["spec"]["rules"][0]["verifyImages"][0]
    key = entry["attestations"][0]["conditions"][0]["all"][0]["key"]
    assert key == "{{ " + severity_count_query(["CRITICAL"]) + " }}"


# --- images and settings --------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_every_image_kubechat_runs_is_fully_qualified_and_allowed(rendered, env):
    props = SupplyChainProps()
    images = images_of(rendered[env])
    assert len(images) >= 6
    for image in images:
        assert props.image_allowed(image), f"{env}: {image} is outside {props.allowed_registries}"
    # the Kyverno pattern and the CEL policy carry the same allowlist
    references = find(rendered[env], "ClusterPolicy", f"kubechat-{env}-image-references")["spec"]["rules"]
    registries = next(r for r in references if r["name"] == "allowed-registries")
    pattern = registries["validate"]["pattern"]["spec"]["containers"][0]["image"]
    assert pattern.split(" | ") == [p + "*" for p in props.allowed_registries] + list(props.allowed_images)
    cel = find(rendered[env], "ValidatingAdmissionPolicy", f"kubechat-{env}-image-references")["spec"]["variables"]
    foreign = next(v for v in cel if v["name"] == "foreign")["expression"]
    assert all(f'"{p}"' in foreign for p in props.allowed_registries + props.allowed_images)


@pytest.mark.parametrize("make, field, value", [
    (lambda: SupplyChainProps(allowed_registries=("valkey/",)), "supply_chain.allowed_registries", "valkey/"),
    (lambda: SupplyChainProps(allowed_registries=()), "supply_chain.allowed_registries", ()),
    (lambda: SupplyChainProps(allowed_images=("quay.io/jetstack/*",)), "supply_chain.allowed_images", "quay.io/jetstack/*"),
    (lambda: SupplyChainProps(allowed_images=("quay.io/jetstack/cert-manager-acmesolver",)), "supply_chain.allowed_images",
     "quay.io/jetstack/cert-manager-acmesolver"),
    (lambda: SupplyChainProps(signed_images=("kubechat-api",)), "supply_chain.signed_images", "kubechat-api"),
    (lambda: SupplyChainProps(keyless_issuer="token.actions.githubusercontent.com"), "supply_chain.keyless_issuer",
     "token.actions.githubusercontent.com"),
    (lambda: SupplyChainProps(public_key="not a key"), "supply_chain.public_key", "not a key..."),
    (lambda: SupplyChainProps(transparency_log=False), "supply_chain.transparency_log", False),
    (lambda: SupplyChainProps(attestation_max_age_days=0), "supply_chain.attestation_max_age_days", 0),
    (lambda: SupplyChainProps(blocking_severity="critical"), "supply_chain.blocking_severity", "critical"),
])
def test_bad_supply_chain_settings_are_rejected_by_name(make, field, value):
    with pytest.raises(SettingsError) as error:
        make()
    assert error.value.field == field and error.value.value == value
    assert "allowed:" in str(error.value)


def test_an_image_outside_the_allowlist_stops_the_render_before_anything_is_written():
    from kubechat_deploy.app.api import ApiProps
    from kubechat_deploy.chart import KubeChatProps

    with pytest.raises(SettingsError) as error:
        KubeChatProps(api=ApiProps(image="quay.io/someone/kubechat-api"))
    assert error.value.field == "api.image" and "ghcr.io/kubechat/" in str(error.value)


# --- plaintext secrets ----------------------------------------------------------------------------

def test_no_plaintext_secret_in_the_repository_or_the_staging_and_production_render():
    findings = scan_repository() + scan_render()
    assert findings == [], "\n".join(map(str, findings))


# Planted values are assembled at run time so this file does not trip the repository scan itself.
@pytest.mark.parametrize("line, rule", [
    ("-----BEGIN RSA " + "PRIVATE KEY-----", "private key"),
    ("aws_access_key_id = " + "AKIA" + "IOSFODNN7EXAMPLE", "AWS access key id"),
    ("token: ghp_" + "a1B2" * 9, "GitHub token"),
    ("DATABASE_URL=postgres://kubechat:" + "S3cr3t-Pa55word" + "@db:5432/kubechat", "credentials in a URL"),
    ("  password: 'Xk9#mQ2$vL7@pR4!wZ8'", "a literal value for password"),
    ("JWT_SIGNING_KEY=q8Fz2LmX0vB7nR4tK9wY3cJ6", "a literal value for JWT_SIGNING_KEY"),
])
def test_the_secret_scan_finds_planted_credentials(line, rule):
    assert [f.rule for f in scan_text("overlays/staging/api-settings.env", line)] == [rule]


@pytest.mark.parametrize("line", [
    "secretName: kubechat-tls", "key: kubechat/production/api", "passwordSecret: kubechat-db-app",
    "REDIS_PASSWORD=REDIS_PASSWORD", "token: {{ .Values.token }}", "url: postgres://$(USER):$(PASSWORD)@db/kubechat",
])
def test_the_secret_scan_leaves_references_alone(line):
    assert scan_text("overlays/production/settings.yaml", line) == []


def test_the_secret_scan_catches_a_secret_in_a_committed_file_and_a_rendered_secret(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "overlays" / "production").mkdir(parents=True)
    (repo / "overlays" / "production" / "api-settings.env").write_text("API_TOKEN=Zq81vXm2Lp0Rt7Yc4Nw9Bk3\n")
    (repo / "overlays" / "dev").mkdir(parents=True)
    (repo / "overlays" / "dev" / "dev-secrets.env").write_text("JWT_SIGNING_KEY=real-looking-Zq81vXm2Lp0R\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    assert {(f.path, f.rule) for f in scan_repository(repo)} >= {
        ("overlays/production/api-settings.env", "a literal value for API_TOKEN"),
        ("overlays/dev/dev-secrets.env", "dev secret JWT_SIGNING_KEY without the dev-only marker")}
    dist = tmp_path / "dist"
    shutil.copytree(ROOT / "dist" / "rendered" / "production", dist / "rendered" / "production")
    (dist / "rendered" / "staging").mkdir(parents=True)
    (dist / "platform").mkdir()
    (dist / "rendered" / "production" / "secret-leak.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: leak, namespace: kubechat-production}\ndata: {k: dmFsdWU=}\n")
    assert [f.rule for f in scan_render(dist)] == [
        "a Kubernetes Secret (staging and production take secrets from External Secrets)"]
    assert re.search(r"secret-leak\.yaml", str(scan_render(dist)[0]))
