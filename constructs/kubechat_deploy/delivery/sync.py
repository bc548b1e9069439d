"""Argo CD sync order. Resources carry `argocd.argoproj.io/sync-wave`; Argo CD applies a wave, waits
until it is healthy, then moves on. One table, so the order is reviewed in one place."""
from __future__ import annotations

from enum import IntEnum

WAVE = "argocd.argoproj.io/sync-wave"
HOOK = "argocd.argoproj.io/hook"
HOOK_DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"


class Wave(IntEnum):
    NAMESPACE = -3
    """Namespace, quota, limits, NetworkPolicies, RBAC, admission policies."""
    CONFIGURATION = -2
    """ConfigMaps, ExternalSecrets."""
    DATA = -1
    """PostgreSQL Cluster and pooler, Redis."""
    SAFETY_BACKUP = 0
    """Production's on-demand physical backup, before the migration touches the schema."""
    MIGRATION = 1
    """The schema migration hook: after the database is healthy, before new API pods."""
    WORKLOADS = 2
    """API, web and the backup CronJobs. With progressive delivery the Deployments are the Rollouts'
    pod templates (workloadRef), so they must exist before the Rollouts."""
    ROLLOUT = 3
    """The Argo Rollouts that take over the Deployments. The Rollouts controller refuses a Rollout whose
    workloadRef is missing (InvalidSpec, which Argo CD's Rollout health check reports Degraded), and a
    paused or analysing canary is Progressing/Suspended, so the wave (and the PostSync smoke test after
    it) waits for the canary to finish."""
    AUTOSCALING = 4
    """HorizontalPodAutoscalers, after what they scale (an HPA whose target is missing is Degraded)."""
    EXPOSURE = 5
    """The public Gateway, its HTTPRoutes and Middlewares, and the certificate."""


def wave(value: Wave) -> dict[str, str]:
    return {WAVE: str(int(value))}


def sync_hook(value: Wave) -> dict[str, str]:
    """An Argo CD Sync hook in a wave, recreated on every sync (the previous run is deleted first)."""
    return {HOOK: "Sync", HOOK_DELETE_POLICY: "BeforeHookCreation", **wave(value)}


KEEP = {SYNC_OPTIONS: "Prune=false,Delete=false"}
"""Never pruned by a sync nor deleted with the Application: data outlives a bad commit."""
COMPARE_OPTIONS = "argocd.argoproj.io/compare-options"
KEPT_AFTER_RELEASE = {**KEEP, COMPARE_OPTIONS: "IgnoreExtraneous"}
"""KEEP, for an object a later release no longer renders: it stays, and, once it is no longer in git, does not
make the Application OutOfSync (argo-cd v3.5.1 controller/state.go: an object that needs pruning and has
IgnoreExtraneous does not set the Application's sync status)."""
PER_SCHEMA_LABEL = "kubechat.io/per-schema-version"
"""An object whose name ends with the release's SCHEMA_VERSION (environment.py appends it): one per schema."""
