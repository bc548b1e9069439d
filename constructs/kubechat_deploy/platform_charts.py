"""The cluster-wide platform charts (dist/platform/<name>/): Argo CD delivery objects, prerequisites,
bootstrap and the optional log stack. Imported only when the platform is synthesized (main.py)."""
from __future__ import annotations

from cdk8s import Chart
from constructs import Construct

from .chart import KubeChatProps
from .delivery import Delivery
from .layout import PLATFORM_PREFIX
from .logging_platform import LoggingPlatform
from .platform import PlatformBootstrap, PlatformPrerequisites, PlatformRoot


class LoggingPlatformChart(Chart):
    def __init__(self, scope: Construct, *, props: KubeChatProps) -> None:
        super().__init__(scope, PLATFORM_PREFIX + "logging", disable_resource_name_hashes=True)
        self.logging = LoggingPlatform(self, "logging", props=props.logging)


class DeliveryPlatformChart(Chart):
    def __init__(self, scope: Construct, *, props: KubeChatProps) -> None:
        super().__init__(scope, PLATFORM_PREFIX + "delivery", disable_resource_name_hashes=True)
        self.delivery = Delivery(self, "delivery", props=props.delivery)



class PlatformPrerequisitesChart(Chart):
    def __init__(self, scope: Construct, *, props: KubeChatProps) -> None:
        super().__init__(scope, PLATFORM_PREFIX + "prerequisites", disable_resource_name_hashes=True)
        self.prerequisites = PlatformPrerequisites(self, "prerequisites", delivery=props.delivery,
                                                   scanning=props.scanning)


class PlatformBootstrapChart(Chart):
    def __init__(self, scope: Construct, *, props: KubeChatProps) -> None:
        super().__init__(scope, PLATFORM_PREFIX + "bootstrap", disable_resource_name_hashes=True)
        self.root = PlatformBootstrap(self, "root", delivery=props.delivery)


class PlatformRootChart(Chart):
    def __init__(self, scope: Construct, *, props: KubeChatProps) -> None:
        super().__init__(scope, PLATFORM_PREFIX + "root", disable_resource_name_hashes=True)
        self.children = PlatformRoot(self, "children", delivery=props.delivery)
