"""Bad input is rejected at construction time, naming the field, the value and what is allowed."""
import pytest

from kubechat_deploy import validation as v
from kubechat_deploy.app.api import ApiProps
from kubechat_deploy.security.external_secrets import ExternalSecretsProps
from kubechat_deploy.app.exposure import ExposureProps
from kubechat_deploy.security.namespace import NamespaceProps
from kubechat_deploy.app.web import WebProps
from kubechat_deploy.app.workload import Resources, Scaling
from kubechat_deploy.security.network import NetworkProps
from kubechat_deploy.platform.props import ArgoCdAccessProps, DeliveryProps


@pytest.mark.parametrize("make, field, value, allowed", [
    (lambda: Scaling(min_replicas=0), "scaling.min_replicas", "0", "integer >= 1"),
    (lambda: Scaling(min_replicas=4, max_replicas=2), "scaling.max_replicas", "2", ">= scaling.min_replicas (4)"),
    (lambda: Scaling(cpu_utilization=150), "scaling.cpu_utilization", "150", "from 1 to 100"),
    (lambda: WebProps(http_port=0), "web.http_port", "0", "from 1 to 65535"),
    (lambda: ExposureProps(host="chat..example.com"), "exposure.host", "chat..example.com", "DNS-1123 subdomain"),
    (lambda: ExposureProps(host="Chat.Example.com"), "exposure.host", "Chat.Example.com", "DNS-1123 subdomain"),
    (lambda: ExposureProps(issuer="letsencrypt"), "exposure.issuer", "'letsencrypt'", "letsencrypt-production"),
    (lambda: NamespaceProps(quota_requests_memory="8 GB"), "namespace.quota_requests_memory", "8 GB", "quantity"),
    (lambda: ExternalSecretsProps(refresh_interval="hourly"), "external_secrets.refresh_interval", "hourly", "duration"),
    (lambda: ApiProps(name="KubeChat_API"), "api.name", "'KubeChat_API'", "DNS-1123 label"),
    (lambda: ApiProps(http_port=70000), "api.http_port", "70000", "from 1 to 65535"),
    (lambda: ApiProps(http_port=9090), "api.metrics_port", "9090", "different from api.http_port"),
    (lambda: ApiProps(image="ghcr.io/kubechat/kubechat-api:latest"), "api.image", "latest", "without tag"),
    (lambda: Resources(cpu_request="lots"), "resources.cpu_request", "'lots'", "Kubernetes quantity"),
    (lambda: Resources(memory_limit="512MB"), "resources.memory_limit", "'512MB'", "Kubernetes quantity"),
    (lambda: NetworkProps(proxy_namespace="Traefik Proxy"), "network.proxy_namespace", "Traefik Proxy", "DNS-1123"),
    (lambda: DeliveryProps(environments=("staging", "dev")), "delivery.environments", "'dev'", "never dev"),
    (lambda: DeliveryProps(environments=()), "delivery.environments", "()", "names of overlays"),
    (lambda: DeliveryProps(first_environment="qa"), "delivery.first_environment", "qa", "one of delivery.environments"),
    (lambda: DeliveryProps(promotion_branch_prefix="promoted"), "delivery.promotion_branch_prefix", "promoted",
     "ending in /"),
    (lambda: ArgoCdAccessProps(production_deployers=("sre, everyone",)), "argocd_access.production_deployers",
     "sre, everyone", "without spaces, commas or #"),
    (lambda: ArgoCdAccessProps(staging_deployers="developers"), "argocd_access.staging_deployers", "developers",
     "a tuple of SSO group names"),
])
def test_invalid_props_name_field_value_and_allowed(make, field, value, allowed):
    with pytest.raises(v.SettingsError) as error:
        make()
    message = str(error.value)
    assert message.startswith(field + ":"), message
    assert value in message and allowed in message, message


@pytest.mark.parametrize("schedule, seconds", [("0 3 * * *", False), ("@daily", False), ("*/15 * * * 1-5", False),
                                               ("0 0 3 * * *", True)])
def test_valid_cron_schedules_are_accepted(schedule, seconds):
    assert v.cron("schedule", schedule, seconds=seconds) == schedule


@pytest.mark.parametrize("schedule, seconds", [("0 3 * *", False), ("0 0 3 * * *", False), ("0 3 * * *", True),
                                               ("every day", False), ("61 * * * *", False),
                                               ("0 24 * * *", False), ("0 0 0 * *", False), ("0 60 3 * * *", True)])
def test_invalid_cron_schedules_are_rejected(schedule, seconds):
    with pytest.raises(v.SettingsError, match="schedule: invalid value .* allowed: a cron expression of"):
        v.cron("schedule", schedule, seconds=seconds)


@pytest.mark.parametrize("good", ["100m", "0.5", "1", "512Mi", "2Gi", "1e3"])
def test_valid_quantities_are_accepted(good):
    assert v.quantity("q", good) == good


def test_dns_subdomain_rejects_malformed_names():
    assert v.dns_subdomain("host", "chat.example.com") == "chat.example.com"
    for bad in ("-chat.example.com", "chat..example.com", "Chat.example.com", "chat_example.com", "a" * 254):
        with pytest.raises(v.SettingsError, match="host: invalid value"):
            v.dns_subdomain("host", bad)


def test_a_bad_setting_fails_the_whole_app_before_synth():
    # GIVEN props with an HPA whose minimum exceeds its maximum
    from kubechat_deploy.chart import KubeChatProps

    # WHEN the settings are built THEN construction fails, naming the field
    with pytest.raises(v.SettingsError, match=r"scaling.max_replicas: invalid value 1; allowed: an integer >= "):
        KubeChatProps(api=ApiProps(scaling=Scaling(min_replicas=3, max_replicas=1)))


def test_a_liveness_probe_identical_to_readiness_is_refused():
    """18.6: the same check for liveness and readiness would restart every pod on a dependency's failure."""
    from kubechat_deploy.app.workload import Probes

    with pytest.raises(v.SettingsError, match=r"probes.liveness: invalid value '/ready'; allowed: a path other than "
                                              r"probes.readiness \('/ready'\), or None for a TCP check"):
        Probes(startup="/start", liveness="/ready", readiness="/ready")
    assert Probes(startup="/start", readiness="/ready").liveness is None
