"""RBAC for the API's ServiceAccount: read-only access to what KubeChat inspects, in the namespaces an
environment lists (its own always; others by a RoleBinding each in overlays/<env>/api-read-access.yaml;
every namespace only with the opt-in component api-read-cluster-wide), the cluster-scoped Namespaces and
Nodes everywhere, and a separate write grant bound only where a Kustomize component opts in. Every rule
is justified in docs/security.md; tests evaluate these rules (no secrets, no wildcards, no escalation)."""
from __future__ import annotations

from cdk8s import ApiObject, JsonPatch
from cdk8s_plus_28 import k8s
from constructs import Construct

from kubechat_deploy.app.api import KubeChatApi
from kubechat_deploy.labels import standard_labels
from kubechat_deploy.delivery.sync import Wave, wave

# (API group, resources): what users ask KubeChat about, inside a namespace. Never secrets: KubeChat shows
# workloads, not credentials. ConfigMaps and pod logs can hold sensitive data, hence the namespace scope.
READ_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("pods", "pods/log", "events", "services", "endpoints", "configmaps")),
    ("apps", ("deployments", "replicasets", "statefulsets", "daemonsets")),
    ("batch", ("jobs", "cronjobs")),
    ("networking.k8s.io", ("ingresses",)),
    ("autoscaling", ("horizontalpodautoscalers",)),
    ("events.k8s.io", ("events",)),
)
CLUSTER_READ_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (("", ("namespaces", "nodes")),)
"""Cluster-scoped, so only a ClusterRoleBinding can grant them: which namespaces and nodes exist (names,
labels, conditions, capacity), no workload data."""
READ_VERBS = ("get", "list", "watch")

# The opt-in write actions: scale, restart a rollout (a patch of the pod template), delete a pod. RBAC cannot say
# which fields a patch may touch, and a changed pod template could mount any Secret of the namespace or run as
# any of its ServiceAccounts: the ValidatingAdmissionPolicy below lets the API's patches change only the
# restart annotation (what `kubectl rollout restart` sets) and the replica count.
RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
API_WRITE_LIMITS = "api-write-limits"
"""The policy's name (each environment prefixes it); its binding is the one not limited to the environment's namespace."""
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
        meta = lambda name: k8s.ObjectMeta(name=name, labels=labels, annotations=wave(Wave.NAMESPACE))  # noqa: E731
        subjects = [k8s.Subject(kind="ServiceAccount", name=api.service_account_name)]
        rules = lambda table: [k8s.PolicyRule(api_groups=[group], resources=list(resources), verbs=list(READ_VERBS))  # noqa: E731
                               for group, resources in table]
        # Bound per namespace (a RoleBinding grants a ClusterRole's rules inside that namespace only).
        k8s.KubeClusterRole(self, "read", metadata=meta(self.read_role_name), rules=rules(READ_RULES))
        # The environment's own namespace. Subjects and this binding carry no namespace: each overlay's
        # namespace transformer sets the environment's.
        k8s.KubeRoleBinding(self, "read-own-namespace", metadata=meta("kubechat-api-read"),
                            role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                                 name=self.read_role_name),
                            subjects=subjects)
        k8s.KubeClusterRole(self, "read-cluster", metadata=meta(f"{self.read_role_name}-cluster"),
                            rules=rules(CLUSTER_READ_RULES))
        k8s.KubeClusterRoleBinding(
            self, "read-cluster-binding", metadata=meta(f"{self.read_role_name}-cluster"),
            role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=f"{self.read_role_name}-cluster"),
            subjects=subjects)
        k8s.KubeClusterRole(self, "write", metadata=k8s.ObjectMeta(name=self.write_role_name, labels=labels, annotations=wave(Wave.NAMESPACE)),
                            rules=[k8s.PolicyRule(api_groups=[group], resources=list(resources), verbs=list(verbs))
                                   for group, resources, verbs in WRITE_RULES])
        self.write_limits_name = API_WRITE_LIMITS
        write_limits(self, self.write_limits_name, service_account=api.service_account_name, labels=labels)


def _unchanged(path: str) -> str:
    """CEL: the field at `path` (below object/oldObject) is as it was, present or absent alike (has() guards a
    field the other kind has not: one policy matches Deployments and StatefulSets)."""
    return (f"(has(object.{path}) == has(oldObject.{path})) && "
            f"(!has(object.{path}) || object.{path} == oldObject.{path})")


WRITE_LIMITED_SPEC_FIELDS = ("replicas", "selector", "strategy", "minReadySeconds", "paused", "progressDeadlineSeconds",
                             "revisionHistoryLimit", "updateStrategy", "podManagementPolicy", "serviceName",
                             "volumeClaimTemplates", "persistentVolumeClaimRetentionPolicy", "ordinals",
                             "template.spec")
"""Every field of a Deployment's and a StatefulSet's spec (apps/v1) but the pod template's metadata, which the
policy checks apart. Replicas change through the scale subresource, which the policy does not match."""


def write_limits(scope: Construct, name: str, *, service_account: str, labels: dict[str, str]) -> None:
    """What the API's write grant may change in a Deployment or StatefulSet, wherever it is bound: only the
    restart annotation of its pod template. Not its spec (a pod template that mounts a Secret or takes another
    ServiceAccount; a StatefulSet whose claims are deleted when it scales down), not its owner references (the
    garbage collector would delete it) nor its finalizers. Matched by the requester, so the workloads' own
    owners (people, Argo CD) are not concerned; the scale subresource is another resource, not matched."""
    template, old = "object.spec.template.metadata", "oldObject.spec.template.metadata"
    same_except_restart = (
        f"(!has({template}.annotations) || {template}.annotations.all(k, k == '{RESTART_ANNOTATION}' || "
        f"(has({old}.annotations) && k in {old}.annotations && {old}.annotations[k] == {template}.annotations[k]))) && "
        f"(!has({old}.annotations) || {old}.annotations.all(k, k == '{RESTART_ANNOTATION}' || "
        f"(has({template}.annotations) && k in {template}.annotations)))")
    policy = ApiObject(scope, "write-limits", api_version="admissionregistration.k8s.io/v1",
                       kind="ValidatingAdmissionPolicy",
                       metadata={"name": name, "labels": labels, "annotations": wave(Wave.NAMESPACE)})
    refusal = "the KubeChat API may scale or restart a workload, not change it otherwise: "
    policy.add_json_patch(JsonPatch.add("/spec", {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"],
                                                "resources": ["deployments", "statefulsets"]}]},
        "matchConditions": [{"name": "the-kubechat-api", "expression":
                             f"request.userInfo.username.matches('^system:serviceaccount:[a-z0-9-]+:{service_account}$')"}],
        "validations": [
            *({"expression": _unchanged(f"spec.{field}"), "reason": "Forbidden",
               "message": refusal + f"spec.{field} changed"} for field in WRITE_LIMITED_SPEC_FIELDS),
            {"expression": _unchanged("spec.template.metadata.labels"), "reason": "Forbidden",
             "message": refusal + "spec.template.metadata.labels changed"},
            {"expression": same_except_restart, "reason": "Forbidden",
             "message": refusal + f"spec.template.metadata.annotations changed beyond {RESTART_ANNOTATION}"},
            *({"expression": _unchanged(f"metadata.{field}"), "reason": "Forbidden",
               "message": refusal + f"metadata.{field} changed"} for field in ("ownerReferences", "finalizers")),
        ]}))
    binding = ApiObject(scope, "write-limits-binding", api_version="admissionregistration.k8s.io/v1",
                        kind="ValidatingAdmissionPolicyBinding",
                        metadata={"name": name, "labels": labels, "annotations": wave(Wave.NAMESPACE)})
    binding.add_json_patch(JsonPatch.add("/spec", {"policyName": name, "validationActions": ["Deny"]}))
