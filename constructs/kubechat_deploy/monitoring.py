"""How Prometheus (kube-prometheus-stack) finds KubeChat's monitors."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class MonitoringProps:
    """Settings shared by every ServiceMonitor, PodMonitor and PrometheusRule."""

    discovery_labels: dict[str, str] = field(default_factory=lambda: {"release": "kube-prometheus-stack"})
    """Labels kube-prometheus-stack's Prometheus selects monitors and rules by. Default: release=kube-prometheus-stack."""
