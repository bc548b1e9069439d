"""The validation gates: every rendered environment passes them, and each gate rejects a manifest
with the defect it exists to catch (so removing or breaking a gate fails here)."""
from __future__ import annotations

import copy

import pytest

from conftest import good_docs, write_docs
from kubechat_tools.gates import (kube_score_exceptions, kube_score_lint, lint_gate, psa_gate, references_gate,
                                  schema_gate, workloads_gate)
from kubechat_tools.paths import DIST, ENVIRONMENTS

ALL_GATES = {"schema": schema_gate, "lint": lint_gate, "workloads": workloads_gate, "psa": psa_gate,
             "references": references_gate}


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("gate", [g for g in ALL_GATES if g != "schema"])
def test_rendered_environment_passes_gate(env, gate):
    folder = DIST / "rendered" / env
    failures = lint_gate([folder], env) if gate == "lint" else ALL_GATES[gate]([folder])
    assert failures == [], f"{env} fails the {gate} gate:\n" + "\n".join(failures)


def test_every_rendered_environment_passes_the_schema_gate():
    """One kubeconform run per Kubernetes version over all environments (each failure names its file,
    so its environment): the schemas load once instead of once per environment."""
    failures = schema_gate([DIST / "rendered" / env for env in ENVIRONMENTS])
    assert failures == [], "the schema gate fails:\n" + "\n".join(failures)


@pytest.mark.parametrize("gate", ALL_GATES)
def test_the_good_fixture_passes_every_gate(gate, tmp_path):
    path = write_docs(tmp_path, "good.yaml", good_docs())
    assert ALL_GATES[gate]([path]) == []


def mutate(change) -> list[dict]:
    docs = copy.deepcopy(good_docs())
    change(docs[0], docs)
    return docs


def container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def gate_output(gate, tmp_path, docs) -> str:
    failures = gate([write_docs(tmp_path, "bad.yaml", docs)])
    assert failures, "the gate accepted a manifest it must reject"
    return "\n".join(failures)


# --- schema ----------------------------------------------------------------------------------------

def test_schema_rejects_an_unknown_field_in_every_version(tmp_path):
    out = gate_output(schema_gate, tmp_path, mutate(lambda d, _: d["spec"].update(replicaz=2)))
    assert "Kubernetes 1.30.0" in out and "Kubernetes 1.37.0" in out and "replicaz" in out


def test_schema_rejects_a_field_the_oldest_supported_version_lacks(tmp_path):
    # the container lifecycle's stopSignal arrived after 1.30: valid on 1.37, invalid on 1.30
    docs = mutate(lambda d, _: container(d).update(lifecycle={"stopSignal": "SIGTERM"}))
    out = gate_output(schema_gate, tmp_path, docs)
    assert "Kubernetes 1.30.0" in out and "Kubernetes 1.37.0" not in out and "stopSignal" in out


def test_schema_rejects_a_wrong_type(tmp_path):
    out = gate_output(schema_gate, tmp_path, mutate(lambda d, _: d["spec"].update(replicas="three")))
    assert "replicas" in out


def test_schema_rejects_an_invalid_custom_resource(tmp_path):
    certificate = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                   "metadata": {"name": "web", "namespace": "fixture"},
                   "spec": {"dnsNames": ["chat.example.com"], "issuerRef": {"name": "letsencrypt"},
                            "secretname": "web-tls"}}
    out = gate_output(schema_gate, tmp_path, [certificate])
    assert "Certificate/web" in out and "secretname" in out  # unknown field (and secretName missing)


def test_schema_rejects_a_kind_without_schema(tmp_path):
    out = gate_output(schema_gate, tmp_path, [{"apiVersion": "example.com/v1", "kind": "Widget",
                                                "metadata": {"name": "w"}}])
    assert "could not find schema for Widget" in out


# --- lint -----------------------------------------------------------------------------------------

def test_lint_rejects_a_privileged_container(tmp_path):
    out = gate_output(lint_gate, tmp_path, mutate(lambda d, _: container(d)["securityContext"].update(privileged=True)))
    assert "CKV_K8S_16" in out


def test_lint_waivers_apply_only_to_their_environment_and_resource(tmp_path):
    # CKV_K8S_43 (digest) is waived in dev only; CKV_K8S_38 (token) only for Deployment/kubechat-api
    docs = mutate(lambda d, _: (container(d).update(image="registry.example/good:1.0.0"),
                                d["spec"]["template"]["spec"].update(automountServiceAccountToken=True)))
    path = write_docs(tmp_path, "bad.yaml", docs)
    assert any("CKV_K8S_43" in f for f in lint_gate([path], "production"))
    assert not any("CKV_K8S_43" in f for f in lint_gate([path], "dev"))
    assert any("CKV_K8S_38" in f for f in lint_gate([path], "dev"))


@pytest.mark.parametrize("change, check", [
    # the same check for liveness and readiness: one failing dependency restarts every pod
    (lambda c: c["livenessProbe"]["httpGet"].update(path="/ready"), "pod-probes-identical"),
    # no ephemeral-storage limit: logs and writable layers can fill the node's disk
    (lambda c: c["resources"]["limits"].pop("ephemeral-storage"), "container-ephemeral-storage-request-and-limit"),
    (lambda c: c["securityContext"].update(readOnlyRootFilesystem=False),
     "container-security-context-readonlyrootfilesystem"),
])
def test_kube_score_rejects_what_it_exists_to_catch(tmp_path, change, check):
    """18.6: kube-score (bin/kube-score, pinned in tools/kube-score/go.mod)."""
    out = gate_output(kube_score_lint, tmp_path, mutate(lambda d, _: change(container(d))))
    assert f"kube-score {check}" in out


def test_the_lint_gate_runs_both_linters(tmp_path):
    docs = mutate(lambda d, _: (container(d)["securityContext"].update(privileged=True),
                                container(d)["livenessProbe"]["httpGet"].update(path="/ready")))
    out = gate_output(lint_gate, tmp_path, docs)
    assert "checkov CKV_K8S_16" in out and "kube-score pod-probes-identical" in out


def test_kube_score_waivers_apply_only_to_their_environment_and_resource(tmp_path):
    # horizontalpodautoscaler-replicas (one replica) is waived in dev for HorizontalPodAutoscaler/kubechat-api
    # and kubechat-web only
    def hpa(name):
        return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "namespace": "fixture"},
                "spec": {"minReplicas": 1, "maxReplicas": 3,
                         "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "good"}}}
    path = write_docs(tmp_path, "hpa.yaml", good_docs() + [hpa("kubechat-api"), hpa("other")])
    check = "kube-score horizontalpodautoscaler-replicas"
    dev = kube_score_lint([path], "dev")
    assert any(check in f and "HorizontalPodAutoscaler/other" in f for f in dev), dev
    assert not any(check in f and "HorizontalPodAutoscaler/kubechat-api" in f for f in dev)
    assert any(check in f and "HorizontalPodAutoscaler/kubechat-api" in f for f in kube_score_lint([path], "production"))


def test_every_kube_score_waiver_is_used():
    """A waiver that waives nothing hides the next real finding of its check: each one is needed by at
    least one rendered environment it names."""
    import json
    import subprocess

    from kubechat_tools.gates import KUBE_SCORE_KUBERNETES_VERSION, KUBE_SCORE_WARNING, yaml_files
    from kubechat_tools.paths import BIN

    findings = set()
    for env in ENVIRONMENTS:
        files = [str(f) for f in yaml_files([DIST / "rendered" / env])]
        out = subprocess.run([str(BIN / "kube-score"), "score", "-o", "json", "--kubernetes-version",
                              KUBE_SCORE_KUBERNETES_VERSION, *files], capture_output=True, text=True).stdout
        for obj in json.loads(out):
            for check in obj["checks"]:
                if not check["skipped"] and check["grade"] <= KUBE_SCORE_WARNING:
                    findings.add((env, check["check"]["id"], f"{obj['type_meta']['kind']}/{obj['object_meta']['name']}"))
    unused = [(e["id"], env, resource) for e in kube_score_exceptions() for env in e["environments"]
              for resource in e["resources"] if (env, e["id"], resource) not in findings]
    assert unused == [], f"lint-exceptions.yaml waives kube-score findings that do not occur: {unused}"


# --- workloads ------------------------------------------------------------------------------------

def test_workloads_rejects_missing_probes(tmp_path):
    out = gate_output(workloads_gate, tmp_path, mutate(lambda d, _: (container(d).pop("readinessProbe"),
                                                                     container(d).pop("livenessProbe"))))
    assert "no-readiness-probe" in out and "no-liveness-probe" in out


def test_workloads_rejects_the_default_service_account(tmp_path):
    out = gate_output(workloads_gate, tmp_path, mutate(lambda d, _: d["spec"]["template"]["spec"].pop("serviceAccountName")))
    assert "default-service-account" in out


def test_workloads_rejects_a_pod_no_network_policy_selects(tmp_path):
    out = gate_output(workloads_gate, tmp_path, mutate(lambda d, docs: docs.pop()))
    assert "non-isolated-pod" in out


# --- Pod Security Standards -------------------------------------------------------------------------

@pytest.mark.parametrize("change, reason", [
    (lambda d: d["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile"), "seccompProfile"),
    (lambda d: container(d)["securityContext"].update(allowPrivilegeEscalation=True), "allowPrivilegeEscalation"),
    (lambda d: container(d)["securityContext"]["capabilities"].update(add=["NET_ADMIN"]), "NET_ADMIN"),
    (lambda d: d["spec"]["template"]["spec"].update(hostNetwork=True), "host namespaces"),
    (lambda d: (d["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot"),
                container(d)["securityContext"].pop("runAsNonRoot")), "runAsNonRoot"),
])
def test_psa_rejects_what_restricted_forbids(tmp_path, change, reason):
    out = gate_output(psa_gate, tmp_path, mutate(lambda d, _: change(d)))
    assert "violates PodSecurity restricted:latest" in out and reason in out


def test_psa_checks_cronjob_pod_templates(tmp_path):
    good = good_docs()[0]
    template = copy.deepcopy(good["spec"]["template"])
    template["spec"]["restartPolicy"] = "OnFailure"
    template["spec"]["hostPID"] = True
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "fixture"},
               "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}}}
    assert "CronJob/nightly violates" in gate_output(psa_gate, tmp_path, [cronjob])


# --- references -----------------------------------------------------------------------------------

def service(selector: dict, target_port="http") -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "fixture",
                                                                 "labels": {"app": "svc"}},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": target_port}]}}


def test_references_accept_a_service_that_selects_its_pods(tmp_path):
    docs = good_docs() + [service({"app.kubernetes.io/name": "good"})]
    assert references_gate([write_docs(tmp_path, "ok.yaml", docs)]) == []


@pytest.mark.parametrize("extra, message", [
    (service({"app.kubernetes.io/name": "nothing"}), "matches no pod template"),
    (service({"app.kubernetes.io/name": "good"}, target_port="grpc"), "targetPort 'grpc' is not a container port"),
    ({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "fixture"},
      "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
          "service": {"name": "missing", "port": {"name": "http"}}}}]}}]}}, "backend Service 'missing' does not exist"),
    ({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "m", "namespace": "fixture"},
      "spec": {"selector": {"matchLabels": {"app": "nothing"}}, "endpoints": [{"port": "metrics"}]}},
     "dangling-servicemonitor"),
    ({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "fixture"},
      "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gone"}, "maxReplicas": 3}},
     "scaleTargetRef Deployment/gone does not exist"),
    ({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p", "namespace": "fixture"},
      "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "nothing"}}}}, "matches no workload's pods"),
])
def test_references_reject_a_dangling_reference(tmp_path, extra, message):
    assert message in gate_output(references_gate, tmp_path, good_docs() + [extra])


def route(**rule) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "fixture"},
            "spec": {"parentRefs": [{"name": "gw", "sectionName": "https"}], "rules": [rule]}}


GATEWAY = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "fixture"},
           "spec": {"gatewayClassName": "traefik", "listeners": [{"name": "https", "port": 8443, "protocol": "HTTPS",
                                                                  "tls": {"certificateRefs": [{"kind": "Secret", "name": "tls"}]}}]}}
CERTIFICATE = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "tls", "namespace": "fixture"},
               "spec": {"secretName": "tls", "dnsNames": ["a.example.com"], "issuerRef": {"name": "x", "kind": "ClusterIssuer"}}}
ISSUER = {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "x"},
          "spec": {"selfSigned": {}}}
SPLIT = {"apiVersion": "traefik.io/v1alpha1", "kind": "TraefikService", "metadata": {"name": "split", "namespace": "fixture"},
         "spec": {"weighted": {"services": [{"name": "svc", "port": "http", "weight": 100}]}}}
HEADERS = {"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware", "metadata": {"name": "headers", "namespace": "fixture"},
           "spec": {"headers": {"frameDeny": True}}}
TO_SPLIT = {"backendRefs": [{"group": "traefik.io", "kind": "TraefikService", "name": "split"}],
            "filters": [{"type": "ExtensionRef", "extensionRef": {"group": "traefik.io", "kind": "Middleware", "name": "headers"}}]}


def test_references_accept_a_route_through_a_split_with_its_middleware(tmp_path):
    docs = good_docs() + [service({"app.kubernetes.io/name": "good"}), ISSUER, GATEWAY, CERTIFICATE, SPLIT, HEADERS, route(**TO_SPLIT)]
    assert references_gate([write_docs(tmp_path, "ok.yaml", docs)]) == []


@pytest.mark.parametrize("change, message", [
    (lambda d: d[-1]["spec"]["rules"][0]["filters"][0]["extensionRef"].update(name="headerz"),
     "filter Middleware 'headerz' does not exist"),
    (lambda d: d[-1]["spec"]["rules"][0]["backendRefs"][0].update(name="splitt"), "backend TraefikService 'splitt' does not exist"),
    (lambda d: d[-1]["spec"]["parentRefs"][0].update(sectionName="http"), "Gateway 'gw' has no listener 'http'"),
    (lambda d: d[-1]["spec"]["parentRefs"][0].update(name="gateway"), "parent Gateway 'gateway' does not exist"),
    (lambda d: d[-3]["spec"]["weighted"]["services"][0].update(port="https"), "Service 'svc' has no port 'https'"),
    (lambda d: d[-3]["spec"]["weighted"]["services"][0].update(name="svc-canary"), "weighted Service 'svc-canary' does not exist"),
    (lambda d: d.remove(CERTIFICATE), "certificate Secret 'tls' is neither rendered nor provided"),
])
def test_references_reject_a_route_split_or_gateway_naming_what_is_not_there(tmp_path, change, message):
    import copy
    docs = good_docs() + [service({"app.kubernetes.io/name": "good"}), ISSUER, GATEWAY, CERTIFICATE] + \
        copy.deepcopy([SPLIT, HEADERS, route(**TO_SPLIT)])
    change(docs)
    assert message in gate_output(references_gate, tmp_path, docs)


def test_references_reject_a_missing_config_map_but_accept_an_operator_provided_secret(tmp_path):
    def wire(d, docs):
        container(d)["envFrom"] = [{"configMapRef": {"name": "absent"}}, {"secretRef": {"name": "db-app"}}]
    out = gate_output(references_gate, tmp_path, mutate(wire))
    assert "ConfigMap 'absent'" in out and "Secret 'db-app'" in out
    cluster = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "db", "namespace": "fixture"},
               "spec": {"instances": 1}}
    out = gate_output(references_gate, tmp_path, mutate(wire) + [cluster])
    assert "ConfigMap 'absent'" in out and "Secret 'db-app'" not in out
