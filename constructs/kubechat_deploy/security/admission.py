"""Admission control for KubeChat's namespace: Kyverno ClusterPolicies (only signed, scanned images
from allowed registries run) and native ValidatingAdmissionPolicies (CEL, no external calls) as a
second line of defense. The base enforces; overlays/dev relaxes to audit (docs/security.md)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum

from cdk8s import ApiObject, JsonPatch
from constructs import Construct
from imports.kyverno.io import kyverno

from kubechat_deploy import validation as v
from kubechat_deploy.labels import standard_labels
from kubechat_deploy.delivery.sync import Wave, wave
from kubechat_deploy.versions import ACME_HTTP01_SOLVER_IMAGE

GUARDED_NAMESPACE_LABEL = "kubernetes.io/metadata.name"
"""Set by the API server on every namespace and immutable: the one label a policy can trust."""
VULN_PREDICATE = "https://cosign.sigstore.dev/attestation/vuln/v1"
"""cosign's vulnerability-scan predicate, written by `trivy image --format cosign-vuln`."""
AUTOGEN_CONTROLLERS = "pod-policies.kyverno.io/autogen-controllers"


class Severity(str, Enum):
    """Trivy's severities, lowest first."""
    UNKNOWN = "UNKNOWN"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


SEVERITIES = list(Severity)
KEYLESS_SUBJECT = re.compile(r"^\S+$")


@dataclass(frozen=True, kw_only=True)
class SupplyChainProps:
    """Which images may run in KubeChat's namespace and what proof they must carry."""

    signed_images: tuple[str, ...] = ("ghcr.io/kubechat/*",)
    """Image references (Kyverno wildcards) built by KubeChat's release pipeline: each must be signed,
    carry a vulnerability attestation without blocking findings, and is pinned to its digest at admission.
    Default: (ghcr.io/kubechat/*,)."""
    allowed_registries: tuple[str, ...] = (
        "ghcr.io/kubechat/", "ghcr.io/cloudnative-pg/", "docker.io/valkey/", "docker.io/oliver006/",
        "docker.io/migrate/", "docker.io/curlimages/", "docker.io/dpage/", "ghcr.io/joeferner/")
    """Prefixes of fully qualified image references allowed to run (registry and repository owner, each
    ending in '/'). Default: KubeChat's own, CloudNativePG's, and the pinned third-party images'."""
    allowed_images: tuple[str, ...] = (ACME_HTTP01_SOLVER_IMAGE,)
    """Exact image references allowed besides the prefixes: pods other controllers create in KubeChat's
    namespace. Default: cert-manager's HTTP-01 solver at the pinned cert-manager version (and no other)."""
    keyless_issuer: str = "https://token.actions.githubusercontent.com"
    """OIDC issuer of the keyless (Fulcio) signing identity. Default: GitHub Actions."""
    keyless_subject: str = "https://github.com/kubechat/kubechat/.github/workflows/release.yaml@refs/tags/*"
    """Identity (certificate subject; wildcards allowed) that signs releases.
    Default: the release workflow of github.com/kubechat/kubechat, on tags."""
    rescan_subject: str = "https://github.com/kubechat/kubechat/.github/workflows/rescan.yaml@refs/heads/main"
    """Identity of the scheduled re-scan that re-attests released images with a fresh vulnerability scan
    (it runs on the default branch, not on a tag): trusted for vulnerability attestations only, never for
    the image signature. Default: the rescan workflow of github.com/kubechat/kubechat on main."""
    public_key: str = ""
    """PEM public key of a cosign key pair; when set it replaces keyless verification. Default: empty."""
    rekor_url: str = "https://rekor.sigstore.dev"
    """Transparency log the keyless signatures are recorded in. Default: https://rekor.sigstore.dev."""
    transparency_log: bool = True
    """Whether a signature made with `public_key`'s key pair must be recorded in the transparency log at
    rekor_url. False for a private key pair whose signatures are never uploaded (cosign's
    `--tlog-upload=false`): Kyverno then checks the key alone (ignoreTlog). Keyless signatures always need
    the log. Default: True."""
    attestation_max_age_days: int = 7
    """A vulnerability attestation older than this (by its scanFinishedOn) is reported (Kyverno Audit: a
    PolicyReport result), never refused: the scheduled re-scan (rescan_subject) keeps it fresh. Default: 7."""
    blocking_severity: Severity = Severity.CRITICAL
    """Findings of this severity or higher in the attestation refuse the image. Default: CRITICAL."""
    digest_required_images: tuple[str, ...] = ("ghcr.io/kubechat/",)
    """Image prefixes that must be pinned by digest where the image-digests component is included
    (production). Default: (ghcr.io/kubechat/,)."""

    def __post_init__(self) -> None:
        if not self.signed_images:
            raise v.SettingsError("supply_chain.signed_images", self.signed_images,
                                  "at least one image reference such as 'ghcr.io/kubechat/*'")
        for reference in self.signed_images:
            if not re.fullmatch(r"[a-z0-9.-]+(:\d+)?/[a-z0-9._/*-]+", reference):
                raise v.SettingsError("supply_chain.signed_images", reference,
                                      "a fully qualified image reference with wildcards, such as 'ghcr.io/kubechat/*'")
        for image in self.allowed_images:
            if not re.fullmatch(r"[a-z0-9.-]+\.[a-z]+(:\d+)?/[a-z0-9._/-]+(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?(@sha256:[0-9a-f]{64})?",
                                image) or not (":" in image.split("/")[-1] or "@" in image) or image.endswith(":latest"):
                raise v.SettingsError("supply_chain.allowed_images", image,
                                      "an exact, fully qualified image reference with a version tag or digest, such as "
                                      "'quay.io/jetstack/cert-manager-acmesolver:v1.21.1' (no wildcards, not latest)")
        for name in ("allowed_registries", "digest_required_images"):
            prefixes = getattr(self, name)
            if not prefixes:
                raise v.SettingsError(f"supply_chain.{name}", prefixes, "at least one prefix")
            for prefix in prefixes:
                if not re.fullmatch(r"[a-z0-9.-]+\.[a-z]+(:\d+)?/([a-z0-9._-]+/)*", prefix):
                    raise v.SettingsError(f"supply_chain.{name}", prefix,
                                          "a registry host with a dot and optional path ending in '/', "
                                          "such as 'ghcr.io/kubechat/' (docker.io for Docker Hub)")
        if not self.public_key:
            if not re.fullmatch(r"https://\S+", self.keyless_issuer):
                raise v.SettingsError("supply_chain.keyless_issuer", self.keyless_issuer, "an https:// OIDC issuer URL")
            for name in ("keyless_subject", "rescan_subject"):
                if not KEYLESS_SUBJECT.match(getattr(self, name)):
                    raise v.SettingsError(f"supply_chain.{name}", getattr(self, name),
                                          "a signing identity without spaces (wildcards allowed)")
        elif not re.fullmatch(r"-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+\n-----END PUBLIC KEY-----\n?",
                              self.public_key):
            raise v.SettingsError("supply_chain.public_key", self.public_key[:40] + "...",
                                  "a PEM public key ('-----BEGIN PUBLIC KEY-----' ... '-----END PUBLIC KEY-----')")
        if not self.transparency_log and not self.public_key:
            raise v.SettingsError("supply_chain.transparency_log", self.transparency_log,
                                  "true for keyless signing (a Fulcio certificate is trusted only through the "
                                  "transparency log); false only together with supply_chain.public_key")
        if not re.fullmatch(r"https://\S+", self.rekor_url):
            raise v.SettingsError("supply_chain.rekor_url", self.rekor_url, "an https:// URL")
        v.at_least("supply_chain.attestation_max_age_days", self.attestation_max_age_days, 1)
        if not isinstance(self.blocking_severity, Severity):
            raise v.SettingsError("supply_chain.blocking_severity", self.blocking_severity,
                                  ", ".join(s.value for s in Severity))

    @property
    def blocked_severities(self) -> list[str]:
        return [s.value for s in SEVERITIES[SEVERITIES.index(self.blocking_severity):]]

    def image_allowed(self, image: str) -> bool:
        return image in self.allowed_images or any(image.startswith(prefix) for prefix in self.allowed_registries)


def severity_count_query(severities: list[str]) -> str:
    """JMESPath over Trivy's cosign-vuln predicate: how many findings have one of `severities`."""
    wanted = " || ".join(f"Severity == '{s}'" for s in severities)
    return f"scanner.result.Results[].Vulnerabilities[] | [?{wanted}] | length(@)"


def pod_match(namespace: str) -> kyverno.ClusterPolicySpecRulesMatch:
    return kyverno.ClusterPolicySpecRulesMatch(any=[kyverno.ClusterPolicySpecRulesMatchAny(
        resources=kyverno.ClusterPolicySpecRulesMatchAnyResources(kinds=["Pod"], namespaces=[namespace]))])


def attestors(props: SupplyChainProps, family: str, *, rescan: bool = False) -> list:
    """Who must have signed: the release pipeline's keyless identity (and, for vulnerability attestations,
    `rescan`, the scheduled re-scan's: either one suffices), or the holder of a cosign key.
    `family` names the imported classes (signatures and attestations have a family each)."""
    cls = lambda suffix: getattr(kyverno, family + suffix)  # noqa: E731
    if props.public_key:
        rekor = cls("EntriesKeysRekor")(url=props.rekor_url, ignore_tlog=None if props.transparency_log else True)
        # A key pair's signature carries no Fulcio certificate, so no SCT. Without ignoreSCT Kyverno still loads
        # the CT log keys from the public Sigstore TUF root for every key-based verification, which fails
        # offline (Kyverno v1.19.0 pkg/engine/internal/imageverifier.go: a keys attestor without ctlog sets
        # IgnoreSCT=false; found running its admission controller in tests/admission).
        ctlog = cls("EntriesKeysCtlog")(ignore_sct=True)
        entries = [cls("Entries")(keys=cls("EntriesKeys")(public_keys=props.public_key, rekor=rekor, ctlog=ctlog))]
    else:
        subjects = [props.keyless_subject] + ([props.rescan_subject] if rescan else [])
        entries = [cls("Entries")(keyless=cls("EntriesKeyless")(issuer=props.keyless_issuer, subject=subject,
                                                                rekor=cls("EntriesKeylessRekor")(url=props.rekor_url)))
                   for subject in subjects]
    return [cls("")(count=1, entries=entries)]


# Kyverno pattern anchors: =(field) checks the field only where it is present.
CONTAINER_LISTS = ("containers", "=(initContainers)", "=(ephemeralContainers)")


class KyvernoPolicies(Construct):
    """Two ClusterPolicies guarding one namespace: `verify-images` (signature, attestation, digest) and
    `image-references` (tags and registries). Both fail closed in the base (Enforce)."""

    def __init__(self, scope: Construct, id: str, *, props: SupplyChainProps, namespace: str) -> None:
        super().__init__(scope, id)
        self.verify_images_name = "verify-images"
        self.image_references_name = "image-references"
        labels = standard_labels("admission")
        enforce = kyverno.ClusterPolicySpecRulesVerifyImagesFailureAction.ENFORCE
        signature_attestors = attestors(props, "ClusterPolicySpecRulesVerifyImagesAttestors")
        scan_attestors = attestors(props, "ClusterPolicySpecRulesVerifyImagesAttestationsAttestors", rescan=True)
        audit = kyverno.ClusterPolicySpecRulesVerifyImagesFailureAction.AUDIT
        condition = kyverno.ClusterPolicySpecRulesVerifyImagesAttestationsConditionsAll
        operator = kyverno.ClusterPolicySpecRulesVerifyImagesAttestationsConditionsAllOperator
        max_age = f"{props.attestation_max_age_days * 24}h"
        blocked = props.blocked_severities
        kyverno.ClusterPolicy(
            self, "verify-images",
            metadata={"name": self.verify_images_name, "labels": labels, "annotations": {
                **wave(Wave.NAMESPACE),
                # Pods only: mutating a Deployment's template to a digest would leave Argo CD out of sync.
                AUTOGEN_CONTROLLERS: "none",
                "policies.kyverno.io/title": "Verify KubeChat image signatures and vulnerability attestations",
                "policies.kyverno.io/description": (
                    f"Images matching {', '.join(props.signed_images)} must be signed by the release pipeline, "
                    f"carry a vulnerability attestation (release or scheduled re-scan) without {'/'.join(blocked)} "
                    f"findings, and run by digest (enforced). A scan older than {props.attestation_max_age_days} "
                    "days is reported, never refused: an expired scan must not stop scale-ups or restarts."),
            }},
            spec=kyverno.ClusterPolicySpec(
                background=False, webhook_timeout_seconds=30,
                failure_policy=kyverno.ClusterPolicySpecFailurePolicy.FAIL,
                rules=[
                    kyverno.ClusterPolicySpecRules(
                        name="signed-and-scanned", match=pod_match(namespace),
                        verify_images=[kyverno.ClusterPolicySpecRulesVerifyImages(
                            image_references=list(props.signed_images), failure_action=enforce,
                            required=True, mutate_digest=True, verify_digest=True,
                            attestors=signature_attestors,
                            attestations=[kyverno.ClusterPolicySpecRulesVerifyImagesAttestations(
                                name="vulnerability-scan", predicate_type=VULN_PREDICATE, attestors=scan_attestors,
                                conditions=[kyverno.ClusterPolicySpecRulesVerifyImagesAttestationsConditions(all=[
                                    condition(key="{{ " + severity_count_query(blocked) + " }}", operator=operator.EQUALS,
                                              value=0, message=f"the vulnerability scan reports {'/'.join(blocked)} findings"),
                                ])])],
                        )]),
                    # Fail safe: the scan's age is audited (PolicyReports), in every environment.
                    kyverno.ClusterPolicySpecRules(
                        name="scan-fresh", match=pod_match(namespace),
                        verify_images=[kyverno.ClusterPolicySpecRulesVerifyImages(
                            # required: False. The validating step looks a `required` image's result up under
                            # its digest (Kyverno pkg/engine/handlers/validation/validate_image.go), which this
                            # Audit rule never rewrites to: it would report every tag-referenced pod unverified.
                            image_references=list(props.signed_images), failure_action=audit,
                            required=False, mutate_digest=False, verify_digest=False,
                            attestations=[kyverno.ClusterPolicySpecRulesVerifyImagesAttestations(
                                name="vulnerability-scan-age", predicate_type=VULN_PREDICATE, attestors=scan_attestors,
                                conditions=[kyverno.ClusterPolicySpecRulesVerifyImagesAttestationsConditions(all=[
                                    condition(key="{{ time_since('', '{{ metadata.scanFinishedOn }}', '') }}",
                                              # Kyverno compares duration strings as durations (168h vs 26h).
                                              operator=operator.LESS_THAN_OR_EQUALS, value=max_age,
                                              message=f"the vulnerability scan is older than "
                                                      f"{props.attestation_max_age_days} days: the re-scan did not run"),
                                ])])],
                        )]),
                ]))

        def containers_pattern(value: str) -> dict:
            return {"spec": {name: [{"image": value}] for name in CONTAINER_LISTS}}

        registries = " | ".join([f"{prefix}*" for prefix in props.allowed_registries] + list(props.allowed_images))
        kyverno.ClusterPolicy(
            self, "image-references",
            metadata={"name": self.image_references_name, "labels": labels, "annotations": {
                **wave(Wave.NAMESPACE),
                "policies.kyverno.io/title": "Pinned tags from allowed registries",
                "policies.kyverno.io/description": (
                    "Every image names a tag other than latest (or a digest) and comes from an allowed registry."),
            }},
            spec=kyverno.ClusterPolicySpec(
                background=True,
                rules=[
                    kyverno.ClusterPolicySpecRules(
                        name="require-tag", match=pod_match(namespace),
                        validate=kyverno.ClusterPolicySpecRulesValidate(
                            failure_action=kyverno.ClusterPolicySpecRulesValidateFailureAction.ENFORCE,
                            message="every image needs a tag or a digest: an untagged image floats like latest",
                            pattern=containers_pattern("*:*"))),
                    kyverno.ClusterPolicySpecRules(
                        name="disallow-latest", match=pod_match(namespace),
                        validate=kyverno.ClusterPolicySpecRulesValidate(
                            failure_action=kyverno.ClusterPolicySpecRulesValidateFailureAction.ENFORCE,
                            message="the tag 'latest' is not allowed: pin a version (and a digest in production)",
                            pattern=containers_pattern("!*:latest"))),
                    kyverno.ClusterPolicySpecRules(
                        name="allowed-registries", match=pod_match(namespace),
                        validate=kyverno.ClusterPolicySpecRulesValidate(
                            failure_action=kyverno.ClusterPolicySpecRulesValidateFailureAction.ENFORCE,
                            message=("images must be fully qualified and come from an allowed registry: "
                                     + ", ".join(props.allowed_registries + props.allowed_images)),
                            pattern=containers_pattern(registries))),
                ]))


# --- ValidatingAdmissionPolicies (CEL) ------------------------------------------------------------

# Ephemeral containers arrive through the subresource pods/ephemeralcontainers (kubectl debug), which a rule
# naming only "pods" does not match: both are listed, so every rule also sees a container added that way.
POD_RULES = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
              "resources": ["pods", "pods/ephemeralcontainers"]}]
ALL_CONTAINERS = ("object.spec.containers + "
                  "(has(object.spec.initContainers) ? object.spec.initContainers : []) + "
                  "(has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers : [])")
# Ephemeral containers have their own type: their images are listed separately (CEL lists are typed).
ALL_IMAGES = ("object.spec.containers.map(c, c.image) + "
              "(has(object.spec.initContainers) ? object.spec.initContainers.map(c, c.image) : []) + "
              "(has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers.map(c, c.image) : [])")
DIGEST = "@sha256:[0-9a-f]{64}$"
TAG = ":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"


def cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


class ValidatingPolicy(Construct):
    """One ValidatingAdmissionPolicy on Pods and its binding to the guarded namespace (Deny in the base)."""

    def __init__(self, scope: Construct, id: str, *, name: str, namespace: str, variables: list[dict],
                 validations: list[dict]) -> None:
        super().__init__(scope, id)
        self.name = name
        labels = standard_labels("admission")
        # cdk8s-plus-28's typed classes predate admissionregistration.k8s.io/v1 (GA in Kubernetes 1.30):
        # plain objects, checked by the schema gate against 1.30 and 1.37 and by the integration tests.
        policy = ApiObject(self, "policy", api_version="admissionregistration.k8s.io/v1",
                           kind="ValidatingAdmissionPolicy",
                           metadata={"name": name, "labels": labels, "annotations": wave(Wave.NAMESPACE)})
        policy.add_json_patch(JsonPatch.add("/spec", {
            "failurePolicy": "Fail", "matchConstraints": {"resourceRules": POD_RULES},
            "variables": variables, "validations": validations}))
        binding = ApiObject(self, "binding", api_version="admissionregistration.k8s.io/v1",
                            kind="ValidatingAdmissionPolicyBinding",
                            metadata={"name": name, "labels": labels, "annotations": wave(Wave.NAMESPACE)})
        binding.add_json_patch(JsonPatch.add("/spec", {
            "policyName": name, "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {GUARDED_NAMESPACE_LABEL: namespace}}}}))


class AdmissionPolicies(Construct):
    """The CEL rules every environment binds: image references and the restricted security context."""

    def __init__(self, scope: Construct, id: str, *, props: SupplyChainProps, namespace: str) -> None:
        super().__init__(scope, id)
        images = [{"name": "images", "expression": ALL_IMAGES}]
        self.image_references = ValidatingPolicy(
            self, "image-references", name="image-references", namespace=namespace,
            variables=images + [
                {"name": "floating", "expression":
                    f"variables.images.filter(i, !i.matches('{DIGEST}') && (!i.matches('{TAG}') || i.endsWith(':latest')))"},
                {"name": "foreign", "expression":
                    f"variables.images.filter(i, !{cel_list(props.allowed_registries)}.exists(p, i.startsWith(p)) && "
                    f"!(i in {cel_list(props.allowed_images)}))"},
            ],
            validations=[
                {"expression": "size(variables.floating) == 0", "reason": "Forbidden",
                 "messageExpression": "'image ' + variables.floating[0] + ' has no tag or uses latest: pin a version'"},
                {"expression": "size(variables.foreign) == 0", "reason": "Forbidden",
                 "messageExpression": "'image ' + variables.foreign[0] + ' is not from an allowed registry ("
                                      + ", ".join(props.allowed_registries) + ")'"},
            ])
        containers = [{"name": "containers", "expression": ALL_CONTAINERS}]
        self.security_context = ValidatingPolicy(
            self, "security-context", name="restricted-security-context", namespace=namespace,
            variables=containers + [
                {"name": "podNonRoot", "expression":
                    "has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot) && "
                    "object.spec.securityContext.runAsNonRoot == true"},
                {"name": "podSeccomp", "expression":
                    "has(object.spec.securityContext) && has(object.spec.securityContext.seccompProfile) && "
                    "object.spec.securityContext.seccompProfile.type in ['RuntimeDefault', 'Localhost']"},
            ],
            # No separate "privileged" rule: the API server refuses privileged: true together with
            # allowPrivilegeEscalation: false, so the first rule refuses every privileged container.
            validations=[
                {"expression": "variables.containers.all(c, has(c.securityContext) && "
                               "has(c.securityContext.allowPrivilegeEscalation) && "
                               "c.securityContext.allowPrivilegeEscalation == false)",
                 "reason": "Forbidden",
                 "messageExpression": "'container ' + variables.containers.filter(c, !has(c.securityContext) || "
                                      "!has(c.securityContext.allowPrivilegeEscalation) || "
                                      "c.securityContext.allowPrivilegeEscalation != false)[0].name + "
                                      "' must set securityContext.allowPrivilegeEscalation: false'"},
                {"expression": "variables.containers.all(c, has(c.securityContext) && "
                               "has(c.securityContext.capabilities) && has(c.securityContext.capabilities.drop) && "
                               "'ALL' in c.securityContext.capabilities.drop)",
                 "reason": "Forbidden",
                 "messageExpression": "'container ' + variables.containers.filter(c, !has(c.securityContext) || "
                                      "!has(c.securityContext.capabilities) || "
                                      "!has(c.securityContext.capabilities.drop) || "
                                      "!('ALL' in c.securityContext.capabilities.drop))[0].name + "
                                      "' must drop ALL capabilities'"},
                {"expression": "variables.podNonRoot || variables.containers.all(c, has(c.securityContext) && "
                               "has(c.securityContext.runAsNonRoot) && c.securityContext.runAsNonRoot == true)",
                 "reason": "Forbidden", "message": "runAsNonRoot: true is required (pod or every container)"},
                {"expression": "variables.podSeccomp || variables.containers.all(c, has(c.securityContext) && "
                               "has(c.securityContext.seccompProfile) && "
                               "c.securityContext.seccompProfile.type in ['RuntimeDefault', 'Localhost'])",
                 "reason": "Forbidden",
                 "message": "seccompProfile RuntimeDefault or Localhost is required (pod or every container)"},
                # The rest of what Pod Security's baseline and restricted levels refuse that KubeChat's pods
                # never need (k8s.io/pod-security-admission policy/check_hostNamespaces.go, check_hostPathVolumes.go,
                # check_capabilities_restricted.go, check_hostPorts.go).
                {"expression": "!(has(object.spec.hostNetwork) && object.spec.hostNetwork) && "
                               "!(has(object.spec.hostPID) && object.spec.hostPID) && "
                               "!(has(object.spec.hostIPC) && object.spec.hostIPC)",
                 "reason": "Forbidden", "message": "host namespaces (hostNetwork, hostPID, hostIPC) are not allowed"},
                {"expression": "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))",
                 "reason": "Forbidden", "message": "hostPath volumes are not allowed"},
                {"expression": "variables.containers.all(c, !has(c.securityContext) || "
                               "!has(c.securityContext.capabilities) || !has(c.securityContext.capabilities.add) || "
                               "c.securityContext.capabilities.add.all(a, a == 'NET_BIND_SERVICE'))",
                 "reason": "Forbidden", "message": "no capability may be added but NET_BIND_SERVICE"},
                {"expression": "variables.containers.all(c, !has(c.ports) || "
                               "c.ports.all(p, !has(p.hostPort) || p.hostPort == 0))",
                 "reason": "Forbidden", "message": "hostPort is not allowed"},
            ])


class ImageDigestPolicy(Construct):
    """Images under `digest_required_images` must run by digest (the component image-digests: production)."""

    def __init__(self, scope: Construct, id: str, *, props: SupplyChainProps, namespace: str) -> None:
        super().__init__(scope, id)
        self.policy = ValidatingPolicy(
            self, "image-digests", name="image-digests", namespace=namespace,
            variables=[{"name": "images", "expression": ALL_IMAGES},
                       {"name": "undigested", "expression":
                           f"variables.images.filter(i, {cel_list(props.digest_required_images)}"
                           f".exists(p, i.startsWith(p)) && !i.matches('{DIGEST}'))"}],
            validations=[{"expression": "size(variables.undigested) == 0", "reason": "Forbidden",
                          "messageExpression": "'image ' + variables.undigested[0] + ' must be pinned by digest "
                                               "(@sha256:...) in this environment'"}])
