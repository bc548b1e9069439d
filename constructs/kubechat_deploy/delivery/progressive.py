"""Progressive delivery with Argo Rollouts (component progressive-delivery, staging and production):
a canary Rollout for the API and for the web front end that takes over their Deployments
(workloadRef), shifts the public traffic by weight in steps with pauses (the TraefikService of each host,
app/exposure.py, through Rollouts' Traefik traffic routing), and runs a Prometheus analysis (success rate,
and p95 latency for the API) of the canary's own requests in the background; a failed analysis aborts and
sends all traffic back to the stable version. The HPAs then scale the Rollouts instead of the Deployments."""
from __future__ import annotations

from dataclasses import dataclass

from cdk8s import ApiObject, JsonPatch
from constructs import Construct

import imports.argo_rollouts.io.argoproj as ro

from kubechat_deploy import validation as v
from kubechat_deploy.app.api import KubeChatApi
from kubechat_deploy.app.exposure import canary_service, stable_service
from kubechat_deploy.labels import standard_labels
from kubechat_deploy.observability.monitoring import REVISION_LABEL_SAFE
from kubechat_deploy.delivery.sync import Wave, wave
from kubechat_deploy.layout import RENDER_AS_PATCH
from kubechat_deploy.app.web import KubeChatWeb



@dataclass(frozen=True, kw_only=True)
class ProgressiveProps:
    """Canary steps and analysis thresholds (production values; staging patches shorter pauses)."""

    prometheus_address: str = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    """Prometheus the analysis queries. Default: kube-prometheus-stack's Service in monitoring."""
    steps: tuple[tuple[int, str], ...] = ((20, "2m"), (50, "5m"), (100, "0s"))
    """(canary weight %, pause after it) in order. Default: 20% for 2m, 50% for 5m, then 100%."""
    min_success_rate: float = 0.99
    """Analysis fails below this share of non-5xx requests. Default: 0.99."""
    max_p95_seconds: float = 0.5
    """Analysis fails above this p95 latency (API, non-streaming). Default: 0.5."""

    def __post_init__(self) -> None:
        if not self.prometheus_address.startswith(("http://", "https://")):
            raise v.SettingsError("progressive.prometheus_address", self.prometheus_address, "an http(s):// URL")
        weights = [w for w, _ in self.steps]
        if not weights or weights != sorted(weights) or weights[-1] != 100 or weights[0] <= 0:
            raise v.SettingsError("progressive.steps", self.steps, "increasing weights from 1 to 100, ending at 100")
        if not 0 < self.min_success_rate <= 1:
            raise v.SettingsError("progressive.min_success_rate", self.min_success_rate, "a ratio in (0, 1]")


def api_queries(props: ProgressiveProps) -> dict[str, tuple[str, str, str]]:
    """metric name -> (PromQL with {{args.namespace}} and {{args.canary-hash}}, good, bad). Only the canary's
    pods are measured: the API ServiceMonitor puts the pod's rollouts-pod-template-hash on its series."""
    sel = f'job="kubechat-api",namespace="{{{{args.namespace}}}}",{REVISION_LABEL_SAFE}="{{{{args.canary-hash}}}}"'
    return {
        # 1 - errors/all: a canary answering only 5xx is 0 (Failed), not an empty ratio (Inconclusive).
        "success-rate": (f'1 - (sum(rate(kubechat_http_requests_total{{{sel},code=~"5.."}}[2m])) or vector(0))\n/\n'
                         f'sum(rate(kubechat_http_requests_total{{{sel}}}[2m]))',
                         f">= {props.min_success_rate}", f"< {props.min_success_rate}"),
        "p95-latency": (f'histogram_quantile(0.95, sum by (le) (rate(kubechat_http_request_duration_seconds_bucket'
                        f'{{{sel},route!~"/api/chat/stream.*"}}[2m])))',
                        f"<= {props.max_p95_seconds}", f"> {props.max_p95_seconds}"),
    }


def web_queries(props: ProgressiveProps) -> dict[str, tuple[str, str, str]]:
    """Traefik's request counter for the canary's share of the web's traffic: the TraefikService splits each
    host's requests between the stable and the canary Service (app/exposure.py), and Traefik counts each
    Kubernetes Service of a TraefikService apart, named `<namespace>-<service>-<port>@kubernetescrd` (traefik
    v3.7.13 pkg/provider/kubernetes/crd/kubernetes_http.go fullServiceName; the provider's name is appended to
    every name it builds; pkg/observability/metrics/prometheus.go: traefik_service_requests_total{code, method,
    protocol, service}). The platform's ServiceMonitor keeps that `service` label (honorLabels)."""
    service = f'{{{{args.namespace}}}}-{canary_service("kubechat-web")}-http@kubernetescrd'
    sel = f'service="{service}"'
    return {
        "success-rate": (f'1 - (sum(rate(traefik_service_requests_total{{{sel},code=~"5.."}}[2m])) or vector(0))\n/\n'
                         f'sum(rate(traefik_service_requests_total{{{sel}}}[2m]))',
                         f">= {props.min_success_rate}", f"< {props.min_success_rate}"),
    }


ANALYSIS_INITIAL_DELAY = "1m"
"""Wait before the first measurement; every canary pause must be longer (kubechat_tools/release.py checks
the rendered Rollouts), or the canary is promoted before it was measured."""


def conditions(good: str, bad: str) -> tuple[str, str]:
    """(successCondition, failureCondition) over a Prometheus vector. No series, or NaN (0/0: no requests
    in the window), satisfies neither: the measurement is Inconclusive and the Rollout pauses for a
    person instead of promoting a canary nobody measured (argo-rollouts utils/evaluate/evaluate.go:
    EvaluateResult; isNaN is among its functions)."""
    measured = "len(result) > 0 && !isNaN(result[0])"
    return f"{measured} && result[0] {good}", f"{measured} && result[0] {bad}"


class ProgressiveDelivery(Construct):
    def __init__(self, scope: Construct, id: str, *, props: ProgressiveProps, api: KubeChatApi,
                 web: KubeChatWeb) -> None:
        super().__init__(scope, id)
        for workload, deployment, service, queries in (("api", api.workload.name, api.service_name, api_queries(props)),
                                                       ("web", web.workload.name, web.service_name, web_queries(props))):
            labels = standard_labels(workload)
            template = f"{deployment}-canary"
            ro.AnalysisTemplate(self, f"{workload}-analysis", metadata={"name": template, "labels": labels},
                                spec=ro.AnalysisTemplateSpec(
                                    args=[ro.AnalysisTemplateSpecArgs(name="namespace"),
                                          ro.AnalysisTemplateSpecArgs(name="canary-hash")],
                                    metrics=[ro.AnalysisTemplateSpecMetrics(
                                        name=name, interval="1m", count=ro.AnalysisTemplateSpecMetricsCount.from_number(5),
                                        # rate(...[2m]) needs two scrapes (30 s apart) of the canary's own
                                        # series: measuring at once would find none (Inconclusive, paused).
                                        initial_delay=ANALYSIS_INITIAL_DELAY,
                                        # The first measurement is taken when the canary reaches its first step;
                                        # one failure aborts, before any pause can end and promote it.
                                        failure_limit=ro.AnalysisTemplateSpecMetricsFailureLimit.from_number(0),
                                        success_condition=conditions(good, bad)[0],
                                        failure_condition=conditions(good, bad)[1],
                                        provider=ro.AnalysisTemplateSpecMetricsProvider(
                                            prometheus=ro.AnalysisTemplateSpecMetricsProviderPrometheus(
                                                address=props.prometheus_address, query=query)))
                                        for name, (query, good, bad) in queries.items()]))
            steps = []
            for weight, pause in props.steps:
                steps.append(ro.RolloutSpecStrategyCanarySteps(set_weight=weight))
                if pause != "0s":
                    steps.append(ro.RolloutSpecStrategyCanarySteps(pause=ro.RolloutSpecStrategyCanaryStepsPause(
                        duration=ro.RolloutSpecStrategyCanaryStepsPauseDuration.from_string(pause))))
            ro.Rollout(self, f"{workload}-rollout", metadata={"name": deployment, "labels": labels,
                                                              "annotations": wave(Wave.ROLLOUT)},
                       spec=ro.RolloutSpec(
                           # The HPA scales the Rollout through its scale subresource, which needs
                           # spec.replicas to exist (without it: "the spec replicas field does not exist",
                           # seen on a real API server). 1 at creation; the HPA raises it to its minimum at
                           # once, and Argo CD ignores the field afterwards (ignoreDifferences).
                           replicas=1,
                           workload_ref=ro.RolloutSpecWorkloadRef(api_version="apps/v1", kind="Deployment",
                                                                  name=deployment, scale_down="progressively"),
                           revision_history_limit=5,
                           strategy=ro.RolloutSpecStrategy(canary=ro.RolloutSpecStrategyCanary(
                               max_unavailable=ro.RolloutSpecStrategyCanaryMaxUnavailable.from_number(0),
                               # Weights move the TraefikService named after the workload's Service between
                               # these two Services (argo-rollouts v1.9.1 rollout/trafficrouting/traefik/traefik.go
                               # SetWeight: spec.weighted.services, matched by name).
                               stable_service=stable_service(service), canary_service=canary_service(service),
                               traffic_routing=ro.RolloutSpecStrategyCanaryTrafficRouting(
                                   traefik=ro.RolloutSpecStrategyCanaryTrafficRoutingTraefik(
                                       weighted_traefik_service_name=service)),
                               abort_scale_down_delay_seconds=30,
                               analysis=ro.RolloutSpecStrategyCanaryAnalysis(
                                   templates=[ro.RolloutSpecStrategyCanaryAnalysisTemplates(template_name=template)],
                                   starting_step=1,
                                   args=[ro.RolloutSpecStrategyCanaryAnalysisArgs(
                                       name="namespace", value_from=ro.RolloutSpecStrategyCanaryAnalysisArgsValueFrom(
                                           field_ref=ro.RolloutSpecStrategyCanaryAnalysisArgsValueFromFieldRef(
                                               field_path="metadata.namespace"))),
                                         ro.RolloutSpecStrategyCanaryAnalysisArgs(
                                       name="canary-hash", value_from=ro.RolloutSpecStrategyCanaryAnalysisArgsValueFrom(
                                           pod_template_hash_value="Latest"))]),
                               steps=steps))))
            hpa = ApiObject(self, f"{workload}-hpa-patch", api_version="autoscaling/v2",
                            kind="HorizontalPodAutoscaler", metadata={"name": deployment, "annotations": dict(RENDER_AS_PATCH)})
            hpa.add_json_patch(JsonPatch.add("/spec", {"scaleTargetRef": {
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": deployment}}))
