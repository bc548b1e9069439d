"""Secrets for staging and production, synced by External Secrets from the organization's secret
store: nothing secret is rendered. Rendered as the Kustomize component dist/components/external-secrets."""
from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

import imports.external_secrets.io.external_secrets as es

from kubechat_deploy import validation as v
from kubechat_deploy.app.api import KubeChatApi
from kubechat_deploy.data.database import KubeChatDatabase
from kubechat_deploy.labels import standard_labels
from kubechat_deploy.data.redis import KubeChatRedis
from kubechat_deploy.delivery.sync import Wave, wave


@dataclass(frozen=True, kw_only=True)
class ExternalSecretsProps:
    """Where the secrets come from; overlays patch the remote key per environment."""

    cluster_secret_store: str = "secret-store"
    """The environment's ClusterSecretStore, named without its environment: each environment's transformer
    prefixes it (kubechat-<env>-secret-store), and docs/install.md creates one per environment, usable only
    from that environment's namespace. Default: secret-store."""
    api_remote_key: str = "kubechat/ENVIRONMENT/api"
    """Remote key whose properties become the API secret's keys (JWT_SIGNING_KEY); overlays set kubechat/<env>/api. Default: kubechat/ENVIRONMENT/api."""
    redis_remote_key: str = "kubechat/ENVIRONMENT/redis"
    """Remote key holding the cache password (property `password`); overlays set kubechat/<env>/redis. Default: kubechat/ENVIRONMENT/redis."""
    database_api_remote_key: str = "kubechat/ENVIRONMENT/database-api"
    """Remote key holding the API's database password (property `password`; the username is the role's name, set here); overlays set kubechat/<env>/database-api. Default: kubechat/ENVIRONMENT/database-api."""
    database_backup_remote_key: str = "kubechat/ENVIRONMENT/database-backup"
    """Remote key holding the logical backups' database password (property `password`); overlays set kubechat/<env>/database-backup. Default: kubechat/ENVIRONMENT/database-backup."""
    refresh_interval: str = "1h"
    """How often External Secrets re-reads the store (rotation latency). Default: 1h."""

    def __post_init__(self) -> None:
        v.dns_subdomain("external_secrets.cluster_secret_store", self.cluster_secret_store)
        for name in ("api_remote_key", "redis_remote_key", "database_api_remote_key", "database_backup_remote_key"):
            value = getattr(self, name)
            if not value or " " in value:
                raise v.SettingsError(f"external_secrets.{name}", value, "a non-empty key without spaces")
        if not self.refresh_interval[:-1].isdigit() or self.refresh_interval[-1] not in "smh":
            raise v.SettingsError("external_secrets.refresh_interval", self.refresh_interval, "a duration like 15m or 1h")


def external_secret(scope: Construct, id: str, *, name: str, labels: dict, store: str, remote_key: str,
                    refresh: str, template: es.ExternalSecretSpecTargetTemplate | None = None) -> es.ExternalSecret:
    """A Secret `name` owned by External Secrets, holding every property of `remote_key` (and what
    `template` adds)."""
    return es.ExternalSecret(scope, id, metadata={"name": name, "labels": labels, "annotations": wave(Wave.CONFIGURATION)},
                             spec=es.ExternalSecretSpec(
                                 refresh_interval=refresh,
                                 secret_store_ref=es.ExternalSecretSpecSecretStoreRef(
                                     kind=es.ExternalSecretSpecSecretStoreRefKind.CLUSTER_SECRET_STORE, name=store),
                                 target=es.ExternalSecretSpecTarget(
                                     name=name, creation_policy=es.ExternalSecretSpecTargetCreationPolicy.OWNER,
                                     template=template),
                                 data_from=[es.ExternalSecretSpecDataFrom(
                                     extract=es.ExternalSecretSpecDataFromExtract(key=remote_key))]))


class KubeChatExternalSecrets(Construct):
    def __init__(self, scope: Construct, id: str, *, props: ExternalSecretsProps, api: KubeChatApi,
                 redis: KubeChatRedis, database: KubeChatDatabase) -> None:
        super().__init__(scope, id)
        # The database roles' Secrets, in the shape CloudNativePG reads: keys username (the role's name, fixed
        # here) and password (from the store), and the label that makes the operator apply a rotated
        # password (CloudNativePG v1.30.0 internal/controller/cluster_predicates.go isUsefulClusterSecret).
        # External Secrets v2.9.0 pkg/controllers/externalsecret/externalsecret_controller_template.go
        # ApplyTemplate: with mergePolicy Merge the store's properties are kept beside template.data, whose
        # keys win, and the template's labels go on the Secret.
        for id_, role, remote_key in (("database-api", database.api_role, props.database_api_remote_key),
                                      ("database-backup", database.backup_role, props.database_backup_remote_key)):
            external_secret(self, id_, name=database.role_secrets[role], labels=standard_labels("database"),
                            store=props.cluster_secret_store, remote_key=remote_key, refresh=props.refresh_interval,
                            template=es.ExternalSecretSpecTargetTemplate(
                                type="kubernetes.io/basic-auth",
                                merge_policy=es.ExternalSecretSpecTargetTemplateMergePolicy.MERGE,
                                metadata=es.ExternalSecretSpecTargetTemplateMetadata(
                                    labels={**standard_labels("database"), "cnpg.io/reload": "true"}),
                                data={"username": role}))
        for id_, secret, component, remote_key in (("api", api.secret_name, "api", props.api_remote_key),
                                                   ("redis", redis.password_secret, "redis", props.redis_remote_key)):
            external_secret(self, id_, name=secret, labels=standard_labels(component),
                            store=props.cluster_secret_store, remote_key=remote_key,
                            refresh=props.refresh_interval)
