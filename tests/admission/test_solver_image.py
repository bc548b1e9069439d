"""A cert-manager whose solver image is not the pinned one (an operator upgrading the chart without
supply_chain.allowed_images, say) cannot solve a challenge in production: its solver pod is refused, the
Challenge says why, and the Certificate stays not Ready. Runs after test_certificates.py's cert-manager
has stopped (module-scoped there), with the same Pebble and policies."""
from __future__ import annotations

import json
import time

import pytest

from testbed import cert_manager as certificates

from .conftest import front_door_for, issuers_for, rendered_certificate, traefik_http

pytestmark = pytest.mark.admission

OTHER_SOLVER = "quay.io/jetstack/cert-manager-acmesolver:v1.20.2"


def test_a_solver_image_other_than_the_pinned_one_is_refused(kyverno, plane, pebble, outbound, traefik, solvers,
                                                              tmp_path_factory):
    plane.install_crds(certificates.cert_manager_crds())
    plane.apply_docs(issuers_for(kyverno, "production", pebble) + front_door_for(kyverno, "production"))
    controller = certificates.CertManager(folder=certificates.binaries(), workdir=tmp_path_factory.mktemp("cert-manager"),
                                          plane=plane, proxy_url=traefik_http(traefik), https_proxy_url=outbound.url,
                                          solver_image=OTHER_SOLVER)
    certificate = rendered_certificate(kyverno, "production")
    namespace = certificate["metadata"]["namespace"]
    certificate["metadata"]["name"] = "kubechat-tls-other-solver"
    certificate["spec"]["secretName"] = "kubechat-tls-other-solver"
    certificate["spec"]["dnsNames"] = ["other-solver.kubechat.example.com"]
    try:
        controller.start()
        plane.apply_docs([certificate])
        deadline = time.monotonic() + 120
        reasons: list[str] = []
        while time.monotonic() < deadline and not any("denied" in r or "forbidden" in r for r in reasons):
            challenges = json.loads(plane.kubectl("get", "challenges", "-n", namespace, "-o", "json").stdout)["items"]
            reasons = [c.get("status", {}).get("reason", "") for c in challenges
                       if c["spec"]["dnsName"] == "other-solver.kubechat.example.com"]
            time.sleep(1)
        controller.check_running()
        refusal = next((r for r in reasons if "denied" in r or "forbidden" in r), None)
        assert refusal, f"no Challenge reported a refused solver pod in 120 s: {reasons}"
        assert f"{OTHER_SOLVER} is not from an allowed registry" in refusal, refusal
        time.sleep(10)  # cert-manager retries the presentation: it keeps failing
        pods = json.loads(plane.kubectl("get", "pods", "-n", namespace, "-l", "acme.cert-manager.io/http01-solver=true",
                                        "-o", "json").stdout)["items"]
        assert [p for p in pods if p["spec"]["containers"][0]["image"] == OTHER_SOLVER] == []
        state = json.loads(plane.kubectl("get", "certificate", "kubechat-tls-other-solver", "-n", namespace,
                                         "-o", "json").stdout)
        assert not any(c["type"] == "Ready" and c["status"] == "True" for c in state["status"].get("conditions", []))
        assert not [d for (_, d) in solvers.served_from if d == "other-solver.kubechat.example.com"], \
            "nothing may have answered the challenge"
        controller.check_running()
    finally:
        controller.stop()
