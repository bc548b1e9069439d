"""Monitoring: the API's ServiceMonitor, the PrometheusRule of every alert (alerts.py) and the Grafana
dashboards (dashboards.py) as ConfigMaps for Grafana's dashboard sidecar. The cache's ServiceMonitor
and the database's PodMonitors live with their constructs (redis.py, database.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

from cdk8s_plus_28 import k8s
from constructs import Construct

import imports.monitoring.com.coreos.monitoring as mon

from kubechat_deploy import validation as v
from kubechat_deploy.labels import standard_labels
from kubechat_deploy.platform.props import GRAFANA_DASHBOARDS_ROLE, GRAFANA_NAMESPACE, GRAFANA_SERVICE_ACCOUNT

REVISION_LABEL_SAFE = "rollouts_pod_template_hash"
"""Argo Rollouts' rollouts-pod-template-hash pod label as Prometheus' service discovery names it
(__meta_kubernetes_pod_label_<label with unsupported characters as _>) and as the series carry it."""


@dataclass(frozen=True, kw_only=True)
class MonitoringProps:
    """Settings shared by every ServiceMonitor, PodMonitor, PrometheusRule and dashboard."""

    discovery_labels: dict[str, str] = field(default_factory=lambda: {"release": "kube-prometheus-stack"})
    """Labels kube-prometheus-stack's Prometheus selects monitors and rules by. Default: release=kube-prometheus-stack."""
    dashboard_label: tuple[str, str] = ("grafana_dashboard", "1")
    """Label Grafana's dashboard sidecar loads ConfigMaps by. Default: grafana_dashboard=1."""
    runbook_base_url: str = "https://github.com/kubechat/kubechat-deploy/blob/main/docs/runbooks"
    """Where docs/runbooks/ is browsable; each alert links <base>/<alert>.md. Default: the repository's docs/runbooks."""

    def __post_init__(self) -> None:
        if not self.runbook_base_url.startswith("https://"):
            raise v.SettingsError("monitoring.runbook_base_url", self.runbook_base_url, "an https:// URL")
        for key in list(self.discovery_labels) + [self.dashboard_label[0]]:
            if not key or " " in key:
                raise v.SettingsError("monitoring.labels", key, "a Kubernetes label key")


class KubeChatMonitoring(Construct):
    def __init__(self, scope: Construct, id: str, *, props: MonitoringProps, api_service: str,
                 api_labels: dict[str, str], api_metrics_port: str) -> None:
        super().__init__(scope, id)
        from kubechat_deploy.observability.alerts import ALERTS, recording_rules
        from kubechat_deploy.observability.dashboards import all_dashboards, dashboard_json

        labels = {**standard_labels("monitoring"), **props.discovery_labels}
        mon.ServiceMonitor(self, "api", metadata={"name": api_service, "labels": labels},
                           spec=mon.ServiceMonitorSpec(
                               selector=mon.ServiceMonitorSpecSelector(match_labels=api_labels),
                               endpoints=[mon.ServiceMonitorSpecEndpoints(
                                   port=api_metrics_port, path="/metrics", interval="30s",
                                   # The revision of a Rollout's pod on every series, so a canary analysis can
                                   # query the canary's pods alone (progressive.py).
                                   relabelings=[mon.ServiceMonitorSpecEndpointsRelabelings(
                                       source_labels=[f"__meta_kubernetes_pod_label_{REVISION_LABEL_SAFE}"],
                                       target_label=REVISION_LABEL_SAFE)])]))
        groups: dict[str, list[dict]] = {"kubechat-slo-recording": recording_rules()}
        for alert in ALERTS:
            groups.setdefault(alert.group, []).append({
                "alert": alert.name, "expr": alert.expr, "for": alert.for_,
                "labels": {"severity": alert.severity},
                "annotations": {"summary": alert.summary, "description": alert.description,
                                "runbook_url": f"{props.runbook_base_url}/{alert.name}.md"}})
        mon.PrometheusRule(self, "rules", metadata={"name": "kubechat", "labels": labels},
                           spec=mon.PrometheusRuleSpec(groups=[
                               mon.PrometheusRuleSpecGroups(name=name, rules=[_rule(r) for r in rules])
                               for name, rules in groups.items()]))
        # Grafana's dashboard sidecar reads this namespace's ConfigMaps, nothing else of it (the platform's
        # grafana_values(): no cluster-wide role). The subject keeps Grafana's namespace: the environment's
        # transformer sets it back after the namespace transformer (environment.py).
        k8s.KubeRole(self, "grafana-dashboards", metadata=k8s.ObjectMeta(name=GRAFANA_DASHBOARDS_ROLE,
                                                                     labels=standard_labels("monitoring")),
                     rules=[k8s.PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list", "watch"])])
        k8s.KubeRoleBinding(self, "grafana-dashboards-binding",
                            metadata=k8s.ObjectMeta(name=GRAFANA_DASHBOARDS_ROLE, labels=standard_labels("monitoring")),
                            role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="Role",
                                                 name=GRAFANA_DASHBOARDS_ROLE),
                            subjects=[k8s.Subject(kind="ServiceAccount", name=GRAFANA_SERVICE_ACCOUNT,
                                                  namespace=GRAFANA_NAMESPACE)])
        key, value = props.dashboard_label
        for name, board in all_dashboards().items():
            k8s.KubeConfigMap(self, f"dashboard-{name}", metadata=k8s.ObjectMeta(
                name=f"{name}-dashboard", labels={**standard_labels("monitoring"), key: value}),
                data={f"{name}.json": dashboard_json(board)})


def _rule(rule: dict) -> mon.PrometheusRuleSpecGroupsRules:
    return mon.PrometheusRuleSpecGroupsRules(
        expr=mon.PrometheusRuleSpecGroupsRulesExpr.from_string(rule["expr"]),
        record=rule.get("record"), alert=rule.get("alert"), for_=rule.get("for"),
        labels=rule.get("labels"), annotations=rule.get("annotations"))
