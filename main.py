"""Entry point of `cdk8s synth`: composes KubeChat's charts into the base that overlays build on
and the components they opt into."""
from cdk8s import App

from kubechat_deploy.layout import BASE_CHART
from kubechat_deploy.chart import (DeliveryPlatformChart, PlatformBootstrapChart, PlatformPrerequisitesChart, DevToolsComponent, ExternalSecretsComponent, KubeChatChart, KubeChatProps,
                                   LoggingPlatformChart, PhysicalBackupsComponent, ProgressiveDeliveryComponent, PreMigrationBackupComponent,
                                   TlsIngressComponent)


def build_app(props: KubeChatProps | None = None) -> App:
    """Build the App without synthesizing it, so tests can inspect the constructs."""
    props = props or KubeChatProps()
    app = App()
    base = KubeChatChart(app, BASE_CHART, props=props)
    TlsIngressComponent(app, props=props, base=base)
    ExternalSecretsComponent(app, props=props, base=base)
    DevToolsComponent(app, props=props, base=base)
    PhysicalBackupsComponent(app, props=props, base=base)
    PreMigrationBackupComponent(app, props=props, base=base)
    ProgressiveDeliveryComponent(app, props=props, base=base)
    LoggingPlatformChart(app, props=props)
    DeliveryPlatformChart(app, props=props)
    PlatformPrerequisitesChart(app, props=props)
    PlatformBootstrapChart(app, props=props)
    return app


if __name__ == "__main__":
    build_app().synth()
