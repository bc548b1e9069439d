"""GIVEN a real control plane with the pinned CRDs, WHEN every environment's render is server-side applied,
THEN the API server accepts it without warnings, and Pod Security admission and the
ValidatingAdmissionPolicies admit every pod KubeChat renders and refuse the bad ones."""
from __future__ import annotations

import pytest

from kubechat_tools.paths import ENVIRONMENTS

from .pods import compliant_pod, create_dry_run, pod_from_template, with_container

pytestmark = pytest.mark.integration

POD_OWNERS = ("Deployment", "StatefulSet", "Job", "CronJob")
ENFORCING = ("staging", "production")


def namespace(env: str) -> str:
    return f"kubechat-{env}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_applies_without_error_or_warning(applied, cluster, rendered_envs, env):
    assert applied[env] == [], f"{env}: the API server warned:\n" + "\n".join(applied[env])
    # every object is really there, with the names the render gives it
    for doc in rendered_envs[env]:
        scope = ["-n", doc["metadata"]["namespace"]] if "namespace" in doc["metadata"] else []
        kind = doc["kind"] + "." + doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else doc["kind"]
        cluster.kubectl("get", kind, doc["metadata"]["name"], *scope, "-o", "name")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_rendered_pod_template_is_admitted(applied, cluster, rendered_envs, env):
    owners = [d for d in rendered_envs[env] if d["kind"] in POD_OWNERS]
    assert len(owners) >= 6, f"{env}: expected the API, web, cache, migration, smoke test and backup jobs"
    for owner in owners:
        result = create_dry_run(cluster, pod_from_template(owner))
        assert result.returncode == 0, f"{env}: {owner['kind']}/{owner['metadata']['name']} refused:\n{result.stderr}"
        assert "arning" not in result.stderr, f"{env}: {owner['kind']}/{owner['metadata']['name']}: {result.stderr}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pod_security_admission_refuses_a_privileged_pod(applied, cluster, env):
    pod = with_container(compliant_pod(namespace(env)), securityContext={"privileged": True})
    result = create_dry_run(cluster, pod)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in result.stderr and "privileged" in result.stderr


def test_pod_security_admission_admits_the_probe_pod(applied, cluster):
    """The bad pods below differ from this one by one field each."""
    result = create_dry_run(cluster, compliant_pod("kubechat-production"))
    assert result.returncode == 0, result.stderr


BAD_IMAGES = [
    # (KubeChat's own images would meet production's digest rule first: third-party ones show this rule)
    ("docker.io/valkey/valkey:latest", "has no tag or uses latest"),
    ("docker.io/valkey/valkey", "has no tag or uses latest"),
    ("quay.io/someone/tool:1.0", "is not from an allowed registry"),
    ("valkey/valkey:8.1.4-alpine", "is not from an allowed registry"),  # short names resolve who knows where
]


@pytest.mark.parametrize("env", ENFORCING)
@pytest.mark.parametrize("image,message", BAD_IMAGES)
def test_image_policy_refuses_floating_and_foreign_images(applied, cluster, env, image, message):
    result = create_dry_run(cluster, compliant_pod(namespace(env), image))
    assert result.returncode != 0, f"{env}: {image} was admitted"
    assert f"image {image} {message}" in result.stderr
    assert f"kubechat-{env}-image-references" in result.stderr


def test_image_policy_only_warns_in_dev(applied, cluster):
    result = create_dry_run(cluster, compliant_pod("kubechat-dev", "ghcr.io/kubechat/kubechat-api:latest"))
    assert result.returncode == 0, result.stderr
    assert "image ghcr.io/kubechat/kubechat-api:latest has no tag or uses latest" in result.stderr
    assert "Warning" in result.stderr


def test_production_requires_digests_for_kubechat_images_staging_does_not(applied, cluster):
    image = "ghcr.io/kubechat/kubechat-api:1.0.0"
    production = create_dry_run(cluster, compliant_pod("kubechat-production", image))
    assert production.returncode != 0
    assert f"image {image} must be pinned by digest" in production.stderr
    pinned = image + "@sha256:" + "a" * 64
    assert create_dry_run(cluster, compliant_pod("kubechat-production", pinned)).returncode == 0
    assert create_dry_run(cluster, compliant_pod("kubechat-staging", image)).returncode == 0


BAD_CONTEXTS = [
    ({"allowPrivilegeEscalation": True, "capabilities": {"drop": ["ALL"]}},
     "container main must set securityContext.allowPrivilegeEscalation: false"),
    ({"allowPrivilegeEscalation": False}, "container main must drop ALL capabilities"),
    ({"capabilities": {"drop": ["ALL"]}}, "container main must set securityContext.allowPrivilegeEscalation: false"),
    # privileged implies escalation (the API server refuses privileged with allowPrivilegeEscalation: false)
    ({"capabilities": {"drop": ["ALL"]}, "privileged": True},
     "container main must set securityContext.allowPrivilegeEscalation: false"),
]


@pytest.mark.parametrize("security_context,message", BAD_CONTEXTS)
def test_security_context_policy_holds_when_pod_security_labels_are_weakened(applied, cluster, security_context,
                                                                             message):
    """Defense in depth: with the namespace's Pod Security label lowered to privileged (a mistake or an
    attacker with namespace-patch rights), the CEL policy still refuses what "restricted" would."""
    ns = "kubechat-staging"
    cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")
    try:
        result = create_dry_run(cluster, with_container(compliant_pod(ns), securityContext=security_context))
    finally:
        cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    assert result.returncode != 0, f"admitted: {security_context}"
    assert message in result.stderr
    assert "kubechat-staging-restricted-security-context" in result.stderr


def test_security_context_policy_requires_non_root_and_seccomp(applied, cluster):
    ns = "kubechat-production"
    cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")
    try:
        no_non_root = compliant_pod(ns)
        del no_non_root["spec"]["securityContext"]["runAsNonRoot"]
        no_seccomp = compliant_pod(ns)
        del no_seccomp["spec"]["securityContext"]["seccompProfile"]
        results = [create_dry_run(cluster, no_non_root), create_dry_run(cluster, no_seccomp)]
    finally:
        cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    assert results[0].returncode != 0 and "runAsNonRoot: true is required" in results[0].stderr
    assert results[1].returncode != 0 and "seccompProfile RuntimeDefault or Localhost is required" in results[1].stderr


def acme_solver_pod(namespace: str, image: str) -> dict:
    """The HTTP-01 solver pod as cert-manager v1.21.1 builds it (pkg/issuer/acme/http/pod.go, buildDefaultPod:
    labels acme.cert-manager.io/http01-solver=true, runAsNonRoot, RuntimeDefault seccomp, read-only root,
    no escalation, capabilities dropped, requests 10m/64Mi, limits 100m/64Mi, port 8089)."""
    from kubechat_deploy.versions import ACME_HTTP01_SOLVER_LABEL, ACME_HTTP01_SOLVER_PORT

    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "cm-acme-http-solver-", "namespace": namespace,
                         "labels": {ACME_HTTP01_SOLVER_LABEL: "true", "acme.cert-manager.io/http-domain": "1",
                                    "acme.cert-manager.io/http-token": "1"}},
            "spec": {"automountServiceAccountToken": False, "restartPolicy": "OnFailure", "enableServiceLinks": False,
                     "nodeSelector": {"kubernetes.io/os": "linux"},
                     "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{
                         "name": "acmesolver", "image": image, "imagePullPolicy": "IfNotPresent",
                         "args": [f"--listen-port={ACME_HTTP01_SOLVER_PORT}", "--domain=kubechat.example.com",
                                  "--token=t", "--key=k"],
                         "resources": {"requests": {"cpu": "10m", "memory": "64Mi"},
                                       "limits": {"cpu": "100m", "memory": "64Mi"}},
                         "ports": [{"name": "http", "containerPort": ACME_HTTP01_SOLVER_PORT}],
                         "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                             "capabilities": {"drop": ["ALL"]}}}]}}


@pytest.mark.parametrize("env", ENFORCING)
def test_the_pinned_acme_solver_is_admitted_and_no_other(applied, cluster, env):
    """cert-manager can issue the Certificate: its HTTP-01 solver pod passes Pod Security and the CEL
    policies; a solver of another version, or another quay.io image, is still refused."""
    from kubechat_deploy.versions import ACME_HTTP01_SOLVER_IMAGE

    result = create_dry_run(cluster, acme_solver_pod(namespace(env), ACME_HTTP01_SOLVER_IMAGE))
    assert result.returncode == 0, result.stderr
    for other in ("quay.io/jetstack/cert-manager-acmesolver:v1.20.0", "quay.io/jetstack/cert-manager-controller:v1.21.1"):
        result = create_dry_run(cluster, acme_solver_pod(namespace(env), other))
        assert result.returncode != 0 and f"image {other} is not from an allowed registry" in result.stderr, other


def with_pod(pod: dict, **changes) -> dict:
    import copy

    pod = copy.deepcopy(pod)
    pod["spec"].update(changes)
    return pod


HOST_ACCESS = {
    # #31.5: what docs/security.md says the fallback repeats of Pod Security, each alone.
    "hostNetwork": (lambda p: with_pod(p, hostNetwork=True), "host namespaces (hostNetwork, hostPID, hostIPC) are not allowed"),
    "hostPID": (lambda p: with_pod(p, hostPID=True), "host namespaces (hostNetwork, hostPID, hostIPC) are not allowed"),
    "hostIPC": (lambda p: with_pod(p, hostIPC=True), "host namespaces (hostNetwork, hostPID, hostIPC) are not allowed"),
    "hostPath": (lambda p: with_pod(p, volumes=[{"name": "root", "hostPath": {"path": "/"}}]),
                 "hostPath volumes are not allowed"),
    "an added capability": (lambda p: with_container(p, securityContext={
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}),
        "no capability may be added but NET_BIND_SERVICE"),
    "hostPort": (lambda p: with_container(p, ports=[{"containerPort": 8080, "hostPort": 8080}]), "hostPort is not allowed"),
}


@pytest.mark.parametrize("access", HOST_ACCESS)
def test_security_context_policy_refuses_host_access_when_pod_security_labels_are_weakened(applied, cluster, access):
    ns = "kubechat-staging"
    change, message = HOST_ACCESS[access]
    cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")
    try:
        result = create_dry_run(cluster, change(compliant_pod(ns)))
        allowed = create_dry_run(cluster, with_container(compliant_pod(ns), securityContext={
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}))
    finally:
        cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    assert result.returncode != 0, f"admitted: {access}"
    assert message in result.stderr and "kubechat-staging-restricted-security-context" in result.stderr, result.stderr
    assert allowed.returncode == 0, allowed.stderr


def test_an_ephemeral_container_is_held_to_the_same_rules(applied, cluster):
    """`kubectl debug` adds a container through the pods/ephemeralcontainers subresource: with the namespace's
    Pod Security label lowered, the CEL policies still refuse one without the restricted security context or
    with a floating image, and admit a compliant one."""
    import json

    ns = "kubechat-production"
    pod = compliant_pod(ns, name="ephemeral-probe")
    cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")
    try:
        cluster.kubectl("create", "-f", "-", input=__import__("yaml").safe_dump(pod))
        debug = {"name": "debug", "image": pod["spec"]["containers"][0]["image"], "stdin": True, "tty": True}

        def add(container: dict):
            patch = {"spec": {"ephemeralContainers": [container]}}
            return cluster.kubectl("-n", ns, "patch", "pod", "ephemeral-probe", "--subresource=ephemeralcontainers",
                                   "--type=strategic", "-p", json.dumps(patch), check=False)

        bare = add(debug)
        floating = add({**debug, "name": "debug2", "image": "docker.io/valkey/valkey:latest",
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}})
        compliant = add({**debug, "name": "debug3", "securityContext": {"allowPrivilegeEscalation": False,
                                                                          "capabilities": {"drop": ["ALL"]}}})
    finally:
        cluster.kubectl("-n", ns, "delete", "pod", "ephemeral-probe", "--wait=false", check=False)
        cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    assert bare.returncode != 0 and "container debug must set securityContext.allowPrivilegeEscalation: false" in bare.stderr, bare.stderr
    assert floating.returncode != 0 and "has no tag or uses latest" in floating.stderr, floating.stderr
    assert compliant.returncode == 0, compliant.stderr
