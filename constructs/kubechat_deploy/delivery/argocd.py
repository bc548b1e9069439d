"""Delivery with Argo CD (platform piece dist/platform/delivery/): the AppProject that bounds what
KubeChat's Applications may deploy, and the ApplicationSet that creates one Application per cluster
labelled with an environment (Argo CD's cluster generator), each in its environment's project
(delivery/access.py): a cluster Secret labelled
`kubechat.io/environment: production` gets overlays/production, so production can be several clusters
or regions, and adding one is one labelled Secret (docs/install.md). dev, the laptop environment, is
never generated: no label value selects it and the project refuses its namespace."""
from __future__ import annotations

from constructs import Construct

import imports.argocd.io.argoproj as argo
import imports.external_secrets.io.external_secrets as es

from kubechat_deploy.delivery.access import CLUSTER_SCOPED, environment_project
from kubechat_deploy.platform.argocd_config import NOTIFICATION_SECRET_KEY, TRIGGERS
from kubechat_deploy.platform.prerequisites import MONITORING_NAMESPACE, RECEIVER_URL_KEYS, RECEIVERS_SECRET
from kubechat_deploy.platform.props import AlertingProps, DeliveryProps
from kubechat_deploy.labels import standard_labels

CLUSTER_SCOPED_KINDS = tuple((group, kind) for group, kind, _ in CLUSTER_SCOPED)
"""The only cluster-scoped kinds the overlays render (tests keep this list in step with the render)."""


def target_revision(props: DeliveryProps, env: str) -> str:
    """The first environment follows the branch changes are merged to; every other one its promotion branch
    (docs/upgrade.md, "Promotion"): a change reaches production only after it ran in staging, when promoted.
    A Go template of the ApplicationSet (`env` is the template expression of the cluster's environment)."""
    inner = env.removeprefix("{{").removesuffix("}}").strip()
    return (f'{{{{ if eq ({inner}) "{props.first_environment}" }}}}{props.revision}'
            f'{{{{ else }}}}{props.promotion_branch_prefix}{env}{{{{ end }}}}')


class Delivery(Construct):
    def __init__(self, scope: Construct, id: str, *, props: DeliveryProps, alerting: AlertingProps) -> None:
        super().__init__(scope, id)
        labels = standard_labels("delivery")
        # Where Alertmanager's receivers post (platform/prerequisites.py, alertmanager_values): their addresses
        # from the secret store, into the Secret Alertmanager mounts. Here, not with the operators: this piece
        # syncs after them (External Secrets' CRDs must exist).
        es.ExternalSecret(self, "alertmanager-receivers", metadata={
            "name": RECEIVERS_SECRET, "namespace": MONITORING_NAMESPACE, "labels": labels},
            spec=es.ExternalSecretSpec(
                refresh_interval="1h",
                secret_store_ref=es.ExternalSecretSpecSecretStoreRef(
                    kind=es.ExternalSecretSpecSecretStoreRefKind.CLUSTER_SECRET_STORE, name=alerting.secret_store),
                target=es.ExternalSecretSpecTarget(name=RECEIVERS_SECRET,
                                                   creation_policy=es.ExternalSecretSpecTargetCreationPolicy.OWNER),
                data=[es.ExternalSecretSpecData(secret_key=key, remote_ref=es.ExternalSecretSpecDataRemoteRef(
                    key=alerting.remote_key, property=key)) for key in RECEIVER_URL_KEYS.values()]))
        # One project per environment: its namespace, its named cluster-scoped objects, its identity.
        for environment in props.environments:
            environment_project(self, props, environment, labels)
        # Each Application subscribes to the webhook service of argocd-notifications-cm (platform/argocd_config.py;
        # a webhook's recipient list is empty). Its address comes from the secret store, into the Secret Argo CD's
        # install creates (Merge: External Secrets adds the key, the Secret stays Argo CD's).
        notify = {f"notifications.argoproj.io/subscribe.{trigger}.{props.notification_service}": ""
                  for trigger in TRIGGERS}
        es.ExternalSecret(self, "notifications-webhook", metadata={
            "name": "argocd-notifications-webhook", "namespace": props.argocd_namespace, "labels": labels},
            spec=es.ExternalSecretSpec(
                refresh_interval="1h",
                secret_store_ref=es.ExternalSecretSpecSecretStoreRef(
                    kind=es.ExternalSecretSpecSecretStoreRefKind.CLUSTER_SECRET_STORE, name=props.secret_store),
                target=es.ExternalSecretSpecTarget(name="argocd-notifications-secret",
                                                   creation_policy=es.ExternalSecretSpecTargetCreationPolicy.MERGE),
                data=[es.ExternalSecretSpecData(secret_key=NOTIFICATION_SECRET_KEY,
                                                remote_ref=es.ExternalSecretSpecDataRemoteRef(
                                                    key=props.notification_webhook_remote_key,
                                                    property=NOTIFICATION_SECRET_KEY))]))
        t = argo  # the template's classes: ApplicationSetSpecTemplate...
        env = '{{index .metadata.labels "%s"}}' % props.environment_label
        argo.ApplicationSet(self, "environments", metadata={"name": "kubechat", "namespace": props.argocd_namespace,
                                                            "labels": labels},
                            spec=argo.ApplicationSetSpec(
                                # Deleting a generated Application (a cluster unlabelled, a rename) never
                                # deletes what it deployed: no resources finalizer on the Applications.
                                sync_policy=argo.ApplicationSetSpecSyncPolicy(preserve_resources_on_deletion=True),
                                # An operator may turn auto-sync off on one generated Application (the emergency
                                # `argocd app rollback`, docs/upgrade.md) without the controller turning it back on
                                # (argo-cd docs/operator-manual/applicationset/Controlling-Resource-Modification.md,
                                # "Allow temporarily toggling auto-sync"). The template's syncPolicy therefore
                                # reaches new Applications only: a change to it is applied by hand (docs/upgrade.md).
                                ignore_application_differences=[argo.ApplicationSetSpecIgnoreApplicationDifferences(
                                    json_pointers=["/spec/syncPolicy"])],
                                go_template=True,
                                go_template_options=["missingkey=error"],
                                generators=[argo.ApplicationSetSpecGenerators(
                                    clusters=argo.ApplicationSetSpecGeneratorsClusters(
                                        selector=argo.ApplicationSetSpecGeneratorsClustersSelector(
                                            match_expressions=[argo.ApplicationSetSpecGeneratorsClustersSelectorMatchExpressions(
                                                key=props.environment_label, operator="In",
                                                values=list(props.environments))])))],
                                template=t.ApplicationSetSpecTemplate(
                                    metadata=t.ApplicationSetSpecTemplateMetadata(
                                        name="kubechat-" + env + "-{{.nameNormalized}}",
                                        labels={**labels, "kubechat.io/environment": env, "kubechat.io/cluster": "{{.nameNormalized}}"},
                                        # Compare as the API server would apply: fields it (or a CRD's schema)
                                        # defaults are then no difference, so a synced environment stays Synced.
                                        annotations={**notify, "argocd.argoproj.io/compare-options": "ServerSideDiff=true"}),
                                    spec=t.ApplicationSetSpecTemplateSpec(
                                        project=f"{props.project}-" + env,
                                        source=t.ApplicationSetSpecTemplateSpecSource(
                                            repo_url=props.repo_url, target_revision=target_revision(props, env),
                                            path=f"{props.overlay_root}/" + env),
                                        destination=t.ApplicationSetSpecTemplateSpecDestination(
                                            server="{{.server}}", namespace="kubechat-" + env),
                                        sync_policy=t.ApplicationSetSpecTemplateSpecSyncPolicy(
                                            automated=t.ApplicationSetSpecTemplateSpecSyncPolicyAutomated(
                                                prune=True, self_heal=True),
                                            # refresh: a retry takes the newest commit, so a fix pushed
                                            # after a failed sync is what the next attempt syncs.
                                            retry=t.ApplicationSetSpecTemplateSpecSyncPolicyRetry(
                                                refresh=True, limit=5, backoff=t.ApplicationSetSpecTemplateSpecSyncPolicyRetryBackoff(
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
                                            # Argo Rollouts owns the canary's traffic split while a canary runs
                                            # (weights) and the split Services' pod-template hash selector: a
                                            # self-heal must not move traffic back in the middle of an analysis.
                                            # Only the weights: a change of the split's Services in git applies
                                            # (an ignored field keeps its live value in what Argo CD applies).
                                            t.ApplicationSetSpecTemplateSpecIgnoreDifferences(
                                                group="traefik.io", kind="TraefikService",
                                                jq_path_expressions=[".spec.weighted.services[].weight"]),
                                            t.ApplicationSetSpecTemplateSpecIgnoreDifferences(
                                                group="", kind="Service",
                                                json_pointers=["/spec/selector/rollouts-pod-template-hash"]),
                                        ]))))
