"""What each environment's overlay must mean, read from the committed render."""
import re

import pytest

from conftest import find
from kubechat_tools.gates import pod_template

NAMESPACES = {"dev": "kubechat-dev", "staging": "kubechat-staging", "production": "kubechat-production"}


def images(docs):
    for doc in docs:
        template = pod_template(doc)
        if template:
            spec = template["spec"]
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                yield doc, c["image"]


@pytest.mark.parametrize("env", NAMESPACES)
def test_environment_lives_in_its_own_restricted_namespace(rendered, env):
    docs = rendered[env]
    namespace = find(docs, "Namespace", NAMESPACES[env])
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
    stray = [f"{d['kind']}/{d['metadata']['name']}" for d in docs
             if d["kind"] != "Namespace" and d["metadata"].get("namespace") != NAMESPACES[env]]
    assert stray == [], f"resources outside {NAMESPACES[env]}: {stray}"


def test_production_pins_every_image_by_digest(rendered):
    for doc, image in images(rendered["production"]):
        assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"{doc['kind']}/{doc['metadata']['name']}: {image}"


@pytest.mark.parametrize("env", NAMESPACES)
def test_no_image_is_untagged_or_latest(rendered, env):
    for doc, image in images(rendered[env]):
        name = image.split("@")[0]
        assert ":" in name.rsplit("/", 1)[-1] and not name.endswith(":latest"), f"{env}: {image}"


@pytest.mark.parametrize("env", NAMESPACES)
def test_version_label_matches_the_api_image_tag(rendered, env):
    deployment = find(rendered[env], "Deployment", "kubechat-api")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    tag = image.split("@")[0].rsplit(":", 1)[1]
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == tag
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == tag
    assert "app.kubernetes.io/version" not in deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("env, replicas, log_level", [("dev", 1, "debug"), ("staging", 2, "info"),
                                                     ("production", 3, "info")])
def test_environment_settings(rendered, env, replicas, log_level):
    assert find(rendered[env], "Deployment", "kubechat-api")["spec"]["replicas"] == replicas
    config = find(rendered[env], "ConfigMap", "kubechat-api-config")["data"]
    assert config == {**config, "KUBECHAT_ENVIRONMENT": env, "LOG_LEVEL": log_level}


@pytest.mark.parametrize("env", NAMESPACES)
def test_api_probes_hit_the_contract_endpoints_on_a_declared_port(rendered, env):
    container = find(rendered[env], "Deployment", "kubechat-api")["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    expected = {"startupProbe": "/health/startup", "livenessProbe": "/health/live", "readinessProbe": "/health/ready"}
    for probe, path in expected.items():
        action = container[probe]["httpGet"]
        assert action["path"] == path and action["port"] in ports, f"{probe}: {action}"
    assert ports == {"http": 8080, "metrics": 9090}
