"""Argo CD's own configuration that KubeChat's delivery depends on (platform piece dist/platform/argocd/,
also part of dist/platform/bootstrap so a new cluster gets it before the first sync).

Rendered as the `argocd-cm` ConfigMap of the Argo CD version pinned in versions.py, applied server-side
over the upstream install with a field manager of its own (`kubectl apply --server-side
--field-manager=kubechat-platform`, docs/install.md), so the install's keys (resource.exclusions, ...)
stay: only these keys are owned here:
- health checks that Argo CD lacks or gets wrong, in `argocd_health/*.lua` (one file per kind):
  child Applications (so the platform root's waves wait for the operators), CloudNativePG Backup (the
  pre-migration safety backup must complete before the migration hook), and CloudNativePG Cluster
  (the built-in check raises a Lua error on a Cluster with no status yet);
and the `argocd-notifications-cm` keys that make failed syncs and degraded health reach people: the
webhook service the Applications subscribe to, its two triggers and their messages (the install ships an
empty argocd-notifications-cm, so a subscription alone sends nothing). The webhook's address is a secret:
`$webhook-url`, a key External Secrets writes into argocd-notifications-secret (delivery/argocd.py).
"""
from __future__ import annotations

from pathlib import Path

from constructs import Construct

from cdk8s_plus_28 import k8s

from kubechat_deploy.delivery.access import PlatformDeployer, argocd_rbac, platform_project
from kubechat_deploy.platform.props import ArgoCdAccessProps, DeliveryProps
from kubechat_deploy.versions import ARGOCD

HEALTH_CHECKS = Path(__file__).with_name("argocd_health")
"""<group>_<Kind>.lua: the health check Argo CD runs for that kind (argocd-cm key
resource.customizations.health.<group>_<Kind>)."""


def health_customizations() -> dict[str, str]:
    return {f"resource.customizations.health.{path.stem}": path.read_text()
            for path in sorted(HEALTH_CHECKS.glob("*.lua"))}


NOTIFICATION_SECRET_KEY = "webhook-url"
"""The key of argocd-notifications-secret holding the webhook's address ($webhook-url in the service)."""
TRIGGERS = ("on-sync-failed", "on-health-degraded")
"""What KubeChat's Applications subscribe to (delivery/argocd.py)."""


def notifications_configuration(props: DeliveryProps) -> dict[str, str]:
    """argocd-notifications-cm keys. Triggers as Argo CD v3.5.1's catalog defines them
    (notifications_catalog/triggers/on-sync-failed.yaml, on-health-degraded.yaml; the latter without its
    oncePer, below); the messages JSON-encoded
    with sprig's toJson, since an operation's message may hold quotes."""
    service = props.notification_service

    def template(what: str) -> str:
        text = (f"KubeChat: %s {what} (environment %s, revision %s). "
                f"Details: {props.argocd_url}/applications/{props.argocd_namespace}/%s?operation=true")
        args = ('.app.metadata.name (index .app.metadata.labels "kubechat.io/environment") '
                ".app.status.sync.revision .app.metadata.name")
        return ("webhook:\n"
                f"  {service}:\n"
                "    method: POST\n"
                "    body: |\n"
                f'      {{"text": {{{{ printf "{text}" {args} | toJson }}}}}}\n')
    return {
        "context": f"argocdUrl: {props.argocd_url}\n",
        f"service.webhook.{service}": (f"url: ${NOTIFICATION_SECRET_KEY}\n"
                                       "headers:\n- name: Content-Type\n  value: application/json\n"),
        "template.kubechat-sync-failed": template("failed to sync"),
        "template.kubechat-health-degraded": template("is Degraded"),
        "trigger.on-sync-failed": (
            "- description: Application syncing has failed\n"
            "  send: [kubechat-sync-failed]\n"
            "  when: app.status.operationState != nil and app.status.operationState.phase in ['Error', 'Failed']\n"
            "  oncePer: app.status.operationState?.syncResult?.revision\n"),
        # Not the catalog's oncePer (the revision): with it, the engine sends once per revision for good
        # (notifications-engine pkg/controller/state.go), so a second Degraded episode at the same revision, the
        # 3 a.m. case with no new commit, went unannounced. Without it, once per episode.
        "trigger.on-health-degraded": (
            "- description: Application has degraded\n"
            "  send: [kubechat-health-degraded]\n"
            "  when: app.status.health.status == 'Degraded'\n"),
    }


IMPERSONATION_KEY = "application.sync.impersonation.enabled"


class ArgoCdConfiguration(Construct):
    """argocd-cm, argocd-notifications-cm, and the platform project with its identity (delivery/access.py)."""

    def __init__(self, scope: Construct, id: str, *, argocd_namespace: str, delivery: DeliveryProps,
                 access: ArgoCdAccessProps, platform_repos: list[str]) -> None:
        super().__init__(scope, id)
        # Only the label Argo CD's settings watcher selects on (the install sets the same value): no label
        # another manager of argocd-cm (Helm, a self-managing Argo CD) would fight over.
        labels = {"app.kubernetes.io/part-of": "argocd"}
        k8s.KubeConfigMap(self, "argocd-cm", metadata=k8s.ObjectMeta(
            name="argocd-cm", namespace=argocd_namespace, labels=labels,
            annotations={"kubechat.io/argocd-version": ARGOCD.version}),
            data={**health_customizations(),
                  # Every sync as its project's identity (delivery/access.py); with it on, Argo CD refuses an
                  # Application whose project names none (enforcement defaults to on: argo-cd v3.5.1
                  # util/settings/settings.go impersonationEnabledKey, defaultImpersonationEnforcedFlag).
                  IMPERSONATION_KEY: "true",
                  # Syncing another revision than the Application's (a branch nobody reviewed, or production
                  # past its promotion) is an override, which only admins hold (argo-cd v3.5.1
                  # server/application/application.go resolveSourceRevisions).
                  "application.sync.requireOverridePrivilegeForRevisionSync": "true",
                  # The built-in admin, off once SSO is configured (ArgoCdAccessProps.local_admin).
                  **({} if access.local_admin else {"admin.enabled": "false"})})
        k8s.KubeConfigMap(self, "argocd-rbac-cm", metadata=k8s.ObjectMeta(
            name="argocd-rbac-cm", namespace=argocd_namespace, labels=labels,
            annotations={"kubechat.io/argocd-version": ARGOCD.version}), data=argocd_rbac(delivery, access))
        k8s.KubeConfigMap(self, "argocd-notifications-cm", metadata=k8s.ObjectMeta(
            name="argocd-notifications-cm", namespace=argocd_namespace, labels=labels,
            annotations={"kubechat.io/argocd-version": ARGOCD.version}), data=notifications_configuration(delivery))
        platform_project(self, delivery, platform_repos)
        PlatformDeployer(self, "platform-deployer", props=delivery)
