"""Evaluate RBAC like the API server's authorizer: may this ServiceAccount do this verb on this
resource in this namespace, given the rendered Roles, ClusterRoles and their bindings?"""
from __future__ import annotations


def _rule_allows(rule: dict, verb: str, group: str, resource: str) -> bool:
    verbs, groups, resources = rule.get("verbs", []), rule.get("apiGroups", []), rule.get("resources", [])
    return ((verb in verbs or "*" in verbs) and (group in groups or "*" in groups)
            and (resource in resources or "*" in resources))


def can(docs: list[dict], namespace: str, service_account: str, verb: str, group: str, resource: str,
        target_namespace: str | None) -> bool:
    """target_namespace None asks about a cluster-wide request (e.g. list pods in all namespaces)."""
    roles = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
             for d in docs if d["kind"] in ("Role", "ClusterRole")}
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s["kind"] == "ServiceAccount" and s["name"] == service_account and s.get("namespace") == namespace
                   for s in binding.get("subjects", [])):
            continue
        binding_ns = binding["metadata"].get("namespace", "")
        if binding["kind"] == "RoleBinding" and target_namespace != binding_ns:
            continue  # a RoleBinding grants only inside its own namespace
        ref = binding["roleRef"]
        role = roles.get((ref["kind"], binding_ns if ref["kind"] == "Role" else "", ref["name"]))
        if role and any(_rule_allows(rule, verb, group, resource) for rule in role.get("rules", [])):
            return True
    return False
