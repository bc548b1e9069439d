"""Entry point of `cdk8s synth`: composes KubeChat's charts into the base that overlays build on."""
from cdk8s import App

from kubechat_deploy.chart import KubeChatChart, KubeChatProps


def build_app(props: KubeChatProps | None = None) -> App:
    """Build the App without synthesizing it, so tests can inspect the constructs."""
    app = App()
    KubeChatChart(app, "kubechat", props=props or KubeChatProps())
    return app


if __name__ == "__main__":
    build_app().synth()
