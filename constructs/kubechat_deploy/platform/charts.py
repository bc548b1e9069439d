"""The cluster-wide platform charts (dist/platform/<name>/): Argo CD delivery objects, prerequisites,
bootstrap and the optional log stack. Imported only when the platform is synthesized (main.py); they read
PlatformProps only, never the application's constructs (tests/test_layout.py checks it in a fresh interpreter)."""
from __future__ import annotations

from cdk8s import Chart
from constructs import Construct

from kubechat_deploy.platform.argocd_config import ArgoCdConfiguration
from kubechat_deploy.delivery.access import EnvironmentDeployers
from kubechat_deploy.delivery.argocd import Delivery
from kubechat_deploy.layout import PLATFORM_PREFIX
from kubechat_deploy.platform.log_aggregation import GRAFANA_CHARTS, LoggingPlatform
from kubechat_deploy.platform.network_policies import logging_isolation, monitoring_isolation
from kubechat_deploy.platform.prerequisites import (MONITORING_NAMESPACE, PlatformBootstrap, PlatformPrerequisites,
                                                    PlatformRoot, platform_source_repos, prerequisite)
from kubechat_deploy.platform.props import PlatformProps


class LoggingPlatformChart(Chart):
    def __init__(self, scope: Construct, *, props: PlatformProps) -> None:
        super().__init__(scope, PLATFORM_PREFIX + "logging", disable_resource_name_hashes=True)
        self.logging = LoggingPlatform(self, "logging", props=props.logging)
        self.isolation = logging_isolation(self, namespace=props.logging.namespace,
                                           monitoring_namespace=MONITORING_NAMESPACE)


class DeliveryPlatformChart(Chart):
    def __init__(self, scope: Construct, *, props: PlatformProps) -> None:
        super().__init__(scope, PLATFORM_PREFIX + "delivery", disable_resource_name_hashes=True)
        self.delivery = Delivery(self, "delivery", props=props.delivery, alerting=props.alerting)
        # With the delivery objects, not the operators: this piece syncs after them (the namespace exists).
        self.monitoring_isolation = monitoring_isolation(self, namespace=MONITORING_NAMESPACE,
                                                         rollouts_namespace=prerequisite("argo-rollouts").namespace)


class DeployersChart(Chart):
    """dist/platform/deployers/: each delivered environment's namespace and the identity its Application
    syncs with, applied by hand on every cluster registered for an environment (docs/install.md), never by
    Argo CD: an Application cannot change the identity it syncs with."""

    def __init__(self, scope: Construct, *, props: PlatformProps) -> None:
        super().__init__(scope, PLATFORM_PREFIX + "deployers", disable_resource_name_hashes=True)
        self.deployers = EnvironmentDeployers(self, "deployers", props=props.delivery)


def platform_repos() -> list[str]:
    return [*platform_source_repos(), GRAFANA_CHARTS]


class PlatformPrerequisitesChart(Chart):
    def __init__(self, scope: Construct, *, props: PlatformProps) -> None:
        super().__init__(scope, PLATFORM_PREFIX + "prerequisites", disable_resource_name_hashes=True)
        self.prerequisites = PlatformPrerequisites(self, "prerequisites", delivery=props.delivery,
                                                   scanning=props.scanning, alerting=props.alerting,
                                                   front_door=props.front_door, metrics_server=props.metrics_server)


class ArgoCdConfigurationChart(Chart):
    """dist/platform/argocd/: Argo CD's configuration, kept in step from git by the root's platform-argocd."""

    def __init__(self, scope: Construct, *, props: PlatformProps) -> None:
        super().__init__(scope, PLATFORM_PREFIX + "argocd", disable_resource_name_hashes=True)
        self.configuration = ArgoCdConfiguration(self, "argocd", argocd_namespace=props.delivery.argocd_namespace,
                                                 delivery=props.delivery, access=props.argocd_access,
                                                 platform_repos=platform_repos())


class PlatformBootstrapChart(Chart):
    """dist/platform/bootstrap/: what is applied by hand once: Argo CD's configuration (the health checks
    the root's waves rely on must exist before the root syncs) and the root Application."""

    def __init__(self, scope: Construct, *, props: PlatformProps) -> None:
        super().__init__(scope, PLATFORM_PREFIX + "bootstrap", disable_resource_name_hashes=True)
        self.configuration = ArgoCdConfiguration(self, "argocd", argocd_namespace=props.delivery.argocd_namespace,
                                                 delivery=props.delivery, access=props.argocd_access,
                                                 platform_repos=platform_repos())
        self.root = PlatformBootstrap(self, "root", delivery=props.delivery)


class PlatformRootChart(Chart):
    def __init__(self, scope: Construct, *, props: PlatformProps) -> None:
        super().__init__(scope, PLATFORM_PREFIX + "root", disable_resource_name_hashes=True)
        self.children = PlatformRoot(self, "children", delivery=props.delivery)
