"""Delivery with Argo CD (platform piece dist/platform/delivery/): the AppProject that bounds what
KubeChat's Applications may deploy, and the ApplicationSet that creates one Application per
environment overlay (git directory generator over overlays/*, components excluded)."""
from __future__ import annotations

from constructs import Construct

import imports.argocd.io.argoproj as argo

from .platform_props import DeliveryProps
from .labels import standard_labels

CLUSTER_SCOPED_KINDS = (("", "Namespace"), ("rbac.authorization.k8s.io", "ClusterRole"),
                        ("rbac.authorization.k8s.io", "ClusterRoleBinding"), ("cert-manager.io", "ClusterIssuer"),
                        ("kyverno.io", "ClusterPolicy"), ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
                        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"))
"""The only cluster-scoped kinds the overlays render (tests keep this list in step with the render)."""


class Delivery(Construct):
    def __init__(self, scope: Construct, id: str, *, props: DeliveryProps) -> None:
        super().__init__(scope, id)
        labels = standard_labels("delivery")
        argo.AppProject(self, "project", metadata={"name": props.project, "namespace": props.argocd_namespace,
                                                   "labels": labels},
                        spec=argo.AppProjectSpec(
                            description="KubeChat: one Application per environment overlay",
                            source_repos=[props.repo_url],
                            destinations=[argo.AppProjectSpecDestinations(server=props.destination_server,
                                                                          namespace="kubechat-*")],
                            cluster_resource_whitelist=[argo.AppProjectSpecClusterResourceWhitelist(group=g, kind=k)
                                                        for g, k in CLUSTER_SCOPED_KINDS],
                            sync_windows=[argo.AppProjectSpecSyncWindows(
                                kind="allow", schedule=props.production_sync_window,
                                duration=props.production_sync_window_duration,
                                applications=["kubechat-production"], manual_sync=True, time_zone="UTC")],
                        ))
        notify = {f"notifications.argoproj.io/subscribe.{trigger}.slack": props.notification_channel
                  for trigger in ("on-sync-failed", "on-health-degraded")}
        t = argo  # the template's classes: ApplicationSetSpecTemplate...
        argo.ApplicationSet(self, "environments", metadata={"name": "kubechat", "namespace": props.argocd_namespace,
                                                            "labels": labels},
                            spec=argo.ApplicationSetSpec(
                                go_template=True,
                                go_template_options=["missingkey=error"],
                                generators=[argo.ApplicationSetSpecGenerators(git=argo.ApplicationSetSpecGeneratorsGit(
                                    repo_url=props.repo_url, revision=props.revision,
                                    directories=[argo.ApplicationSetSpecGeneratorsGitDirectories(
                                        path=f"{props.overlay_root}/*")] + [
                                        argo.ApplicationSetSpecGeneratorsGitDirectories(
                                            path=f"{props.overlay_root}/{x}", exclude=True)
                                        for x in props.excluded_overlays]))],
                                template=t.ApplicationSetSpecTemplate(
                                    metadata=t.ApplicationSetSpecTemplateMetadata(
                                        name="kubechat-{{.path.basename}}",
                                        labels={**labels, "kubechat.io/environment": "{{.path.basename}}"},
                                        annotations=notify),
                                    spec=t.ApplicationSetSpecTemplateSpec(
                                        project=props.project,
                                        source=t.ApplicationSetSpecTemplateSpecSource(
                                            repo_url=props.repo_url, target_revision=props.revision,
                                            path="{{.path.path}}"),
                                        destination=t.ApplicationSetSpecTemplateSpecDestination(
                                            server=props.destination_server, namespace="kubechat-{{.path.basename}}"),
                                        sync_policy=t.ApplicationSetSpecTemplateSpecSyncPolicy(
                                            automated=t.ApplicationSetSpecTemplateSpecSyncPolicyAutomated(
                                                prune=True, self_heal=True),
                                            retry=t.ApplicationSetSpecTemplateSpecSyncPolicyRetry(
                                                limit=5, backoff=t.ApplicationSetSpecTemplateSpecSyncPolicyRetryBackoff(
                                                    duration="30s", factor=2, max_duration="10m")),
                                            sync_options=["ServerSideApply=true", "RespectIgnoreDifferences=true",
                                                          "PruneLast=true"]),
                                        ignore_differences=[
                                            # Fields operators default or own after creation.
                                            t.ApplicationSetSpecTemplateSpecIgnoreDifferences(
                                                group="external-secrets.io", kind="ExternalSecret",
                                                json_pointers=["/spec/target/deletionPolicy"]),
                                            t.ApplicationSetSpecTemplateSpecIgnoreDifferences(
                                                group="postgresql.cnpg.io", kind="Cluster",
                                                json_pointers=["/spec/postgresql/pg_hba", "/spec/managed"]),
                                            # The HPA owns the replica count after the Rollout's first creation.
                                            t.ApplicationSetSpecTemplateSpecIgnoreDifferences(
                                                group="argoproj.io", kind="Rollout", json_pointers=["/spec/replicas"]),
                                        ]))))
