"""RBAC for the API's ServiceAccount: read-only access to what KubeChat inspects, cluster-wide, and
a separate write grant that is bound only where a Kustomize component opts in. Every rule is
justified in docs/security.md; tests evaluate these rules (no secrets, no wildcards, no escalation)."""
from __future__ import annotations

from cdk8s_plus_28 import k8s
from constructs import Construct

from .api import KubeChatApi
from .labels import standard_labels
from .sync import Wave, wave

# (API group, resources): what users ask KubeChat about. Never secrets: KubeChat shows workloads, not credentials.
READ_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("pods", "pods/log", "events", "services", "endpoints", "configmaps", "namespaces", "nodes")),
    ("apps", ("deployments", "replicasets", "statefulsets", "daemonsets")),
    ("batch", ("jobs", "cronjobs")),
    ("networking.k8s.io", ("ingresses",)),
    ("autoscaling", ("horizontalpodautoscalers",)),
    ("events.k8s.io", ("events",)),
)
READ_VERBS = ("get", "list", "watch")

# The opt-in write actions: scale, restart a rollout (a patch of the pod template), delete a pod.
WRITE_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("apps", ("deployments", "statefulsets"), ("get", "patch")),
    ("apps", ("deployments/scale", "statefulsets/scale"), ("get", "update", "patch")),
    ("", ("pods",), ("delete",)),
)


class ApiRbac(Construct):
    def __init__(self, scope: Construct, id: str, *, api: KubeChatApi) -> None:
        super().__init__(scope, id)
        labels = standard_labels("api")
        # Cluster-scoped: each overlay prefixes these with its namespace (overlays/<env>/environment.yaml).
        self.read_role_name = "api-read"
        self.write_role_name = "api-write"
        """ClusterRole the api-write-access component binds in each opted-in namespace (RoleBinding)."""
        k8s.KubeClusterRole(self, "read", metadata=k8s.ObjectMeta(name=self.read_role_name, labels=labels, annotations=wave(Wave.NAMESPACE)),
                            rules=[k8s.PolicyRule(api_groups=[group], resources=list(resources), verbs=list(READ_VERBS))
                                   for group, resources in READ_RULES])
        # Subjects carry no namespace: each overlay's namespace transformer sets the environment's.
        k8s.KubeClusterRoleBinding(
            self, "read-binding", metadata=k8s.ObjectMeta(name=self.read_role_name, labels=labels, annotations=wave(Wave.NAMESPACE)),
            role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=self.read_role_name),
            subjects=[k8s.Subject(kind="ServiceAccount", name=api.service_account_name)])
        k8s.KubeClusterRole(self, "write", metadata=k8s.ObjectMeta(name=self.write_role_name, labels=labels, annotations=wave(Wave.NAMESPACE)),
                            rules=[k8s.PolicyRule(api_groups=[group], resources=list(resources), verbs=list(verbs))
                                   for group, resources, verbs in WRITE_RULES])
