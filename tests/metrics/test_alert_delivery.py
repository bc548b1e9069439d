"""#26.4: alerts reach people. The tier's real Prometheus sends its alerts to a real Alertmanager
(tests/testbed/alertmanager.py) running the routing the platform renders into kube-prometheus-stack's values
(the chart's own default sent every alert to a 'null' receiver); the receivers' addresses, which the cluster
reads from a Secret, point at a webhook on loopback. The broken environment (production here) has a critical
alert firing at once (KubeChatMigrationFailed, for: 0m) and a warning (KubeChatSyncFailed, for: 0m): the first
must page, the second make a ticket, and nothing of the healthy environment may page."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest

pytestmark = pytest.mark.metrics

BAD, GOOD = "kubechat-production", "kubechat-staging"


def deliveries(webhook, path: str) -> list[dict]:
    return [m["json"] for m in webhook.messages() if m["path"] == path and m["json"]]


def wait_for(webhook, path: str, alertname: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for payload in deliveries(webhook, path):
            if any(a["labels"].get("alertname") == alertname and a["labels"].get("namespace") == BAD
                   and a["status"] == "firing" for a in payload["alerts"]):
                return payload
        time.sleep(2)
    raise AssertionError(f"no {alertname} for {BAD} reached {path} in {timeout:.0f} s; received: "
                         f"{[(m['path'], [a['labels'].get('alertname') for a in (m['json'] or {}).get('alerts', [])]) for m in webhook.messages()]}")


def test_a_critical_alert_pages_and_a_warning_makes_a_ticket(prometheus):
    webhook = prometheus.context["webhook"]
    page = wait_for(webhook, "/pages", "KubeChatMigrationFailed")
    assert page["receiver"] == "kubechat-pages" and page["status"] == "firing"
    ticket = wait_for(webhook, "/tickets", "KubeChatSyncFailed")
    assert ticket["receiver"] == "kubechat-tickets"
    # Grouped per namespace and alert name (the route's group_by), each with its runbook.
    for payload in (page, ticket):
        assert set(payload["groupLabels"]) == {"namespace", "alertname"}
        assert all(a["annotations"].get("runbook_url", "").endswith(f"{a['labels']['alertname']}.md")
                   for a in payload["alerts"])
    pages, tickets = deliveries(webhook, "/pages"), deliveries(webhook, "/tickets")
    assert all(a["labels"]["severity"] == "critical" for p in pages for a in p["alerts"])
    assert all(a["labels"]["severity"] != "critical" for t in tickets for a in t["alerts"])
    assert not [a for p in pages for a in p["alerts"] if a["labels"].get("namespace") == GOOD and a["status"] == "firing"], \
        "the healthy environment paged"


def test_the_clusters_own_alerts_keep_the_charts_routing(prometheus):
    """Only KubeChat's alerts are routed to its receivers: a critical alert of the cluster itself (one of the
    chart's default rules, which fire for good on a managed control plane) posted to the real Alertmanager
    reaches neither webhook, while a KubeChat one posted the same way does."""
    webhook, alertmanager = prometheus.context["webhook"], prometheus.context["alertmanager"]
    alerts = [{"labels": {"alertname": "KubeControllerManagerDown", "severity": "critical", "namespace": "kube-system"}},
              {"labels": {"alertname": "KubeChatProbe", "severity": "critical", "namespace": BAD}}]
    request = urllib.request.Request(f"http://{alertmanager.address}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10) as response:
        assert response.status == 200
    wait_for(webhook, "/pages", "KubeChatProbe", timeout=120)
    received = [a["labels"].get("alertname") for m in webhook.messages() if m["json"] for a in m["json"]["alerts"]]
    assert "KubeControllerManagerDown" not in received, received
