"""Entry point of `cdk8s synth`: composes KubeChat's charts into the base that overlays build on,
the components they opt into, and the cluster-wide platform pieces.

`python main.py` builds everything; `python main.py environments` or `python main.py platform`
builds one part (make render synthesizes both parts in parallel: the platform part alone loads the
large Argo CD type library)."""
import sys

from cdk8s import App

from kubechat_deploy.chart import (DevToolsComponent, ExternalSecretsComponent, ImageDigestsComponent, KubeChatChart,
                                   KubeChatProps,
                                   PhysicalBackupsComponent, PreMigrationBackupComponent,
                                   ProgressiveDeliveryComponent, TlsIngressComponent)
from kubechat_deploy.environment import EnvironmentChart
from kubechat_deploy.layout import BASE_CHART, ENVIRONMENTS, PARTS


def build_app(props: KubeChatProps | None = None, parts: tuple[str, ...] = PARTS) -> App:
    """Build the App without synthesizing it, so tests can inspect the constructs."""
    props = props or KubeChatProps()
    app = App()
    if "environments" in parts:
        base = KubeChatChart(app, BASE_CHART, props=props)
        TlsIngressComponent(app, props=props, base=base)
        ExternalSecretsComponent(app, props=props, base=base)
        DevToolsComponent(app, props=props, base=base)
        PhysicalBackupsComponent(app, props=props, base=base)
        PreMigrationBackupComponent(app, props=props, base=base)
        ProgressiveDeliveryComponent(app, props=props, base=base)
        ImageDigestsComponent(app, props=props, base=base)
        for environment in ENVIRONMENTS:
            EnvironmentChart(app, environment)
    if "platform" in parts:
        from kubechat_deploy.platform_charts import (ArgoCdConfigurationChart, DeliveryPlatformChart, LoggingPlatformChart,
                                                     PlatformBootstrapChart, PlatformPrerequisitesChart,
                                                     PlatformRootChart)

        LoggingPlatformChart(app, props=props)
        ArgoCdConfigurationChart(app, props=props)
        DeliveryPlatformChart(app, props=props)
        PlatformPrerequisitesChart(app, props=props)
        PlatformRootChart(app, props=props)
        PlatformBootstrapChart(app, props=props)
    return app


if __name__ == "__main__":
    requested = tuple(sys.argv[1:]) or PARTS
    unknown = [p for p in requested if p not in PARTS]
    if unknown:
        raise SystemExit(f"main.py: unknown part(s) {unknown}; allowed: {', '.join(PARTS)}")
    build_app(parts=requested).synth()
