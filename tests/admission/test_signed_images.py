"""Signed images, verified by Kyverno's real admission controller against the rendered verify-images policies
(their signer replaced by a key pair of this test: testbed.kyverno.with_key): production and
staging enforce, dev audits.

Each case pushes an image of its own (a digest Kyverno has not verified before: its verification cache is
keyed by image) to the loopback registry serving as ghcr.io, signs and attests it as the case needs, and
creates a pod of the rendered API Deployment's template running it by tag, as the ReplicaSet controller
would, so the rendered restricted-security-context, image-references and (production) image-digests
policies decide too.

The scan's age: docs/security.md (issue #14) makes it an Audit rule, `scan-fresh`: a scan older than
supply_chain.attestation_max_age_days is reported (a warning to the client, a PolicyViolation event, a
failed result in the PolicyReport), never refused, so scale-ups and restarts keep working when the re-scan
is late. Issue #15 lists "scan older than the limit" among the refusals; the rendered policy deliberately
does not refuse it, and this test holds it to that decision.
"""
from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from kubechat_tools.gates import pod_template

from .conftest import RELEASE_TAG, REPOSITORY, image, pod_from

pytestmark = pytest.mark.admission



@pytest.fixture(scope="module")
def other_key(signer):
    """A key pair that is not the release pipeline's."""
    return signer.key_pair("someone-else")


def api_pod(kyverno, env: str, name: str, reference: str) -> dict:
    docs = kyverno.context["renders"][env]
    template = pod_template(next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "kubechat-api"))
    return pod_from(template, name, f"kubechat-{env}", reference)


def create(plane, pod: dict):
    return plane.kubectl("create", "-f", "-", "-o", "json", input=yaml.safe_dump(pod), check=False)


def refusal(result) -> str:
    assert result.returncode != 0, "the pod was admitted"
    return result.stderr


# --- what the rendered policy says ------------------------------------------------------------------

def policy_limits(kyverno, env: str) -> dict:
    """From the environment's rendered verify-images policy: the scan age limit in days, the blocked
    severities (the JMESPath filter of the findings condition) and that condition's message."""
    policy = next(d for d in kyverno.context["renders"][env]
                  if d["kind"] == "ClusterPolicy" and d["metadata"]["name"].endswith("-verify-images"))
    rules = {r["name"]: r["verifyImages"][0] for r in policy["spec"]["rules"]}
    findings = rules["signed-and-scanned"]["attestations"][0]["conditions"][0]["all"][0]
    age = rules["scan-fresh"]["attestations"][0]["conditions"][0]["all"][0]
    hours = re.fullmatch(r"(\d+)h", age["value"])
    assert hours, age
    blocked = re.findall(r"Severity == '([A-Z]+)'", findings["key"])
    return {"days": int(hours.group(1)) // 24, "blocked": blocked, "findings_message": findings["message"],
            "age_message": age["message"]}


SEVERITIES = ["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
ENFORCING = ("staging", "production")


def below(blocked: list[str]) -> tuple[str, ...]:
    return tuple(s for s in SEVERITIES if s not in blocked)


# --- staging and production: enforce --------------------------------------------------------------

@pytest.mark.parametrize("env", ENFORCING)
def test_a_signed_freshly_scanned_image_runs_and_is_pinned_to_its_digest(kyverno, plane, signer, release_key, env):
    by_tag, by_digest = image(signer, f"{env}-fresh", key=release_key)
    result = create(plane, api_pod(kyverno, env, "api-fresh", by_tag))
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    # mutateDigest: the tag now names the digest that was verified (production's image-digests policy
    # requires a digest, and is evaluated after this mutation).
    assert [c["image"] for c in created["spec"]["containers"]] == [f"{by_tag}@{by_digest.split('@')[1]}"]
    assert "Warning" not in result.stderr, result.stderr


@pytest.mark.parametrize("env", ENFORCING)
def test_an_image_already_pinned_by_digest_runs(kyverno, plane, signer, release_key, env):
    _, by_digest = image(signer, f"{env}-pinned", key=release_key)
    result = create(plane, api_pod(kyverno, env, "api-pinned", by_digest))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["spec"]["containers"][0]["image"] == by_digest


@pytest.mark.parametrize("env", ENFORCING)
def test_an_unsigned_image_is_refused(kyverno, plane, signer, env):
    by_tag, _ = image(signer, f"{env}-unsigned")
    message = refusal(create(plane, api_pod(kyverno, env, "api-unsigned", by_tag)))
    assert f"kubechat-{env}-verify-images" in message and "signed-and-scanned" in message
    assert "no signatures found" in message


@pytest.mark.parametrize("env", ENFORCING)
def test_an_image_signed_with_another_key_is_refused(kyverno, plane, signer, other_key, env):
    by_tag, _ = image(signer, f"{env}-other-key", key=other_key)
    message = refusal(create(plane, api_pod(kyverno, env, "api-other-key", by_tag)))
    assert "signed-and-scanned" in message and "no matching signatures" in message


def test_a_signature_in_cosign_v3s_default_bundle_format_is_not_found(kyverno, plane, signer, release_key):
    """cosign v3 signs in the Sigstore bundle format by default; the rendered policy's verifyImages entries
    have Kyverno's default `type: Cosign`, which reads the classic `sha256-<digest>.sig`/`.att` tags only
    (bundles are read by `type: SigstoreBundle`), so the release pipeline signs and attests with
    --new-bundle-format=false (docs/security.md)."""
    policy = next(d for d in kyverno.context["renders"]["production"] if d["kind"] == "ClusterPolicy"
                  and d["metadata"]["name"].endswith("-verify-images"))
    assert all("type" not in r["verifyImages"][0] for r in policy["spec"]["rules"]), "the default type, Cosign"
    tag = f"{RELEASE_TAG}-bundle"
    by_digest = signer.push(REPOSITORY, tag, "kubechat-api bundle")
    signer.sign(by_digest, release_key[0], bundle_format=True)
    tags = signer.tags(REPOSITORY)
    digest_tag = by_digest.split("@")[1].replace(":", "-")
    assert digest_tag in tags and f"{digest_tag}.sig" not in tags, tags
    message = refusal(create(plane, api_pod(kyverno, "production", "api-bundle", f"{REPOSITORY}:{tag}")))
    assert "signed-and-scanned" in message and "no signatures found" in message


@pytest.mark.parametrize("env", ENFORCING)
def test_a_signed_image_without_a_scan_is_refused(kyverno, plane, signer, release_key, env):
    by_tag, _ = image(signer, f"{env}-no-scan", key=release_key, attest=False)
    message = refusal(create(plane, api_pod(kyverno, env, "api-no-scan", by_tag)))
    assert "signed-and-scanned" in message and "no matching attestations" in message


@pytest.mark.parametrize("env", ENFORCING)
def test_a_finding_at_the_blocking_severity_is_refused(kyverno, plane, signer, release_key, env):
    limits = policy_limits(kyverno, env)
    lowest_blocked = next(s for s in SEVERITIES if s in limits["blocked"])
    by_tag, _ = image(signer, f"{env}-blocked", key=release_key, findings=("LOW", lowest_blocked))
    message = refusal(create(plane, api_pod(kyverno, env, "api-blocked", by_tag)))
    assert limits["findings_message"] in message


@pytest.mark.parametrize("env", ENFORCING)
def test_findings_below_the_blocking_severity_run(kyverno, plane, signer, release_key, env):
    findings = below(policy_limits(kyverno, env)["blocked"])
    assert findings, "some severity must be below the threshold"
    by_tag, _ = image(signer, f"{env}-below", key=release_key, findings=findings + findings)
    result = create(plane, api_pod(kyverno, env, "api-below", by_tag))
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def audited(kyverno, plane, signer, release_key):
    """The pods whose results the tests read from PolicyReports, created together: the reports controller
    aggregates admission results every few seconds, so one wait covers all of them."""
    days = policy_limits(kyverno, "production")["days"]
    lowest_blocked = next(s for s in SEVERITIES if s in policy_limits(kyverno, "dev")["blocked"])
    cases = {"stale": ("production", {"key": release_key, "scan_age_days": days + 1}),
             "almost-stale": ("production", {"key": release_key, "scan_age_days": days - 0.5}),
             "dev-unsigned": ("dev", {}),
             "dev-blocked": ("dev", {"key": release_key, "findings": (lowest_blocked,)})}
    created = {}
    for case, (env, kwargs) in cases.items():
        by_tag, _ = image(signer, case, **kwargs)
        created[case] = (by_tag, create(plane, api_pod(kyverno, env, f"api-{case}", by_tag)))
    return created


def test_a_scan_older_than_the_limit_runs_and_is_reported(kyverno, plane, audited):
    """docs/security.md: the scan's age is audited, never enforced (module docstring)."""
    _, result = audited["stale"]
    assert result.returncode == 0, result.stderr
    assert "Warning: policy kubechat-production-verify-images.scan-fresh" in result.stderr
    assert policy_limits(kyverno, "production")["age_message"] in result.stderr
    assert policy_result(plane, "kubechat-production", "api-stale", "scan-fresh") == "fail"
    events = violation_events(plane, "kubechat-production", "api-stale")
    assert any("scan-fresh fail" in e for e in events), events


def test_a_scan_within_the_limit_passes_the_age_rule(plane, audited):
    _, result = audited["almost-stale"]
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr
    assert policy_result(plane, "kubechat-production", "api-almost-stale", "scan-fresh") == "pass"


# --- dev: audit ------------------------------------------------------------------------------------

def test_dev_runs_an_unsigned_image_and_reports_it(plane, audited):
    by_tag, result = audited["dev-unsigned"]
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["spec"]["containers"][0]["image"] == by_tag, "dev keeps tags (mutateDigest is off in Audit)"
    assert "Warning: policy kubechat-dev-verify-images.signed-and-scanned" in result.stderr
    assert policy_result(plane, "kubechat-dev", "api-dev-unsigned", "signed-and-scanned") == "fail"


def test_dev_runs_an_image_with_a_blocking_finding_and_reports_it(kyverno, plane, audited):
    _, result = audited["dev-blocked"]
    assert result.returncode == 0, result.stderr
    assert policy_limits(kyverno, "dev")["findings_message"] in result.stderr
    assert policy_result(plane, "kubechat-dev", "api-dev-blocked", "signed-and-scanned") == "fail"


def test_kyverno_asked_the_proxy_for_no_host_but_the_registry(kyverno, registry):
    """Kyverno, crane and cosign have HTTP(S)_PROXY set to the proxy that serves only ghcr.io: whatever
    else they asked for (a transparency log, a TUF root, another registry) would be refused and listed."""
    assert registry.proxy.refused == [], registry.proxy.refused


# --- reports ---------------------------------------------------------------------------------------

def policy_result(plane, namespace: str, pod: str, rule: str, timeout: float = 60) -> str:
    """The result of `rule` for `pod` in the namespace's PolicyReport (the reports controller aggregates the
    admission controller's EphemeralReports into it)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        reports = json.loads(plane.kubectl("get", "policyreports.wgpolicyk8s.io", "-n", namespace, "-o", "json").stdout)
        seen = []
        for report in reports["items"]:
            if report.get("scope", {}).get("name") != pod:
                continue
            for result in report.get("results", []):
                seen.append((result.get("rule"), result.get("result")))
                if result.get("rule") == rule:
                    return result["result"]
        time.sleep(1)
    raise AssertionError(f"no PolicyReport result for rule {rule} of pod {namespace}/{pod} in {timeout:.0f} s: {seen}")


def violation_events(plane, namespace: str, pod: str) -> list[str]:
    events = json.loads(plane.kubectl("get", "events", "-n", namespace, "--field-selector",
                                      f"involvedObject.name={pod},reason=PolicyViolation", "-o", "json").stdout)
    return [e["message"] for e in events["items"]]
