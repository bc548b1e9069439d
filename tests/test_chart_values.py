"""The platform's values for a chart are checked against that chart's own values.schema.json, where the Go
module proxy serves the chart's repository at the pinned version (the Traefik chart: the proxy serves
github.com/traefik/traefik-helm-chart as v<chart version>+incompatible). A misspelt or misplaced value is then
a failure here, not a setting the chart ignores."""
from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from kubechat_deploy.versions import operator
from kubechat_tools.crds import go_module_download
from kubechat_tools.paths import DIST

CHART_MODULES = {"traefik": ("github.com/traefik/traefik-helm-chart", "traefik")}
"""Pin name -> (the chart repository's Go module, the chart's folder in it)."""


def values_of(name: str) -> dict:
    app = yaml.safe_load((DIST / "platform" / "prerequisites" / f"application-platform-{name}.yaml").read_text())
    source = (app["spec"].get("sources") or [app["spec"]["source"]])[0]
    return source["helm"]["valuesObject"]


def chart_folder(name: str):
    module, folder = CHART_MODULES[name]
    return go_module_download(f"{module}@v{operator(name).chart.version}+incompatible") / folder


@pytest.mark.parametrize("name", sorted(CHART_MODULES))
def test_the_platform_values_are_valid_for_the_pinned_chart(name):
    chart = chart_folder(name)
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["version"] == operator(name).chart.version
    schema = json.loads((chart / "values.schema.json").read_text())
    jsonschema.validate(merged_with_defaults(chart, values_of(name)), schema)


def test_a_misspelt_value_is_refused_by_the_chart_schema():
    """The check above can fail: the schema closes the objects the platform sets."""
    chart = chart_folder("traefik")
    schema = json.loads((chart / "values.schema.json").read_text())
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    broken = {**defaults, "providers": {**defaults["providers"],
                                        "kubernetesCRD": {**defaults["providers"]["kubernetesCRD"], "safeNameing": False}}}
    with pytest.raises(jsonschema.ValidationError, match="safeNameing"):
        jsonschema.validate(broken, schema)


def merged_with_defaults(chart, values: dict) -> dict:
    """Helm's merge of user values over the chart's values.yaml (maps merge, the rest replaces)."""
    defaults = yaml.safe_load((chart / "values.yaml").read_text())

    def merged(base, override):
        if isinstance(base, dict) and isinstance(override, dict):
            return {**base, **{k: merged(base.get(k), v) for k, v in override.items()}}
        return override
    return merged(defaults, values)


@pytest.mark.parametrize("service_type", ["LoadBalancer", "NodePort", "HostPort"])
def test_each_front_door_exposure_is_valid_for_the_pinned_chart_and_read_by_its_templates(service_type):
    """FrontDoorProps.service_type (docs/platform.md "Clusters without a load balancer"): the Traefik values of each
    choice pass chart 41.6.0's schema, and the keys it sets are the ones the chart's templates read
    (templates/_service.tpl writes `service.spec` into the Service's spec and each port's `nodePort`;
    _podtemplate.tpl each port's `hostPort`)."""
    from kubechat_deploy.platform.prerequisites import traefik_exposure, traefik_values
    from kubechat_deploy.platform.props import FrontDoorProps

    chart = chart_folder("traefik")
    values = traefik_exposure(traefik_values(), FrontDoorProps(service_type=service_type))
    jsonschema.validate(merged_with_defaults(chart, values), json.loads((chart / "values.schema.json").read_text()))
    templates = {name: (chart / "templates" / name).read_text() for name in ("_service.tpl", "_podtemplate.tpl")}
    assert "$config.nodePort" in templates["_service.tpl"] and "$config.hostPort" in templates["_podtemplate.tpl"]
    assert "{{- with .service.spec }}\n    {{- toYaml . | nindent 2 }}" in templates["_service.tpl"]
    spec, ports = values["service"]["spec"], values["ports"]
    if service_type == "LoadBalancer":
        assert spec == {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}
        assert "nodePort" not in ports["web"] and "hostPort" not in ports["web"]
    elif service_type == "NodePort":
        assert spec == {"type": "NodePort", "externalTrafficPolicy": "Local"}
        assert (ports["web"]["nodePort"], ports["websecure"]["nodePort"]) == FrontDoorProps().node_ports
    else:
        assert spec == {"type": "ClusterIP"}, "externalTrafficPolicy is refused on a ClusterIP Service"
        assert (ports["web"]["hostPort"], ports["websecure"]["hostPort"]) == (80, 443)
        # No surge: the chart's default (maxSurge 1) needs a node with 80 and 443 free for the new pod.
        assert values["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0}
        assert "updateStrategy" not in traefik_values()
    # The entry points' own ports and settings stay as the platform sets them.
    assert ports["web"]["port"] == traefik_values()["ports"]["web"]["port"]
    assert ports["websecure"]["transport"] == traefik_values()["ports"]["websecure"]["transport"]


@pytest.mark.parametrize("settings, field", [({"service_type": "hostNetwork"}, "front_door.service_type"),
                                             ({"node_ports": (80, 443)}, "front_door.node_ports"),
                                             ({"node_ports": (30080, 30080)}, "front_door.node_ports")])
def test_a_front_door_setting_outside_what_is_allowed_is_refused_by_name(settings, field):
    from kubechat_deploy import validation as v
    from kubechat_deploy.platform.props import FrontDoorProps

    with pytest.raises(v.SettingsError) as refused:
        FrontDoorProps(**settings)
    assert field in str(refused.value) and str(next(iter(settings.values()))) in str(refused.value)


def test_the_front_door_setting_reaches_the_platforms_traefik_application():
    """PlatformProps(front_door=...) is what the rendered platform-traefik Application carries (the default render
    is LoadBalancer: dist/platform/prerequisites)."""
    from cdk8s import App

    from kubechat_deploy.platform.charts import PlatformPrerequisitesChart
    from kubechat_deploy.platform.props import FrontDoorProps, PlatformProps

    chart = PlatformPrerequisitesChart(App(), props=PlatformProps(front_door=FrontDoorProps(service_type="NodePort",
                                                                                            node_ports=(31080, 31443))))
    app = next(d for d in chart.to_json() if d["metadata"]["name"] == "platform-traefik")
    values = app["spec"]["source"]["helm"]["valuesObject"]
    assert values["service"]["spec"]["type"] == "NodePort"
    assert (values["ports"]["web"]["nodePort"], values["ports"]["websecure"]["nodePort"]) == (31080, 31443)
    assert values_of("traefik")["service"]["spec"]["type"] == "LoadBalancer"


def test_metrics_server_is_left_out_or_told_to_skip_kubelet_certificates_by_its_settings():
    """MetricsServerProps: install=False renders no platform-metrics-server (a cluster that runs its own);
    kubelet_insecure_tls adds the flag through the chart's `args` (metrics-server chart 3.13.1
    templates/deployment.yaml appends .Values.args after its defaultArgs)."""
    from cdk8s import App

    from kubechat_deploy.platform.charts import PlatformPrerequisitesChart
    from kubechat_deploy.platform.props import MetricsServerProps, PlatformProps

    def apps(**settings):
        chart = PlatformPrerequisitesChart(App(), props=PlatformProps(metrics_server=MetricsServerProps(**settings)))
        return {d["metadata"]["name"]: d for d in chart.to_json() if d["kind"] == "Application"}
    assert "platform-metrics-server" not in apps(install=False)
    default = values_of("metrics-server")
    assert "args" not in default and default["replicas"] == 2
    spread = default["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    # The chart's selector labels (templates/_helpers.tpl metrics-server.selectorLabels) for release metrics-server.
    assert spread["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "metrics-server",
                                                      "app.kubernetes.io/instance": "metrics-server"}
    insecure = apps(kubelet_insecure_tls=True)["platform-metrics-server"]["spec"]["source"]["helm"]["valuesObject"]
    assert insecure["args"] == ["--kubelet-insecure-tls"] and insecure["replicas"] == 2
