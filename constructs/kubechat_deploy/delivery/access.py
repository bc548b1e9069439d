"""Who may deliver what (docs/security.md, "Delivery"): the Argo CD projects and the identities their
Applications sync with.

- Each delivered environment has a project of its own, `kubechat-<env>`: this repository only, its
  namespace only, and only the cluster-scoped objects its overlay renders, by name. Its Applications sync
  as the ServiceAccount `argocd:kubechat-<env>-deployer` (Argo CD's sync impersonation: argocd-cm
  `application.sync.impersonation.enabled`, the project's `destinationServiceAccounts`; argo-cd v3.5.1
  util/settings/impersonation.go DeriveServiceAccountToImpersonate, controller/sync.go). That identity is
  the environment namespace's admin and, at cluster scope, may patch and delete exactly the objects named
  in CLUSTER_SCOPED (Argo CD applies server-side: a new object is a PATCH of its name) and nothing else.
  The API server's escalation checks then refuse any ClusterRoleBinding to a role it does not hold
  (cluster-admin included), whatever a commit contains.
- The platform's Applications (root, prerequisites, logging) live in the project `platform`: this
  repository and the pinned chart and CRD repositories only, the cluster Argo CD runs in only. They sync as
  `argocd:kubechat-platform-deployer`, a cluster admin: installing operators and CRDs needs it.
- Argo CD refuses to sync an Application whose project names no identity for its destination (enforcement
  is on by default once impersonation is enabled, util/settings/settings.go), so the install's unrestricted
  `default` project deploys nothing.

The identities are user names, not ServiceAccount objects: Argo CD impersonates
`system:serviceaccount:argocd:<name>` and RBAC binds that name, but with no ServiceAccount no token can be
requested for it, so only Argo CD's controller (and a cluster admin) can act as it.

The environments' identities and namespaces are applied on every cluster that runs an environment when it
is registered (dist/platform/deployers/, docs/install.md), not synced by Argo CD: the identity an
Application syncs with is never something that Application can change.
"""
from __future__ import annotations

import json

from cdk8s import ApiObject, JsonPatch
from constructs import Construct

import imports.argocd.io.argoproj as argo
from cdk8s_plus_28 import k8s

from kubechat_deploy.labels import standard_labels
from kubechat_deploy.platform.props import ArgoCdAccessProps, DeliveryProps

PLATFORM_PROJECT = "platform"
PLATFORM_DEPLOYER = "kubechat-platform-deployer"

CLUSTER_SCOPED: dict[tuple[str, str, str], tuple[str, ...]] = {
    # (API group, kind, resource): the names an environment's overlay renders. Every cluster-scoped object
    # is named kubechat-<env>-<name> (the environments' name prefix), the Namespace kubechat-<env> ("").
    ("", "Namespace", "namespaces"): ("",),
    ("rbac.authorization.k8s.io", "ClusterRole", "clusterroles"): ("api-read", "api-read-cluster", "api-write"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings"): ("api-read-cluster",),
    ("cert-manager.io", "ClusterIssuer", "clusterissuers"): ("letsencrypt-production", "letsencrypt-staging"),
    ("kyverno.io", "ClusterPolicy", "clusterpolicies"): ("image-references", "verify-images"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy", "validatingadmissionpolicies"):
        ("api-write-limits", "image-digests", "image-references", "restricted-security-context"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings"):
        ("api-write-limits", "image-digests", "image-references", "restricted-security-context"),
}
"""The only cluster-scoped objects a delivered environment may hold (tests/test_delivery.py keeps this in
step with the render: a new one is a deliberate change here, reviewed as a change of privilege)."""

ESCALATE = ("api-read", "api-write")
"""ClusterRoles whose rules the deployer may write without holding them (RBAC `escalate`, by name): the
API's roles, bound only by RoleBindings (the environment's own, and those an operator adds in namespaces
the API may act in, docs/security.md). They may grant no more than an operator bound them for: the
deployer cannot bind them cluster-wide (no `bind`, and it does not hold their rules). RBAC checks `escalate`
against the request's object name, which a create names only through server-side apply (a PATCH to the
object): the ApplicationSet's `ServerSideApply=true` is what lets the first sync create them (Argo CD's
client-side path, `kubectl auth reconcile`, creates with a POST that names nothing and is refused)."""

HELD = [k8s.PolicyRule(api_groups=[""], resources=["namespaces", "nodes"], verbs=["get", "list", "watch"])]
"""What the deployer holds cluster-wide: the rules of the API's cluster-wide ClusterRole (api-read-cluster,
bound by a ClusterRoleBinding), so it may create and bind that role (RBAC's escalation check) but never
widen it."""


def environment_namespace(env: str) -> str:
    return f"kubechat-{env}"


def deployer(env: str) -> str:
    return f"kubechat-{env}-deployer"


def object_name(env: str, name: str) -> str:
    return f"kubechat-{env}-{name}" if name else environment_namespace(env)


def project_name(props: DeliveryProps, env: str) -> str:
    return f"{props.project}-{env}"


def environment_project(scope: Construct, props: DeliveryProps, env: str, labels: dict[str, str]) -> argo.AppProject:
    windows = []
    if is_production(env):
        # syncOverrun: a sync that started inside the window finishes after it ends. Without it the controller
        # stops a running operation at the window's end (argo-cd v3.5.1 controller/sync.go syncWindowPreventsSync,
        # "Sync operation blocked by sync window"): half of a release's waves applied until the next morning,
        # and `argocd app sync` refused meanwhile ("another operation is already in progress").
        windows = [argo.AppProjectSpecSyncWindows(
            kind="allow", schedule=props.production_sync_window, duration=props.production_sync_window_duration,
            applications=[f"kubechat-{env}-*"], manual_sync=True, sync_overrun=True, time_zone="UTC")]
    return argo.AppProject(scope, f"project-{env}", metadata={
        "name": project_name(props, env), "namespace": props.argocd_namespace, "labels": labels},
        spec=argo.AppProjectSpec(
            description=f"KubeChat {env}: overlays/{env} into {environment_namespace(env)} on any cluster registered for it",
            source_repos=[props.repo_url],
            destinations=[argo.AppProjectSpecDestinations(server="*", namespace=environment_namespace(env))],
            # Exact names: Argo CD checks them before it applies anything (argo-cd v3.5.1 gitops-engine
            # pkg/sync/sync_context.go: a resource the project does not permit fails the sync while its tasks
            # are planned), so a commit with any other cluster-scoped object changes nothing. Its dry run is
            # client-side only (applyObject), so what the API server refuses (the deployer's RBAC) stops a
            # sync at that object's wave instead, after the earlier waves.
            cluster_resource_whitelist=[
                argo.AppProjectSpecClusterResourceWhitelist(group=group, kind=kind, name=object_name(env, name))
                for (group, kind, _), names in CLUSTER_SCOPED.items() for name in names],
            destination_service_accounts=[argo.AppProjectSpecDestinationServiceAccounts(
                server="*", namespace=environment_namespace(env),
                default_service_account=f"{props.argocd_namespace}:{deployer(env)}")],
            sync_windows=windows or None))


def platform_project(scope: Construct, props: DeliveryProps, source_repos: list[str]) -> argo.AppProject:
    return argo.AppProject(scope, "project-platform", metadata={
        "name": PLATFORM_PROJECT, "namespace": props.argocd_namespace, "labels": standard_labels("platform")},
        spec=argo.AppProjectSpec(
            description="The platform: Argo CD's configuration, the operators KubeChat needs, the delivery objects",
            source_repos=sorted({props.repo_url, *source_repos}),
            destinations=[argo.AppProjectSpecDestinations(server=props.destination_server, namespace="*")],
            cluster_resource_whitelist=[argo.AppProjectSpecClusterResourceWhitelist(group="*", kind="*")],
            destination_service_accounts=[argo.AppProjectSpecDestinationServiceAccounts(
                server=props.destination_server, namespace="*",
                default_service_account=f"{props.argocd_namespace}:{PLATFORM_DEPLOYER}")]))


def is_production(env: str) -> bool:
    return env == "production" or env.startswith("production-")


ROLE_ACTIONS = (("applications", "get"), ("applications", "sync"), ("applications", "update"),
                ("applications", "action/*"), ("logs", "get"))
"""What an environment's deployer role may do to that environment's Applications (argo-cd v3.5.1
docs/operator-manual/rbac.md): read them and their logs, sync, roll back and terminate a sync (`sync`),
turn auto-sync off for an emergency rollback (`update`: docs/upgrade.md), run resource actions such as a
Rollout's promote or abort. Nothing on projects, clusters, repositories or other environments."""


def argocd_rbac(props: DeliveryProps, access: ArgoCdAccessProps) -> dict[str, str]:
    """argocd-rbac-cm: read-only by default, a deployer role per environment, admins by group."""
    lines = ["# Generated by make render from constructs/kubechat_deploy/delivery/access.py (ArgoCdAccessProps)."]
    for env in props.environments:
        role, scope = f"role:kubechat-{env}-deployer", f"{project_name(props, env)}/*"
        lines += [f"p, {role}, {resource}, {action}, {scope}, allow" for resource, action in ROLE_ACTIONS]
        groups = access.production_deployers if is_production(env) else access.staging_deployers
        lines += [f"g, {group}, {role}" for group in groups]
    lines += [f"g, {group}, role:admin" for group in access.platform_admins]
    return {"policy.default": "role:readonly", "policy.csv": "\n".join(lines) + "\n", "scopes": "[groups]"}


class PlatformDeployer(Construct):
    """The platform project's identity (a cluster admin), on the cluster Argo CD runs in."""

    def __init__(self, scope: Construct, id: str, *, props: DeliveryProps) -> None:
        super().__init__(scope, id)
        labels = standard_labels("platform")
        k8s.KubeClusterRoleBinding(self, "binding", metadata=k8s.ObjectMeta(name=PLATFORM_DEPLOYER, labels=labels),
                                   role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                                        name="cluster-admin"),
                                   subjects=[k8s.Subject(kind="ServiceAccount", name=PLATFORM_DEPLOYER,
                                                         namespace=props.argocd_namespace)])


class EnvironmentDeployers(Construct):
    """Per delivered environment: its Namespace (Pod Security "restricted"), and the identity its
    Application syncs with: admin of that namespace, and at cluster scope only its named objects."""

    def __init__(self, scope: Construct, id: str, *, props: DeliveryProps) -> None:
        super().__init__(scope, id)
        labels = standard_labels("delivery")
        for env in props.environments:
            namespace, name = environment_namespace(env), deployer(env)
            pss = {f"pod-security.kubernetes.io/{mode}{suffix}": value
                   for mode in ("enforce", "audit", "warn")
                   for suffix, value in (("", "restricted"), ("-version", "latest"))}
            k8s.KubeNamespace(self, f"{env}-namespace", metadata=k8s.ObjectMeta(name=namespace, labels={**labels, **pss}))
            subject = [k8s.Subject(kind="ServiceAccount", name=name, namespace=props.argocd_namespace)]
            # Everything inside its namespace (RoleBinding to the built-in cluster-admin: that namespace only).
            k8s.KubeRoleBinding(self, f"{env}-namespace-admin", metadata=k8s.ObjectMeta(
                name=name, namespace=namespace, labels=labels), subjects=subject,
                role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"))
            rules = []
            for (group, _, resource), names in CLUSTER_SCOPED.items():
                rules.append(k8s.PolicyRule(api_groups=[group], resources=[resource],
                                            resource_names=[object_name(env, n) for n in names],
                                            verbs=["patch", "update", "delete"]))
            # Creating cannot be limited by name in RBAC (the API server authorizes a server-side apply that
            # creates an object as `create` too): the delivery-scope policy below refuses other names. Reading
            # these kinds is not: Argo CD reads an RBAC object before it writes one (`kubectl auth reconcile`,
            # argo-cd v3.5.1 gitops-engine/pkg/utils/kube/resource_ops.go), and a refused read there crashes
            # (nil pointer) instead of reporting the refusal.
            groups, resources = sorted({g for g, _, _ in CLUSTER_SCOPED}), sorted(r for _, _, r in CLUSTER_SCOPED)
            rules.append(k8s.PolicyRule(api_groups=groups, resources=resources, verbs=["create"]))
            rules.append(k8s.PolicyRule(api_groups=groups, resources=resources, verbs=["get", "list", "watch"]))
            rules.append(k8s.PolicyRule(api_groups=["rbac.authorization.k8s.io"], resources=["clusterroles"],
                                        resource_names=[object_name(env, n) for n in ESCALATE], verbs=["escalate"]))
            rules += HELD
            k8s.KubeClusterRole(self, f"{env}-cluster", metadata=k8s.ObjectMeta(name=name, labels=labels), rules=rules)
            DeliveryScope(self, f"{env}-scope", env=env, argocd_namespace=props.argocd_namespace, labels=labels)
            k8s.KubeClusterRoleBinding(self, f"{env}-cluster-binding", metadata=k8s.ObjectMeta(name=name, labels=labels),
                                       role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                                            name=name), subjects=subject)


API_ROLE_MATCH = "request.userInfo.username.matches('^system:serviceaccount:[a-z0-9-]+:kubechat-api$')"
"""The one matchCondition an environment's cluster-wide admission policy (api-write-limits, bound without a
namespace selector: the API writes in other namespaces) must carry: it judges only the KubeChat API's own
requests (tests/test_delivery.py checks the render carries exactly this)."""

READ_VERBS = ["get", "list", "watch"]
WRITE_ROLE = {"apiGroups": ["", "apps"], "verbs": ["get", "patch", "update", "delete"],
              "resources": ["deployments", "statefulsets", "deployments/scale", "statefulsets/scale", "pods"]}
"""The most an environment may grant its API for writing (docs/security.md, "Write actions are opt-in"): scale,
restart and delete a pod. Its read roles may only read, never Secrets."""
POLICY_RESOURCES = ["pods", "pods/ephemeralcontainers", "deployments", "statefulsets"]
"""What an environment's ValidatingAdmissionPolicies may judge: namespaced workloads only (a binding's namespace
selector does not confine a policy on cluster-scoped objects)."""


def _cel(value) -> str:
    return json.dumps(value)


class DeliveryScope(Construct):
    """A ValidatingAdmissionPolicy on the environment deployer's own requests (it cannot change this one:
    not among its names), for what RBAC cannot say: which cluster-scoped objects it creates, changes and
    deletes (its named ones), and what they may contain. Its Namespace stays Pod Security "restricted"; its
    ClusterRoles grant at most READ_VERBS (never Secrets) and WRITE_ROLE, never aggregate; its
    ClusterRoleBinding binds only its cluster-wide read role to its own namespace's ServiceAccounts; its
    Kyverno ClusterPolicies only validate or verify images, in its namespace; its ClusterIssuers are ACME
    only; its admission policies judge only workloads, bound to its namespace (or, the API's write limits,
    to the API's own requests)."""

    def __init__(self, scope: Construct, id: str, *, env: str, argocd_namespace: str, labels: dict[str, str]) -> None:
        super().__init__(scope, id)
        name, namespace = f"{deployer(env)}-scope", environment_namespace(env)
        allowed = {resource: [object_name(env, n) for n in names] for (_, _, resource), names in CLUSTER_SCOPED.items()}
        names = "{" + ", ".join(f"{json.dumps(r)}: {json.dumps(n)}" for r, n in allowed.items()) + "}"
        in_namespace = f"has(m.resources) && has(m.resources.namespaces) && size(m.resources.namespaces) > 0 && " \
                       f"m.resources.namespaces.all(n, n == {_cel(namespace)})"
        confined = (f"(!has(r.match.any) || r.match.any.all(m, {in_namespace})) && "
                    f"(!has(r.match.all) || r.match.all.all(m, {in_namespace})) && "
                    "(has(r.match.any) || has(r.match.all)) && !has(r.match.resources) && "
                    "(has(r.validate) || has(r.verifyImages)) && !has(r.mutate) && !has(r.generate) && !has(r.context)")
        write_role = object_name(env, "api-write")
        rule_ok = ("!has(r.nonResourceURLs) && has(r.apiGroups) && has(r.resources) && "
                   f"(request.name == {_cel(write_role)} ? "
                   f"(r.apiGroups.all(g, g in {_cel(WRITE_ROLE['apiGroups'])}) && "
                   f"r.resources.all(x, x in {_cel(WRITE_ROLE['resources'])}) && r.verbs.all(v, v in {_cel(WRITE_ROLE['verbs'])})) : "
                   f"(r.verbs.all(v, v in {_cel(READ_VERBS)}) && r.resources.all(x, x != 'secrets' && x != '*')))")
        pss = "object.metadata.labels"
        ns_selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
        only = lambda resource, expression: (f"request.resource.resource != '{resource}' || "  # noqa: E731
                                             f"request.operation == 'DELETE' || ({expression})")
        validations = [
            ("request.name in variables.allowed[request.resource.resource]",
             f"'the {env} deployer may write only the cluster-scoped objects named in constructs/kubechat_deploy/"
             "delivery/access.py CLUSTER_SCOPED, not ' + request.resource.resource + ' ' + request.name"),
            (only("namespaces", f"has({pss}) && 'pod-security.kubernetes.io/enforce' in {pss} && "
                                f"{pss}['pod-security.kubernetes.io/enforce'] == 'restricted' && "
                                f"(!('pod-security.kubernetes.io/enforce-version' in {pss}) || "
                                f"{pss}['pod-security.kubernetes.io/enforce-version'] == 'latest')"),
             f"{namespace} stays Pod Security restricted (pod-security.kubernetes.io/enforce: restricted)"),
            (only("clusterroles", f"!has(object.aggregationRule) && (!has(object.rules) || object.rules.all(r, {rule_ok}))"),
             f"a ClusterRole of {env} may read (never Secrets) or, {write_role}, scale, restart and delete pods of "
             "workloads; it never aggregates other roles"),
            (only("clusterrolebindings", f"object.roleRef.name == {_cel(object_name(env, 'api-read-cluster'))} && "
                                         f"has(object.subjects) && object.subjects.all(s, s.kind == 'ServiceAccount' && "
                                         f"s.namespace == {_cel(namespace)})"),
             f"the {env} ClusterRoleBinding binds only {object_name(env, 'api-read-cluster')} to ServiceAccounts of "
             f"{namespace}"),
            (only("clusterpolicies", f"object.spec.rules.all(r, {confined})"),
             f"a ClusterPolicy of {env} only validates or verifies images, of resources in {namespace} "
             "(match.any/all with resources.namespaces)"),
            (only("clusterissuers", "object.spec.all(k, k == 'acme')"),
             f"a ClusterIssuer of {env} is an ACME issuer only"),
            (only("validatingadmissionpolicies", "object.spec.matchConstraints.resourceRules.all(rr, "
                                                 f"rr.resources.all(x, x in {_cel(POLICY_RESOURCES)}))"),
             f"an admission policy of {env} judges only pods and workloads"),
            (only("validatingadmissionpolicybindings",
                  "object.spec.policyName in variables.allowed['validatingadmissionpolicies'] && "
                  f"((has(object.spec.matchResources) && has(object.spec.matchResources.namespaceSelector) && "
                  f"object.spec.matchResources.namespaceSelector == {_cel(ns_selector)}) || "
                  f"object.spec.policyName == {_cel(object_name(env, 'api-write-limits'))})"),
             f"a binding of {env} binds its own policies to {namespace} (the API's write limits: to the API)"),
            (only("validatingadmissionpolicies", f"request.name != {_cel(object_name(env, 'api-write-limits'))} || "
                  f"(has(object.spec.matchConditions) && object.spec.matchConditions.exists(c, c.expression == "
                  f"{_cel(API_ROLE_MATCH)}))"),
             "the write limits of the API judge only requests of the KubeChat API"),
        ]
        policy = ApiObject(self, "policy", api_version="admissionregistration.k8s.io/v1",
                           kind="ValidatingAdmissionPolicy", metadata={"name": name, "labels": labels})
        policy.add_json_patch(JsonPatch.add("/spec", {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [
                {"apiGroups": [group], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE", "DELETE"],
                 "resources": [resource]} for group, _, resource in CLUSTER_SCOPED]},
            "matchConditions": [{"name": "the-deployer", "expression":
                                 f"request.userInfo.username == 'system:serviceaccount:{argocd_namespace}:{deployer(env)}'"}],
            "variables": [{"name": "allowed", "expression": names}],
            # The first message names the refused object (an expression); the others are plain text.
            "validations": [{"expression": e, ("messageExpression" if i == 0 else "message"): m, "reason": "Forbidden"}
                            for i, (e, m) in enumerate(validations)]}))
        binding = ApiObject(self, "binding", api_version="admissionregistration.k8s.io/v1",
                            kind="ValidatingAdmissionPolicyBinding", metadata={"name": name, "labels": labels})
        binding.add_json_patch(JsonPatch.add("/spec", {"policyName": name, "validationActions": ["Deny"]}))
