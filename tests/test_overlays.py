"""What each environment's overlay must mean, read from the committed render."""
import re

import pytest

from conftest import find
from kubechat_tools.gates import pod_template

NAMESPACES = {"dev": "kubechat-dev", "staging": "kubechat-staging", "production": "kubechat-production"}
from kubechat_deploy.delivery.argocd import CLUSTER_SCOPED_KINDS  # noqa: E402

CLUSTER_SCOPED = {kind for _, kind in CLUSTER_SCOPED_KINDS}


def images(docs):
    for doc in docs:
        template = pod_template(doc)
        if template:
            spec = template["spec"]
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                yield doc, c["image"]


def generated(docs, kind, name):
    """A Kustomize-generated object: its name carries a content-hash suffix."""
    matches = [d for d in docs if d["kind"] == kind and re.fullmatch(rf"{name}-[a-z0-9]{{10}}", d["metadata"]["name"])]
    assert len(matches) == 1, f"expected one generated {kind} {name}-<hash>, found {len(matches)}"
    return matches[0]


@pytest.mark.parametrize("env", NAMESPACES)
def test_environment_lives_in_its_own_restricted_namespace(rendered, env):
    docs = rendered[env]
    namespace = find(docs, "Namespace", NAMESPACES[env])
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
    stray = [f"{d['kind']}/{d['metadata']['name']}" for d in docs
             if d["kind"] not in CLUSTER_SCOPED and d["metadata"].get("namespace") != NAMESPACES[env]]
    assert stray == [], f"resources outside {NAMESPACES[env]}: {stray}"


@pytest.mark.parametrize("env", NAMESPACES)
def test_cluster_scoped_names_carry_the_environment(rendered, env):
    for doc in rendered[env]:
        if doc["kind"] in CLUSTER_SCOPED - {"Namespace"}:
            assert doc["metadata"]["name"].startswith(NAMESPACES[env] + "-"), doc["metadata"]["name"]
        if doc["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in doc["metadata"], f"cluster-scoped {doc['kind']} has a namespace"


@pytest.mark.parametrize("env", NAMESPACES)
def test_namespace_has_quota_and_limit_range(rendered, env):
    quota = find(rendered[env], "ResourceQuota", "kubechat-quota")["spec"]["hard"]
    assert {"requests.cpu", "requests.memory", "limits.memory", "requests.storage", "pods"} <= quota.keys()
    assert "limits.cpu" not in quota, "a CPU-limit quota would force CPU limits onto the database pods"
    limits = find(rendered[env], "LimitRange", "kubechat-limits")["spec"]["limits"][0]
    assert limits["type"] == "Container" and "defaultRequest" in limits
    assert set(limits["default"]) == {"memory"}


def test_production_pins_kubechat_images_by_digest_once_released():
    """The release writes the digests (none is committed: tests/test_site_values.py); every KubeChat image
    of the released production render carries one. Third-party images are pinned to exact versions
    (lint-exceptions.yaml says why not digests yet)."""
    from kubechat_tools.release import released_render, stand_in_digests

    released = released_render("production", "1.0.0", stand_in_digests())
    assert [i for _, i in images(released) if i.startswith("ghcr.io/kubechat/")], "no KubeChat image in production"
    for doc, image in images(released):
        if not image.startswith("ghcr.io/kubechat/"):
            continue
        assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"{doc['kind']}/{doc['metadata']['name']}: {image}"


@pytest.mark.parametrize("env", NAMESPACES)
def test_no_image_is_untagged_or_latest(rendered, env):
    for doc, image in images(rendered[env]):
        name = image.split("@")[0]
        assert ":" in name.rsplit("/", 1)[-1] and not name.endswith(":latest"), f"{env}: {image}"


@pytest.mark.parametrize("env", NAMESPACES)
@pytest.mark.parametrize("workload", ["kubechat-api", "kubechat-web"])
def test_version_label_matches_the_image_tag(rendered, env, workload):
    deployment = find(rendered[env], "Deployment", workload)
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    tag = image.split("@")[0].rsplit(":", 1)[1]
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == tag
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == tag
    assert "app.kubernetes.io/version" not in deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("env, log_level", [("dev", "debug"), ("staging", "info"), ("production", "info")])
def test_api_configuration_per_environment_rolls_pods_on_change(rendered, env, log_level):
    config = generated(rendered[env], "ConfigMap", "kubechat-api-config")
    assert config["data"]["KUBECHAT_ENVIRONMENT"] == env and config["data"]["LOG_LEVEL"] == log_level
    assert set(config["data"]) >= {"CORS_ALLOWED_ORIGINS", "LOG_LEVEL", "KUBECHAT_ENVIRONMENT"}
    assert any(k.startswith("FEATURE_") for k in config["data"])
    # The hashed name is what the Deployment references: new settings mean a new pod template.
    env_from = find(rendered[env], "Deployment", "kubechat-api")["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"configMapRef": {"name": config["metadata"]["name"]}} in env_from


def test_all_environments_set_the_same_configuration_keys(rendered):
    keys = {env: set(generated(docs, "ConfigMap", "kubechat-api-config")["data"]) for env, docs in rendered.items()}
    assert keys["dev"] == keys["staging"] == keys["production"], keys


@pytest.mark.parametrize("env", NAMESPACES)
def test_an_overlay_holds_only_values(env):
    """18.7: what makes the base an environment (namespace, cluster-scoped names, guarded namespace, the
    version label's field list) is generated once for all environments (constructs/kubechat_deploy/
    environment.py into dist/environments/<env>); an environment's folder holds no transformer
    configuration and no label field list, only its values and the patches that carry them."""
    import yaml

    from kubechat_tools.paths import DIST, OVERLAYS

    folder = OVERLAYS / env
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert not (isinstance(doc, dict) and doc.get("apiVersion") == "builtin"), f"{path.name}: a transformer"
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert "labels" not in kustomization and "commonLabels" not in kustomization
    assert kustomization["transformers"] == [f"../../dist/environments/{env}"]
    assert (DIST / "environments" / env / "transformers.yaml").is_file()


@pytest.mark.parametrize("env", NAMESPACES)
def test_the_version_label_never_reaches_a_volume_claim_template(rendered, env):
    """A StatefulSet's volumeClaimTemplates are immutable: a version label there would make every release
    unable to patch the StatefulSet."""
    for doc in rendered[env]:
        for claim in (doc.get("spec") or {}).get("volumeClaimTemplates", []) if doc["kind"] == "StatefulSet" else []:
            assert "app.kubernetes.io/version" not in (claim["metadata"].get("labels") or {}), doc["metadata"]["name"]
    assert any(doc["kind"] == "StatefulSet" and doc["spec"].get("volumeClaimTemplates") for doc in rendered[env])


@pytest.mark.parametrize("env", ["staging", "production"])
def test_a_release_leaves_the_cache_pod_template_unchanged(env):
    """#26.3: a release changes VERSION; the cache's one pod must not restart for it (a changed pod template is
    a rollout). Two releases rendered as the release command writes them: the StatefulSet's pod template is
    byte-for-byte the same, while the API's changes (its version label), so the check can see a difference."""
    import yaml

    from kubechat_tools.release import released_render, stand_in_digests

    first, second = (released_render(env, version, stand_in_digests()) for version in ("1.0.0", "1.1.0"))
    cache = [yaml.safe_dump(find(docs, "StatefulSet", "kubechat-redis")["spec"]["template"]) for docs in (first, second)]
    assert cache[0] == cache[1]
    api = [find(docs, "Deployment", "kubechat-api")["spec"]["template"]["metadata"]["labels"] for docs in (first, second)]
    assert api[0]["app.kubernetes.io/version"] == "1.0.0" and api[1]["app.kubernetes.io/version"] == "1.1.0"
    # The StatefulSet itself still carries the version (a label on the object rolls nothing).
    assert find(second, "StatefulSet", "kubechat-redis")["metadata"]["labels"]["app.kubernetes.io/version"] == "1.1.0"
