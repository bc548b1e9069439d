"""Entry point of `cdk8s synth`: composes KubeChat's charts into the base that overlays build on,
the components they opt into, and the cluster-wide platform pieces.

`python main.py` builds everything; `python main.py environments` or `python main.py platform`
builds one part (make render synthesizes both parts in parallel: the platform part alone loads the
large Argo CD type library)."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from cdk8s import App

from kubechat_deploy.layout import BASE_CHART, ENVIRONMENTS, PARTS

if TYPE_CHECKING:
    from kubechat_deploy.chart import KubeChatProps
    from kubechat_deploy.platform.props import PlatformProps


def build_app(props: KubeChatProps | None = None, parts: tuple[str, ...] = PARTS,
              platform: PlatformProps | None = None) -> App:
    """Build the App without synthesizing it, so tests can inspect the constructs. Each part imports only its
    own constructs: the platform part never loads the application's."""
    app = App()
    if "environments" in parts:
        from kubechat_deploy.chart import (DevToolsComponent, ExternalSecretsComponent, ImageDigestsComponent,
                                           KubeChatChart, KubeChatProps, PhysicalBackupsComponent,
                                           PreMigrationBackupComponent, ProgressiveDeliveryComponent,
                                           PublicGatewayComponent)
        from kubechat_deploy.environment import EnvironmentChart

        props = props or KubeChatProps()
        base = KubeChatChart(app, BASE_CHART, props=props)
        PublicGatewayComponent(app, props=props, base=base)
        ExternalSecretsComponent(app, props=props, base=base)
        DevToolsComponent(app, props=props, base=base)
        PhysicalBackupsComponent(app, props=props, base=base)
        PreMigrationBackupComponent(app, props=props, base=base)
        ProgressiveDeliveryComponent(app, props=props, base=base)
        ImageDigestsComponent(app, props=props, base=base)
        for environment in ENVIRONMENTS:
            EnvironmentChart(app, environment)
    if "platform" in parts:
        from kubechat_deploy.platform.charts import (ArgoCdConfigurationChart, DeliveryPlatformChart,
                                                     LoggingPlatformChart, PlatformBootstrapChart,
                                                     PlatformPrerequisitesChart, PlatformRootChart, DeployersChart)
        from kubechat_deploy.platform.props import PlatformProps

        platform = platform or PlatformProps()
        LoggingPlatformChart(app, props=platform)
        ArgoCdConfigurationChart(app, props=platform)
        DeliveryPlatformChart(app, props=platform)
        DeployersChart(app, props=platform)
        PlatformPrerequisitesChart(app, props=platform)
        PlatformRootChart(app, props=platform)
        PlatformBootstrapChart(app, props=platform)
    return app


if __name__ == "__main__":
    requested = tuple(sys.argv[1:]) or PARTS
    unknown = [p for p in requested if p not in PARTS]
    if unknown:
        raise SystemExit(f"main.py: unknown part(s) {unknown}; allowed: {', '.join(PARTS)}")
    build_app(parts=requested).synth()
