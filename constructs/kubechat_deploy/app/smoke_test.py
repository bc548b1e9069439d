"""The post-sync smoke test: an Argo CD PostSync hook Job (this design's `helm test`) running
jobs/smoke_test.sh from a ConfigMap against the API, the web front end and the public URL; and the
SyncFail hook that records a failed sync where the alerting sees it (alert KubeChatSyncFailed)."""
from __future__ import annotations

from pathlib import Path

from cdk8s_plus_28 import k8s
from constructs import Construct

from kubechat_deploy.app.api import KubeChatApi
from kubechat_deploy.labels import selector_labels, standard_labels
from kubechat_deploy.security.pod_security import container_security_context, pod_security_context
from kubechat_deploy.delivery.sync import HOOK, HOOK_DELETE_POLICY, Wave, wave
from kubechat_deploy.app.web import KubeChatWeb
from kubechat_deploy.app.workload import Resources, env_from_config_map, env_value

PROJECT_ROOT = Path(__file__).resolve().parents[3]
IMAGE = "docker.io/curlimages/curl:8.11.1"


class SmokeTest(Construct):
    COMPONENT = "smoke-test"

    def __init__(self, scope: Construct, id: str, *, api: KubeChatApi, web: KubeChatWeb,
                 script: Path = PROJECT_ROOT / "jobs" / "smoke_test.sh") -> None:
        super().__init__(scope, id)
        self.name = "kubechat-smoke-test"
        self.pod_selector = selector_labels(self.COMPONENT)
        labels = standard_labels(self.COMPONENT)
        k8s.KubeConfigMap(self, "script", metadata=k8s.ObjectMeta(name=self.name, labels=labels,
                                                                  annotations=wave(Wave.CONFIGURATION)),
                          data={script.name: script.read_text()})
        k8s.KubeServiceAccount(self, "service-account", metadata=k8s.ObjectMeta(
            name=self.name, labels=labels, annotations=wave(Wave.NAMESPACE)), automount_service_account_token=False)
        public = [k8s.EnvVar(name=key, value_from=k8s.EnvVarSource(config_map_key_ref=k8s.ConfigMapKeySelector(
            name=api.config_map_name, key=key, optional=True))) for key in ("PUBLIC_URL", "PUBLIC_API_URL")]
        k8s.KubeJob(self, "job", metadata=k8s.ObjectMeta(name=self.name, labels=labels, annotations={
            HOOK: "PostSync", HOOK_DELETE_POLICY: "BeforeHookCreation"}),
            spec=k8s.JobSpec(backoff_limit=1, active_deadline_seconds=300, template=k8s.PodTemplateSpec(
                metadata=k8s.ObjectMeta(labels=labels),
                spec=k8s.PodSpec(
                    restart_policy="Never", service_account_name=self.name, automount_service_account_token=False,
                    security_context=pod_security_context(10001, 10001),
                    containers=[k8s.Container(
                        name="smoke-test", image=IMAGE, image_pull_policy="IfNotPresent",
                        command=["/bin/sh", f"/scripts/{script.name}"],
                        env=[env_value("API_URL", f"http://{api.service_name}:{api.props.http_port}"),
                             env_value("WEB_URL", f"http://{web.service_name}:{web.props.http_port}"), *public],
                        resources=Resources(cpu_request="10m", memory_request="16Mi", cpu_limit="100m",
                                            memory_limit="64Mi").render(),
                        security_context=container_security_context(),
                        volume_mounts=[k8s.VolumeMount(name="scripts", mount_path="/scripts", read_only=True)])],
                    volumes=[k8s.Volume(name="scripts", config_map=k8s.ConfigMapVolumeSource(name=self.name))]))))


class SyncFailureRecord(Construct):
    """A SyncFail hook Job: its creation time (kube-state-metrics kube_job_created) is the record the
    alert KubeChatSyncFailed reads, and its log says what to look at."""

    def __init__(self, scope: Construct, id: str, *, service_account: str) -> None:
        super().__init__(scope, id)
        self.name = "kubechat-sync-failed"
        labels = standard_labels("sync-failed")
        message = ("echo \"sync-failed: the Argo CD sync of namespace $NAMESPACE failed at $(date -u +%Y-%m-%dT%H:%M:%SZ). "
                   "See: argocd app get kubechat-${NAMESPACE#kubechat-}-<cluster> --show-operation "
                   "(argocd app list -l kubechat.io/environment=${NAMESPACE#kubechat-} names it); "
                   "runbook docs/runbooks/KubeChatSyncFailed.md\"")
        k8s.KubeJob(self, "job", metadata=k8s.ObjectMeta(name=self.name, labels=labels, annotations={
            HOOK: "SyncFail", HOOK_DELETE_POLICY: "BeforeHookCreation"}),
            spec=k8s.JobSpec(backoff_limit=0, active_deadline_seconds=120, template=k8s.PodTemplateSpec(
                metadata=k8s.ObjectMeta(labels=labels),
                spec=k8s.PodSpec(
                    restart_policy="Never", service_account_name=service_account,
                    automount_service_account_token=False, security_context=pod_security_context(10001, 10001),
                    containers=[k8s.Container(
                        name="record", image=IMAGE, image_pull_policy="IfNotPresent",
                        command=["/bin/sh", "-c", message],
                        env=[k8s.EnvVar(name="NAMESPACE", value_from=k8s.EnvVarSource(
                            field_ref=k8s.ObjectFieldSelector(field_path="metadata.namespace")))],
                        resources=Resources(cpu_request="10m", memory_request="16Mi", cpu_limit="50m",
                                            memory_limit="32Mi").render(),
                        security_context=container_security_context())]))))
