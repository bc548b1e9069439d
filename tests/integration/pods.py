"""Pods for admission tests: `compliant_pod` passes every rule; tests break one thing at a time."""
from __future__ import annotations

import copy

import yaml

GOOD_IMAGE = "docker.io/valkey/valkey:8.1.4-alpine"


def compliant_pod(namespace: str, image: str = GOOD_IMAGE, name: str = "admission-probe") -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": image,
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "16Mi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


def with_container(pod: dict, **changes) -> dict:
    pod = copy.deepcopy(pod)
    pod["spec"]["containers"][0].update(changes)
    return pod


def create_dry_run(plane, doc: dict):
    return plane.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(doc), check=False)


def pod_from_template(owner: dict) -> dict:
    """The Pod a controller would create from `owner`'s pod template."""
    spec = owner["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if owner["kind"] == "CronJob" else spec["template"]
    metadata = owner["metadata"]
    pod_spec = copy.deepcopy(template["spec"])
    for claim in spec.get("volumeClaimTemplates", []):  # as the StatefulSet controller adds them
        name = claim["metadata"]["name"]
        pod_spec.setdefault("volumes", []).append(
            {"name": name, "persistentVolumeClaim": {"claimName": f"{name}-{metadata['name']}-0"}})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{owner['kind'].lower()}-{metadata['name']}"[:63].rstrip("-"),
                         "namespace": metadata["namespace"], "labels": template.get("metadata", {}).get("labels", {})},
            "spec": pod_spec}
