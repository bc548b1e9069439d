"""Every KubeChat alert, with its runbook, in one table. The PrometheusRule objects, the runbooks in
docs/runbooks/ (scripts/runbooks.py) and the promtool unit tests (tests/rules/) all come from here.

Expressions are environment-neutral and aggregate `by (namespace)`: kube-prometheus-stack must set
`enforcedNamespaceLabel: namespace` (docs/platform.md), so each environment's rules only see its own
namespace's series."""
from __future__ import annotations

from dataclasses import dataclass

SLO_AVAILABILITY = 0.999
"""Share of API requests that must not fail with a 5xx, over 30 days."""
SLO_LATENCY_SECONDS = 0.5
"""Non-streaming API requests must finish within this..."""
SLO_LATENCY_TARGET = 0.99
"""...for this share of requests, over 30 days."""
NON_STREAMING = 'route!~"/api/chat/stream.*"'
PHYSICAL_BACKUP_MAX_AGE_HOURS = 26
"""Daily base backups plus two hours of slack."""
LOGICAL_BACKUP_MAX_AGE_HOURS = 26
CERTIFICATE_MIN_DAYS = 14

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


@dataclass(frozen=True)
class Alert:
    name: str
    group: str
    expr: str
    for_: str
    severity: str  # critical pages someone; warning opens a ticket
    summary: str
    description: str
    means: str
    confirm: str
    fix: str
    escalate: str
    logs: str = ""


def recording_rules() -> list[dict]:
    """Error and slow-request ratios per window, the inputs of the burn-rate alerts."""
    rules = []
    for w in WINDOWS:
        rules.append({"record": f"kubechat:api_errors:ratio_rate{w}", "expr": (
            f'sum by (namespace) (rate(kubechat_http_requests_total{{job="kubechat-api",code=~"5.."}}[{w}]))\n'
            f'/\nsum by (namespace) (rate(kubechat_http_requests_total{{job="kubechat-api"}}[{w}]))')})
        rules.append({"record": f"kubechat:api_slow:ratio_rate{w}", "expr": (
            f'1 - (\n  sum by (namespace) (rate(kubechat_http_request_duration_seconds_bucket{{job="kubechat-api",'
            f'{NON_STREAMING},le="{SLO_LATENCY_SECONDS}"}}[{w}]))\n  /\n  sum by (namespace) (rate('
            f'kubechat_http_request_duration_seconds_count{{job="kubechat-api",{NON_STREAMING}}}[{w}]))\n)')})
    return rules


def _burn(kind: str, budget: float, factor: float, long: str, short: str) -> str:
    threshold = round(factor * budget, 6)
    return (f"kubechat:api_{kind}:ratio_rate{long} > {threshold}\n"
            f"and\nkubechat:api_{kind}:ratio_rate{short} > {threshold}")


ERROR_BUDGET = round(1 - SLO_AVAILABILITY, 6)
LATENCY_BUDGET = round(1 - SLO_LATENCY_TARGET, 6)
KSM = 'job="kube-state-metrics"'

SLO_CONFIRM = ("Open the API dashboard (KubeChat / API): the error ratio and latency panels show which "
               "routes and since when. `kubectl -n <namespace> get pods -l app.kubernetes.io/component=api` "
               "and `kubectl -n <namespace> rollout history deployment/kubechat-api` tell whether a rollout "
               "coincides.")
SLO_FIX = ("If a rollout started it, roll back (docs/upgrade.md). If the database or cache is the cause, "
           "follow KubeChatPostgresDown / KubeChatRedisDown. If the API is saturated (CPU, pool), check "
           "KubeChatHpaAtMaximum and raise the HPA maximum or the resources in overlays/<env>/.")
def last_run_failed(cronjob: str) -> str:
    """The CronJob's newest scheduled run ended without success: none of its Jobs is active
    (kube_cronjob_status_active, the length of status.active: kube-state-metrics v2.19.1
    internal/store/cronjob.go), nothing succeeded since that run was scheduled (or nothing ever did), and it
    was scheduled at least ten minutes ago. No fixed deadline: a run takes as long as the database's size makes
    it (its Job's activeDeadlineSeconds, sized from the database, ends one that hangs), and a long run that is
    still going never alerts. Read from the CronJob's own status, not from kept Jobs: finished Jobs are deleted
    an hour after they end (their scratch volumes count against the storage quota), and a failed Job kept
    after the next success would keep the alert firing. Clears with the next successful run."""
    sel = f'{KSM},cronjob="{cronjob}"'
    scheduled = f"max by (namespace) (kube_cronjob_status_last_schedule_time{{{sel}}})"
    succeeded = f"max by (namespace) (kube_cronjob_status_last_successful_time{{{sel}}})"
    active = f"max by (namespace) (kube_cronjob_status_active{{{sel}}})"
    return (f"(\n  {scheduled} > on (namespace) {succeeded}\n  or\n  {scheduled} unless on (namespace) {succeeded}\n)\n"
            f"and on (namespace)\n({active} == 0)\n"
            f"and on (namespace)\n(time() - {scheduled} > 600)")


ESCALATE_APP = "Page the KubeChat API team's on-call with the dashboard link and the first error lines."
ESCALATE_DB = "Page the database on-call; for data loss follow docs/disaster-recovery.md."
ESCALATE_PLATFORM = "Escalate to the platform team (cluster, storage, the front door, cert-manager)."
ESCALATE_SECURITY = ("Tell the security on-call with the CVE ids; if the CVE is exploited in the wild or reachable "
                     "from the internet, treat it as an incident (docs/security.md, Responding to a critical CVE).")

ALERTS: tuple[Alert, ...] = (
    Alert("KubeChatApiErrorBudgetFastBurn", "kubechat-slo",
          _burn("errors", ERROR_BUDGET, 14.4, "1h", "5m"), "2m", "critical",
          "The API is failing requests fast enough to spend 2% of the 30-day error budget in an hour.",
          "More than 14.4 times the allowed error ratio ({{ $value | humanizePercentage }}) in {{ $labels.namespace }}, over both 1h and 5m.",
          f"Users see errors now. At this rate the monthly budget ({SLO_AVAILABILITY:.1%} availability) is gone in about two days.",
          SLO_CONFIRM, SLO_FIX, ESCALATE_APP,
          '{namespace="<namespace>", app_kubernetes_io_component="api"} | json | level="error"'),
    Alert("KubeChatApiErrorBudgetSlowBurn", "kubechat-slo",
          _burn("errors", ERROR_BUDGET, 6, "6h", "30m"), "15m", "warning",
          "The API is failing requests fast enough to spend 5% of the 30-day error budget in six hours.",
          "More than 6 times the allowed error ratio in {{ $labels.namespace }}, over both 6h and 30m.",
          "A steady trickle of errors: not an outage, but the error budget will not last the month.",
          SLO_CONFIRM, SLO_FIX, ESCALATE_APP,
          '{namespace="<namespace>", app_kubernetes_io_component="api"} | json | status >= 500'),
    Alert("KubeChatApiLatencyBudgetFastBurn", "kubechat-slo",
          _burn("slow", LATENCY_BUDGET, 14.4, "1h", "5m"), "2m", "critical",
          f"API requests slower than {SLO_LATENCY_SECONDS}s are burning the latency budget fast.",
          f"More than 14.4 times the allowed share of requests slower than {SLO_LATENCY_SECONDS}s in {{{{ $labels.namespace }}}}.",
          f"The API is slow for many users now (objective: {SLO_LATENCY_TARGET:.0%} of non-streaming requests "
          f"within {SLO_LATENCY_SECONDS}s).", SLO_CONFIRM, SLO_FIX, ESCALATE_APP,
          '{namespace="<namespace>", app_kubernetes_io_component="api"} | json | duration_ms > 500'),
    Alert("KubeChatApiLatencyBudgetSlowBurn", "kubechat-slo",
          _burn("slow", LATENCY_BUDGET, 6, "6h", "30m"), "15m", "warning",
          f"API requests slower than {SLO_LATENCY_SECONDS}s are steadily burning the latency budget.",
          "More than 6 times the allowed share of slow requests in {{ $labels.namespace }}, over 6h and 30m.",
          "The API has become slower; users notice, the budget will not last the month.",
          SLO_CONFIRM, SLO_FIX, ESCALATE_APP,
          '{namespace="<namespace>", app_kubernetes_io_component="api"} | json | duration_ms > 500'),
    Alert("KubeChatPodCrashLooping", "kubechat-workloads",
          f'max by (namespace, pod, container) (kube_pod_container_status_waiting_reason{{{KSM},reason="CrashLoopBackOff"}}) == 1',
          "5m", "critical", "A KubeChat container is crash-looping.",
          "{{ $labels.container }} in {{ $labels.namespace }}/{{ $labels.pod }} has been in CrashLoopBackOff for 5 minutes.",
          "The container starts and dies over and over; its replicas serve nothing.",
          "`kubectl -n <namespace> describe pod <pod>` (Last State, exit code, events) and "
          "`kubectl -n <namespace> logs <pod> -c <container> --previous`.",
          "Exit code 137/OOMKilled: raise the memory limit in overlays/<env>/resources.yaml. Configuration "
          "errors in the logs: fix the ConfigMap or Secret (docs/security.md). A bad image: roll back.",
          ESCALATE_APP, '{namespace="<namespace>", pod="<pod>"}'),
    Alert("KubeChatPodRestartingOften", "kubechat-workloads",
          f'increase(kube_pod_container_status_restarts_total{{{KSM}}}[1h]) > 3', "0m", "warning",
          "A KubeChat container restarted more than 3 times in an hour.",
          "{{ $labels.container }} in {{ $labels.namespace }}/{{ $labels.pod }} restarted {{ $value }} times in the last hour.",
          "Something kills the container intermittently: memory limit, failing liveness probe, or crashes.",
          "`kubectl -n <namespace> get events --field-selector involvedObject.name=<pod>` and the previous logs.",
          "Liveness failures under load: check the probe timings in docs/app-contract.md and the CPU limit. "
          "OOM: raise memory. Crashes: escalate with the stack trace.", ESCALATE_APP,
          '{namespace="<namespace>", pod="<pod>"} |= "panic"'),
    Alert("KubeChatHpaAtMaximum", "kubechat-workloads",
          f'kube_horizontalpodautoscaler_status_current_replicas{{{KSM}}}\n>=\nkube_horizontalpodautoscaler_spec_max_replicas{{{KSM}}}',
          "30m", "warning", "A KubeChat autoscaler has been at its maximum for 30 minutes.",
          "{{ $labels.namespace }}/{{ $labels.horizontalpodautoscaler }} runs at its maximum replicas.",
          "Demand exceeds what the autoscaler may give; latency and errors follow if it grows further.",
          "`kubectl -n <namespace> describe hpa <hpa>`: current versus target utilization.",
          "Raise maxReplicas in overlays/<env>/scaling.yaml, checking the ResourceQuota and the database "
          "connection budget (docs/data-tier.md) allow it.", ESCALATE_PLATFORM),
    Alert("KubeChatPdbBlockingDisruption", "kubechat-workloads",
          f'kube_poddisruptionbudget_status_pod_disruptions_allowed{{{KSM}}} == 0\nand\n'
          f'kube_poddisruptionbudget_status_expected_pods{{{KSM}}} > 1', "1h", "warning",
          "A KubeChat PodDisruptionBudget allows no disruption.",
          "{{ $labels.namespace }}/{{ $labels.poddisruptionbudget }} has allowed no disruption for an hour.",
          "Node drains and cluster upgrades are blocked: pods of this workload are unhealthy or too few.",
          "`kubectl -n <namespace> get pdb` and the pods it selects: are some not Ready?",
          "Fix the unready pods (see KubeChatPodCrashLooping); the budget allows one disruption once all are ready.",
          ESCALATE_PLATFORM),
    Alert("KubeChatPostgresDown", "kubechat-data",
          'sum by (namespace) (cnpg_collector_up{cluster="kubechat-db"}) == 0\n'
          'or\nabsent(cnpg_collector_up{cluster="kubechat-db"})', "2m", "critical",
          "KubeChat's PostgreSQL is down.", "No PostgreSQL instance of kubechat-db is up in {{ $labels.namespace }}.",
          "The API cannot serve; readiness fails and the front door returns errors.",
          "`kubectl -n <namespace> get cluster kubechat-db` and `kubectl cnpg status kubechat-db -n <namespace>`.",
          "Follow the operator's status: storage full (expand the PVC size in overlays/<env>/database.yaml), "
          "failed node (the operator fails over), lost cluster (docs/disaster-recovery.md).", ESCALATE_DB,
          '{namespace="<namespace>", pod=~"kubechat-db-.*"} | json | error_severity=~"FATAL|PANIC"'),
    Alert("KubeChatPostgresReplicationLag", "kubechat-data",
          'max by (namespace, pod) (cnpg_pg_replication_lag) > 30', "5m", "warning",
          "A PostgreSQL replica lags more than 30 seconds behind.",
          "{{ $labels.namespace }}/{{ $labels.pod }} is {{ $value }}s behind the primary.",
          "A failover now would lose those seconds of writes, and read replicas serve stale data.",
          "`kubectl cnpg status kubechat-db -n <namespace>` (replication section).",
          "Usually heavy writes or a slow disk: check IO on the replica's node; recreate a broken replica with "
          "`kubectl cnpg destroy kubechat-db <instance> -n <namespace>`.", ESCALATE_DB),
    # As CloudNativePG's sample rules do (docs/src/samples/monitoring/prometheusrule.yaml at v1.30.0,
    # LastFailedArchiveTime): the last failure is newer than the last success. An idle primary archives
    # nothing for hours and has not failed: silent.
    Alert("KubeChatWalArchivingFailing", "kubechat-backups",
          'cnpg_pg_stat_archiver_last_failed_time - cnpg_pg_stat_archiver_last_archived_time > 1', "10m", "critical",
          "WAL archiving to the object store is failing.",
          "{{ $labels.namespace }}/{{ $labels.pod }} cannot archive WAL: its last archiving attempt failed, after the last success.",
          "Point-in-time recovery stops at the last archived segment, and WAL piles up on the data volume until it fills.",
          "`kubectl cnpg status kubechat-db -n <namespace>` (Continuous Backup status) and the plugin sidecar's logs: "
          "`kubectl -n <namespace> logs <primary> -c plugin-barman-cloud`.",
          "Credentials (the ExternalSecret kubechat-backup-credentials), bucket permissions or endpoint: fix them "
          "in the secret store or overlays/<env>/backups.yaml; archiving resumes by itself.", ESCALATE_DB,
          '{namespace="<namespace>", container="plugin-barman-cloud"} |= "error"'),
    Alert("KubeChatPhysicalBackupTooOld", "kubechat-backups",
          f'time() - max by (namespace) (barman_cloud_cloudnative_pg_io_last_available_backup_timestamp) '
          f'> {PHYSICAL_BACKUP_MAX_AGE_HOURS} * 3600', "10m", "critical",
          f"The newest base backup is older than {PHYSICAL_BACKUP_MAX_AGE_HOURS} hours.",
          "The last successful physical backup of {{ $labels.namespace }} is {{ $value | humanizeDuration }} old.",
          "The daily ScheduledBackup did not succeed; recovery needs more WAL replay and retention may drop the last good backup.",
          "`kubectl -n <namespace> get backups --sort-by=.metadata.creationTimestamp` and "
          "`kubectl -n <namespace> describe scheduledbackup kubechat-db-daily`.",
          "Fix the cause in the failed Backup's status, then take one now: "
          "`kubectl cnpg backup kubechat-db -n <namespace> --method plugin --plugin-name barman-cloud.cloudnative-pg.io`.",
          ESCALATE_DB),
    Alert("KubeChatLogicalBackupFailed", "kubechat-backups", last_run_failed("kubechat-logical-backup"),
          "0m", "warning", "A logical backup (pg_dump) failed.",
          "The last scheduled kubechat-logical-backup run in {{ $labels.namespace }} did not succeed.",
          "Last night's dump is missing; older dumps are untouched (the script deletes nothing after a failure).",
          "The Job's logs in Loki (the query below; `kubectl -n <namespace> logs job/<job>` within an hour of "
          "its end, before the Job is removed): the line starting `logical-backup: FAILED:` names the step.",
          "Fix what the step names (database reachability, credentials, BACKUP_TARGET, space), then run one now: "
          "`kubectl -n <namespace> create job --from=cronjob/kubechat-logical-backup manual-$(date +%s)`. "
          "`the audit trail contradicts what earlier backups recorded of it`: audit rows an earlier backup anchored "
          "are missing or rewritten in the live database (someone with the owner's or a superuser's rights removed "
          "them; the API's role cannot): the new dump was stored and no backup was deleted. Do not prune or "
          "restore; keep the backups named in the message and escalate to security at once. Every run fails so, "
          "and retention stays stopped, until the manifests named are moved out of BACKUP_TARGET once the "
          "investigation has kept them elsewhere.",
          ESCALATE_DB + " Audit-anchor failures also go to security.",
          '{namespace="<namespace>", job_name=~"kubechat-logical-backup-.*"} |= "FAILED"'),
    Alert("KubeChatLogicalBackupTooOld", "kubechat-backups",
          f'time() - max by (namespace) (kube_cronjob_status_last_successful_time{{{KSM},cronjob="kubechat-logical-backup"}}) '
          f'> {LOGICAL_BACKUP_MAX_AGE_HOURS} * 3600', "10m", "warning",
          f"No logical backup succeeded in {LOGICAL_BACKUP_MAX_AGE_HOURS} hours.",
          "The last successful pg_dump of {{ $labels.namespace }} is {{ $value | humanizeDuration }} old.",
          "The nightly dump is failing or not scheduled (suspended CronJob, quota).",
          "`kubectl -n <namespace> get cronjob kubechat-logical-backup` (LAST SCHEDULE, SUSPEND) and its Jobs.",
          "See KubeChatLogicalBackupFailed; a suspended CronJob: `kubectl patch cronjob ... -p '{\"spec\":{\"suspend\":false}}'`.",
          ESCALATE_DB),
    Alert("KubeChatRestoreDrillFailed", "kubechat-backups", last_run_failed("kubechat-restore-drill"),
          "0m", "critical", "The weekly restore drill failed: the newest logical backup may not restore.",
          "The last scheduled kubechat-restore-drill run in {{ $labels.namespace }} did not succeed.",
          "A backup that does not restore is no backup: checksum, schema version, row counts or the audit chain did not match.",
          "The Job's logs in Loki (the query below; `kubectl -n <namespace> logs job/<job>` within an hour of "
          "its end): `restore-drill: FAILED:` says what did not match.",
          "Checksum mismatch: the object in the store was altered; take a new dump and investigate access. "
          "Audit chain broken: the database itself was tampered with; run `SELECT * FROM audit_verify_chain()` "
          "on the primary and escalate to security.", ESCALATE_DB + " Audit-chain failures also go to security.",
          '{namespace="<namespace>", job_name=~"kubechat-restore-drill-.*"}'),
    Alert("KubeChatMigrationFailed", "kubechat-backups",
          # The Job's Failed condition (kube-state-metrics' kube_job_failed, internal/store/job.go), not its failed
          # pods (kube_job_status_failed): a migration that succeeded on its second attempt has one failed pod.
          f'max by (namespace) (kube_job_failed{{{KSM},job_name="kubechat-migrate",condition="true"}}) > 0', "0m", "critical",
          "The schema migration Job failed; the sync is stopped before the new API.",
          "kubechat-migrate failed in {{ $labels.namespace }}.",
          "The release cannot roll out; the database may be marked dirty.",
          "`kubectl -n <namespace> logs job/kubechat-migrate`.",
          "Follow docs/data-tier.md, section \"A dirty schema\".", ESCALATE_APP,
          '{namespace="<namespace>", job_name="kubechat-migrate"}'),
    Alert("KubeChatSyncFailed", "kubechat-delivery",
          f'max by (namespace) (time() - kube_job_created{{{KSM},job_name="kubechat-sync-failed"}}) < 3600',
          "0m", "warning", "An Argo CD sync of KubeChat failed in the last hour.",
          "The SyncFail hook ran in {{ $labels.namespace }}: the last sync did not complete.",
          "The environment runs a mix of the previous and the new release, or the release did not start "
          "(migration, smoke test or an apply failed). Argo CD retries with backoff.",
          "`argocd app get kubechat-<env>-<cluster> --show-operation` (the ApplicationSet names each "
          "environment's Application after its cluster: `argocd app list -l kubechat.io/environment=<env>`) "
          "names the failed resource; "
          "`kubectl -n <namespace> logs job/kubechat-sync-failed` has the time.",
          "Fix what the operation names (KubeChatMigrationFailed, a smoke-test failure in "
          "`kubectl -n <namespace> logs job/kubechat-smoke-test`, a rejected manifest), or roll back "
          "(docs/upgrade.md).", ESCALATE_APP, '{namespace="<namespace>", job_name=~"kubechat-(sync-failed|smoke-test)"}'),
    Alert("KubeChatCertificateExpiringSoon", "kubechat-tls",
          f'min by (namespace, name) (certmanager_certificate_expiration_timestamp_seconds) - time() '
          f'< {CERTIFICATE_MIN_DAYS} * 86400', "1h", "warning",
          f"A KubeChat TLS certificate expires within {CERTIFICATE_MIN_DAYS} days.",
          "{{ $labels.namespace }}/{{ $labels.name }} expires in {{ $value | humanizeDuration }}.",
          "cert-manager should have renewed it 30 days before expiry (renewBefore 720h); renewal is failing.",
          "`kubectl -n <namespace> describe certificate kubechat-tls` and `kubectl get challenges -A`.",
          "HTTP-01 cannot reach the front door (DNS, firewall, port 80) or the issuer is rate-limited: see docs/platform.md, TLS.",
          ESCALATE_PLATFORM),
    Alert("KubeChatCertificateNotReady", "kubechat-tls",
          'max by (namespace, name) (certmanager_certificate_ready_status{condition="False"}) == 1', "15m", "critical",
          "A KubeChat TLS certificate is not ready.",
          "{{ $labels.namespace }}/{{ $labels.name }} has not been Ready for 15 minutes.",
          "New certificates are not served; an expired one breaks HTTPS for every user.",
          "`kubectl -n <namespace> describe certificate kubechat-tls`, then its CertificateRequest and Order.",
          "As for KubeChatCertificateExpiringSoon.", ESCALATE_PLATFORM),
    Alert("KubeChatRedisDown", "kubechat-data",
          'max by (namespace) (redis_up{job="kubechat-redis"}) == 0\nor\nabsent(redis_up{job="kubechat-redis"})',
          "2m", "critical", "KubeChat's cache is down.", "redis_exporter cannot reach Valkey in {{ $labels.namespace }}.",
          "Sessions and caches are unavailable; the API's readiness fails.",
          "`kubectl -n <namespace> get pods -l app.kubernetes.io/component=redis` and the valkey container's logs.",
          "A full volume (append-only file): expand it (overlays/<env>/redis-storage.yaml); a crash: see the logs.",
          ESCALATE_PLATFORM, '{namespace="<namespace>", container="valkey"}'),
    Alert("KubeChatRedisMemoryHigh", "kubechat-data",
          'max by (namespace) (redis_memory_used_bytes{job="kubechat-redis"} / redis_memory_max_bytes{job="kubechat-redis"}) > 0.9',
          "15m", "warning", "KubeChat's cache is above 90% of maxmemory.",
          "Valkey in {{ $labels.namespace }} uses {{ $value | humanizePercentage }} of maxmemory.",
          "Keys without TTL cannot be evicted (volatile-lru); writes fail when it is full.",
          "`kubectl -n <namespace> exec -it kubechat-redis-0 -c valkey -- valkey-cli info memory`.",
          "Raise REDIS_MAXMEMORY with the memory limit in overlays/<env>/redis.yaml; look for keys without TTL.",
          ESCALATE_APP),
    Alert("KubeChatCriticalVulnerability", "kubechat-security",
          'sum by (namespace, resource_kind, resource_name, container_name, image_repository, image_tag) '
          '(trivy_image_vulnerabilities{severity="Critical"}) > 0',
          "15m", "warning", "A running KubeChat workload has a critical vulnerability with a fix available.",
          "{{ $labels.resource_kind }}/{{ $labels.resource_name }} (container {{ $labels.container_name }}, "
          "{{ $labels.image_repository }}:{{ $labels.image_tag }}) in {{ $labels.namespace }} has "
          "{{ $value }} critical vulnerabilities.",
          "Trivy Operator rescanned a running image and found CRITICAL CVEs that have a fix. Admission checked the "
          "image when it was deployed; CVEs published since then only show up here.",
          "`kubectl -n <namespace> get vulnerabilityreports -o wide`, then `kubectl -n <namespace> get "
          "vulnerabilityreport <name> -o jsonpath='{range .report.vulnerabilities[?(@.severity==\"CRITICAL\")]}"
          "{.vulnerabilityID} {.resource} {.installedVersion} -> {.fixedVersion}{\"\\n\"}{end}'`.",
          "KubeChat images: rebuild on the fixed version, then scan, sign, attest and release (docs/security.md, "
          "Responding to a critical CVE). Third-party images: bump the pinned tag in its props (docs/configuration.md) "
          "and release. Until then, check whether the vulnerable code is reachable.",
          ESCALATE_SECURITY),
)
