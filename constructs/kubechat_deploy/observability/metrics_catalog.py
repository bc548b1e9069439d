"""Every metric the alerts and dashboards use, by the scrape target expected to expose it. Tests fail
when a rule or a dashboard uses a metric that is not listed here (a typo, or a target that is gone)."""

METRICS: dict[str, tuple[str, ...]] = {
    # ServiceMonitor kubechat-api (the application contract, docs/app-contract.md)
    "kubechat-api": ("kubechat_http_requests_total", "kubechat_http_request_duration_seconds_bucket",
                     "kubechat_http_request_duration_seconds_count", "kubechat_chat_streams_active",
                     "kubechat_db_pool_connections", "go_goroutines", "process_cpu_seconds_total",
                     "process_resident_memory_bytes"),
    # ServiceMonitor kubechat-redis (redis_exporter sidecar)
    "redis_exporter": ("redis_up", "redis_memory_used_bytes", "redis_memory_max_bytes", "redis_connected_clients",
                       "redis_commands_processed_total", "redis_keyspace_hits_total", "redis_keyspace_misses_total"),
    # PodMonitor kubechat-db (CloudNativePG instance manager)
    "cloudnative-pg": ("cnpg_collector_up", "cnpg_pg_replication_lag", "cnpg_pg_stat_archiver_failed_count",
                       "cnpg_pg_stat_archiver_seconds_since_last_archival", "cnpg_pg_stat_archiver_last_archived_time",
                       "cnpg_pg_stat_archiver_last_failed_time", "cnpg_backends_total",
                       "cnpg_pg_database_size_bytes", "cnpg_pg_settings_setting"),
    # PodMonitor kubechat-db (the barman-cloud plugin's metrics, through the instance manager)
    "barman-cloud-plugin": ("barman_cloud_cloudnative_pg_io_last_available_backup_timestamp",
                            "barman_cloud_cloudnative_pg_io_first_recoverability_point"),
    # PodMonitor kubechat-db-pooler-rw (PgBouncer exporter of CloudNativePG)
    "pgbouncer": ("cnpg_pgbouncer_pools_cl_active", "cnpg_pgbouncer_pools_cl_waiting", "cnpg_pgbouncer_pools_sv_active"),
    # kube-prometheus-stack's kube-state-metrics
    "kube-state-metrics": ("kube_pod_container_status_waiting_reason", "kube_pod_container_status_restarts_total",
                           "kube_horizontalpodautoscaler_status_current_replicas",
                           "kube_horizontalpodautoscaler_spec_max_replicas",
                           "kube_poddisruptionbudget_status_pod_disruptions_allowed",
                           "kube_poddisruptionbudget_status_expected_pods", "kube_job_status_failed", "kube_job_failed",
                           "kube_cronjob_status_last_successful_time", "kube_cronjob_status_last_schedule_time", "kube_cronjob_status_active", "kube_deployment_status_replicas_available",
                           "kube_deployment_spec_replicas", "kube_job_created", "kube_pod_status_ready"),
    # kube-prometheus-stack's kubelet/cAdvisor
    "kubelet": ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes"),
    # cert-manager's controller
    "cert-manager": ("certmanager_certificate_expiration_timestamp_seconds", "certmanager_certificate_ready_status"),
    # Trivy Operator (platform prerequisite trivy-operator; honorLabels keeps the workload's namespace)
    "trivy-operator": ("trivy_image_vulnerabilities",),
    # Traefik, the front door (traefik v3.7.13 pkg/observability/metrics/prometheus.go; the platform's ServiceMonitor)
    "traefik": ("traefik_service_requests_total", "traefik_service_request_duration_seconds_bucket"),
}

# Recording rules produce these (kubechat:* names), so they count as known too.
ALL_METRICS = frozenset(m for metrics in METRICS.values() for m in metrics)
