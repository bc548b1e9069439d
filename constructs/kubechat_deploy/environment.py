"""What makes a copy of the base an environment, generated once for every environment instead of
written out in each overlay: Kustomize transformer configurations, rendered to
dist/environments/<env>/ (in this order, which matters) and listed under `transformers:` by
overlays/<env>/kustomization.yaml, after everything else:

1. every namespaced resource without a namespace goes to kubechat-<env> (unsetOnly: grants that
   target other namespaces, such as the api-write-access component's, keep theirs);
2. cluster-scoped names get the prefix kubechat-<env>- so environments can share a cluster;
3. the base's Namespace is renamed to kubechat-<env>;
4. admission policies guard kubechat-<env> only (its name, after the rename);
5. cluster-scoped custom resources lose the namespace Kustomize cannot know they must not have;
6. the release version (VERSION in the overlay's `kubechat-release` ConfigMap, which
   scripts/release.py sets) labels every resource, and the pod templates of what a release replaces anyway
   (Deployments, Jobs, CronJobs), but no StatefulSet's: a new label on a pod template is a rollout, and the
   only StatefulSet is the cache, whose one pod would restart on every release (sessions answer 503 while
   it reloads, docs/app-contract.md); never a volumeClaimTemplate either (immutable);
7. an object taken once per schema version (label kubechat.io/per-schema-version: production's pre-migration
   Backup) gets the release's SCHEMA_VERSION at the end of its name.
"""
from __future__ import annotations

import json

from cdk8s import ApiObject, Chart, JsonPatch
from constructs import Construct

from kubechat_deploy.delivery.sync import PER_SCHEMA_LABEL
from kubechat_deploy.labels import VERSION_LABEL
from kubechat_deploy.layout import ENVIRONMENT_PREFIX
from kubechat_deploy.platform.props import GRAFANA_DASHBOARDS_ROLE, GRAFANA_NAMESPACE
from kubechat_deploy.security.rbac import API_WRITE_LIMITS

CLUSTER_SCOPED_NAMES = ("ClusterRole", "ClusterRoleBinding", "ClusterIssuer", "ClusterPolicy",
                        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
"""Kinds whose names get the environment's prefix (cluster-scoped objects the environments render)."""
CLUSTER_SCOPED_CUSTOM_KINDS = ("ClusterIssuer", "ClusterPolicy", "ValidatingAdmissionPolicy",
                               "ValidatingAdmissionPolicyBinding")
"""Cluster-scoped kinds Kustomize's built-in schema does not know (it would give them a namespace)."""
RELEASE_CONFIG_MAP = "kubechat-release"
"""The overlay's generated ConfigMap with the release's SCHEMA_VERSION and VERSION."""
POD_TEMPLATE_LABELS = {"Deployment": "spec.template.metadata.labels",
                       "Job": "spec.template.metadata.labels",
                       "CronJob": "spec.jobTemplate.spec.template.metadata.labels"}
"""Where the version label goes on pod templates: kinds a release replaces anyway. Not StatefulSet (the cache
must not restart on a release: issue #26.3), never volumeClaimTemplates."""


def namespace_of(environment: str) -> str:
    return f"kubechat-{environment}"


class EnvironmentChart(Chart):
    """The transformers of one environment (chart id environment-<env>, rendered to dist/environments/<env>/)."""

    def __init__(self, scope: Construct, environment: str) -> None:
        super().__init__(scope, f"{ENVIRONMENT_PREFIX}{environment}")
        namespace = namespace_of(environment)
        label_path = VERSION_LABEL.replace(".", "\\.")

        def transformer(kind: str, name: str, fields: dict, namespace_: str | None = None) -> None:
            obj = ApiObject(self, name, api_version="builtin", kind=kind,
                            metadata={"name": name, **({"namespace": namespace_} if namespace_ else {})})
            for key, value in fields.items():
                obj.add_json_patch(JsonPatch.add(f"/{key}", value))

        transformer("NamespaceTransformer", "environment-namespace",
                    {"unsetOnly": True, "setRoleBindingSubjects": "allServiceAccounts"}, namespace)
        transformer("PrefixSuffixTransformer", "environment-cluster-scoped-names", {
            "prefix": f"{namespace}-",
            "fieldSpecs": [{"kind": k, "path": "metadata/name"} for k in CLUSTER_SCOPED_NAMES]
            + [{"kind": "ValidatingAdmissionPolicyBinding", "path": "spec/policyName"},
               # Each environment's own ClusterSecretStore (docs/install.md: usable only from its namespace).
               {"kind": "ExternalSecret", "path": "spec/secretStoreRef/name"}]})
        # Grafana's ServiceAccount is the platform's: the namespace transformer above set every subject's namespace.
        transformer("PatchTransformer", "environment-grafana-subject", {
            "target": {"kind": "RoleBinding", "name": GRAFANA_DASHBOARDS_ROLE},
            "patch": json.dumps([{"op": "replace", "path": "/subjects/0/namespace", "value": GRAFANA_NAMESPACE}])})
        transformer("PatchTransformer", "environment-namespace-name", {
            "target": {"kind": "Namespace", "name": "kubechat"},
            "patch": json.dumps([{"op": "replace", "path": "/metadata/name", "value": namespace}])})
        transformer("ReplacementTransformer", "environment-guarded-namespace", {"replacements": [{
            "source": {"kind": "Namespace", "fieldPath": "metadata.name"},
            "targets": [
                {"select": {"kind": "ClusterPolicy"},
                 "fieldPaths": ["spec.rules.*.match.any.*.resources.namespaces.0"]},
                # Every binding but the API's write limits, which hold wherever the write grant is bound.
                {"select": {"kind": "ValidatingAdmissionPolicyBinding"},
                 "reject": [{"kind": "ValidatingAdmissionPolicyBinding", "name": f"{namespace}-{API_WRITE_LIMITS}"}],
                 "fieldPaths": ["spec.matchResources.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name"]},
            ]}]})
        transformer("PatchTransformer", "environment-cluster-scoped-custom-resources", {
            "target": {"kind": f"^({'|'.join(CLUSTER_SCOPED_CUSTOM_KINDS)})$"},
            "patch": json.dumps([{"op": "remove", "path": "/metadata/namespace"}])})
        transformer("ReplacementTransformer", "environment-release-version", {"replacements": [{
            "source": {"kind": "ConfigMap", "name": RELEASE_CONFIG_MAP, "fieldPath": "data.VERSION"},
            "targets": [{"select": {}, "fieldPaths": [f"metadata.labels.{label_path}"], "options": {"create": True}}]
            + [{"select": {"kind": kind}, "fieldPaths": [f"{path}.{label_path}"], "options": {"create": True}}
               for kind, path in POD_TEMPLATE_LABELS.items()]}]})
        # An object taken once per schema version (production's pre-migration Backup) ends its name with it:
        # <name>-<SCHEMA_VERSION> (index past the end: Kustomize appends the value after the delimiter).
        transformer("ReplacementTransformer", "environment-schema-version-names", {"replacements": [{
            "source": {"kind": "ConfigMap", "name": RELEASE_CONFIG_MAP, "fieldPath": "data.SCHEMA_VERSION"},
            "targets": [{"select": {"labelSelector": f"{PER_SCHEMA_LABEL}=true"}, "fieldPaths": ["metadata.name"],
                         "options": {"delimiter": "-", "index": 99}}]}]})
