"""The Kubernetes recommended labels. Selectors use only name, instance and component: selectors
are immutable, and the version label changes with every release (each environment's release VERSION
sets it: environment.py)."""
from __future__ import annotations

VERSION_LABEL = "app.kubernetes.io/version"
PART_OF = "kubechat"
MANAGED_BY = "kubechat-deploy"


def selector_labels(component: str, *, name: str = "kubechat", instance: str = "kubechat") -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
    }


def standard_labels(component: str, *, name: str = "kubechat", instance: str = "kubechat") -> dict[str, str]:
    return {
        **selector_labels(component, name=name, instance=instance),
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


RELOAD = "secret.reloader.stakater.com/reload"
"""Stakater Reloader (a platform prerequisite) rolls a workload with this annotation when one of the named
Secrets changes (External Secrets' rotation in staging and production)."""
