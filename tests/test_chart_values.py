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
    defaults = yaml.safe_load((chart / "values.yaml").read_text())

    def merged(base, override):  # Helm's merge of user values over the chart's (maps merge, the rest replaces)
        if isinstance(base, dict) and isinstance(override, dict):
            return {**base, **{k: merged(base.get(k), v) for k, v in override.items()}}
        return override
    jsonschema.validate(merged(defaults, values_of(name)), schema)


def test_a_misspelt_value_is_refused_by_the_chart_schema():
    """The check above can fail: the schema closes the objects the platform sets."""
    chart = chart_folder("traefik")
    schema = json.loads((chart / "values.schema.json").read_text())
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    broken = {**defaults, "providers": {**defaults["providers"],
                                        "kubernetesCRD": {**defaults["providers"]["kubernetesCRD"], "safeNameing": False}}}
    with pytest.raises(jsonschema.ValidationError, match="safeNameing"):
        jsonschema.validate(broken, schema)
