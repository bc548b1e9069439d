"""Kyverno's admission controller on the admission tier's control plane (tests/admission): the real webhook,
registered with the test API server by a loopback URL, enforcing the rendered ClusterPolicies.

Kyverno v1.19.0 (tools/kyverno, the version of the pinned Kyverno CRDs and CLI, which the platform's chart
3.9.0 ships) runs out of cluster as its own flags allow: `--serverIP 127.0.0.1:<port>` makes its webhook controller register
`https://127.0.0.1:<port>/...` instead of its Service (pkg/controllers/webhook/utils.go newClientConfig) and
puts 127.0.0.1 in its self-signed serving certificate (pkg/tls/keypair.go generateTLS). Its ConfigMap is the
chart's (charts/kyverno/values.yaml `config:` in the same module; the platform's values change only replicas
and the PodDisruptionBudget), without the resource filters that name Kyverno's own objects by template; its
flags are the chart's feature defaults that bear on admission (chart_feature_flags) and otherwise the
binary's defaults.
"""
from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from testbed.controlplane import ControlPlane, ProcessGroup, build, free_port
from testbed.argocd import go_module_dir, go_module_version
from kubechat_tools.paths import CACHE

KYVERNO_MODULE = "github.com/kyverno/kyverno"
MODULES = {"kyverno": [(f"{KYVERNO_MODULE}/cmd/kyverno", "kyverno"),
                       (f"{KYVERNO_MODULE}/cmd/reports-controller", "reports-controller"),
                       ("github.com/sigstore/cosign/v3/cmd/cosign", "cosign"),
                       ("github.com/google/go-containerregistry/cmd/crane", "crane")]}
"""Built with tools/kyverno's dependency graph: cosign and crane at the versions Kyverno itself uses."""
NAMESPACE = "kyverno"
SERVICE = "kyverno-svc"
BUILD_TIMES: dict[str, float] = {}


def binaries() -> Path:
    return build(CACHE / "admission", MODULES, None, BUILD_TIMES)


def kyverno_version() -> str:
    return go_module_version("kyverno", KYVERNO_MODULE)


def module_chart() -> dict:
    """Chart.yaml of the chart in Kyverno's module at the version built (version, appVersion)."""
    return yaml.safe_load((go_module_dir("kyverno", KYVERNO_MODULE) / "charts" / "kyverno" / "Chart.yaml").read_text())


def kyverno_crds() -> list[dict]:
    """Every CRD shipped in Kyverno's module at the version built (config/crds)."""
    folder = go_module_dir("kyverno", KYVERNO_MODULE) / "config" / "crds"
    return [doc for path in sorted(folder.rglob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def chart_configuration() -> dict:
    """The ConfigMap `kyverno` as the chart renders it from its default values (templates/config/configmap.yaml):
    resource filters without the templated entries (those name Kyverno's own objects), the webhooks'
    namespaceSelector with the Kyverno namespace excluded (excludeKyvernoNamespace)."""
    values = yaml.safe_load((go_module_dir("kyverno", KYVERNO_MODULE) / "charts" / "kyverno" / "values.yaml").read_text())
    config = values["config"]
    webhooks = json.loads(json.dumps(config["webhooks"]))
    if config.get("excludeKyvernoNamespace", True):
        for expression in webhooks["namespaceSelector"]["matchExpressions"]:
            if expression["key"] == "kubernetes.io/metadata.name" and expression["operator"] == "NotIn":
                expression["values"] = sorted(set(expression["values"]) | {NAMESPACE})
    data = {"enableDefaultRegistryMutation": str(config["enableDefaultRegistryMutation"]).lower(),
            "defaultRegistry": config["defaultRegistry"],
            "generateSuccessEvents": str(config["generateSuccessEvents"]).lower(),
            "excludeGroups": ",".join(config["excludeGroups"]),
            "resourceFilters": "".join(f for f in config["resourceFilters"] if "{{" not in f),
            "webhooks": json.dumps(webhooks),
            "webhookAnnotations": json.dumps(config.get("webhookAnnotations") or {})}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kyverno", "namespace": NAMESPACE}, "data": data}


def chart_feature_flags() -> list[str]:
    """The admission controller's flags the chart derives from its `features:` defaults (templates/_helpers.tpl
    kyverno.features.flags) that change admission here: events omitted, registry credential helpers (for
    ghcr.io only `default`, the Docker config, and `github`, GITHUB_TOKEN, apply), ValidatingAdmissionPolicy
    generation, deferred loading, ConfigMap caching, the API call limits."""
    features = yaml.safe_load((go_module_dir("kyverno", KYVERNO_MODULE) / "charts" / "kyverno" / "values.yaml")
                              .read_text())["features"]
    return [f"--omitEvents={','.join(features['omitEvents']['eventTypes'])}",
            f"--registryCredentialHelpers={','.join(features['registryClient']['credentialHelpers'])}",
            f"--allowInsecureRegistry={str(features['registryClient']['allowInsecure']).lower()}",
            f"--admissionReports={str(features['admissionReports']['enabled']).lower()}",
            f"--autoUpdateWebhooks={str(features['autoUpdateWebhooks']['enabled']).lower()}",
            f"--enableConfigMapCaching={str(features['configMapCaching']['enabled']).lower()}",
            f"--enableDeferredLoading={str(features['deferredLoading']['enabled']).lower()}",
            f"--generateValidatingAdmissionPolicy={str(features['generateValidatingAdmissionPolicy']['enabled']).lower()}",
            f"--maxAPICallResponseLength={features['globalContext']['maxApiCallResponseLength']}",
            f"--enablePolicyException={str(features['policyExceptions']['enabled']).lower()}"]


@dataclass
class Kyverno(ProcessGroup):
    """Kyverno's admission controller (and reports controller) for one control plane; `stop()` ends exactly them."""

    folder: Path
    workdir: Path
    plane: ControlPlane
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for the admission controller (the registry proxy and its CA for image verification)."""

    def start(self, timeout: float = 120) -> "Kyverno":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.plane.install_crds(kyverno_crds())
        self.plane.apply_docs([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
                               chart_configuration()])
        self.port = free_port()
        env = {**os.environ, "KYVERNO_NAMESPACE": NAMESPACE, "KYVERNO_SVC": SERVICE,
               "KYVERNO_DEPLOYMENT": "kyverno-admission-controller", "KYVERNO_POD_NAME": "kyverno-admission-controller-0",
               "KYVERNO_SERVICEACCOUNT_NAME": "kyverno-admission-controller",
               "KYVERNO_ROLE_NAME": "kyverno:admission-controller", "INIT_CONFIG": "kyverno",
               "METRICS_CONFIG": "kyverno-metrics", **self.env}
        self._spawn("kyverno", env,
                    f"--kubeconfig={self.plane.kubeconfig}", f"--serverIP=127.0.0.1:{self.port}",
                    "--webhookServerHost=127.0.0.1", f"--webhookServerPort={self.port}",
                    f"--caSecretName={SERVICE}.{NAMESPACE}.svc.kyverno-tls-ca",
                    f"--tlsSecretName={SERVICE}.{NAMESPACE}.svc.kyverno-tls-pair",
                    "--disableMetrics=true", "--metricsHost=127.0.0.1", f"--metricsPort={free_port()}",
                    "--controllerRuntimeMetricsAddress=0",
                    "--reportsServiceAccountName=system:serviceaccount:kyverno:kyverno-reports-controller",
                    *chart_feature_flags(),
                    "--leaderElectionRetryPeriod=1s", "--disableLogColor", "--v=2")
        self._wait_for_webhooks(timeout)
        # The reports controller turns the admission controller's EphemeralReports into the PolicyReports
        # operators read (the chart runs it by default: reportsController.enabled).
        reports_env = {**env, "KYVERNO_SERVICEACCOUNT_NAME": "kyverno-reports-controller",
                       "KYVERNO_ROLE_NAME": "kyverno:reports-controller", "KYVERNO_DEPLOYMENT": "kyverno-reports-controller",
                       "KYVERNO_POD_NAME": "kyverno-reports-controller-0"}
        self._spawn("reports-controller", reports_env, f"--kubeconfig={self.plane.kubeconfig}", "--disableMetrics=true",
                    "--metricsHost=127.0.0.1", f"--metricsPort={free_port()}", "--leaderElectionRetryPeriod=1s", "--disableLogColor", "--v=2")
        return self

    def log_tail(self, name: str, lines: int = 40) -> str:
        """The last errors and warnings of a Kyverno log (its debug and trace lines drown them)."""
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        kept = [line for line in path.read_text(errors="replace").splitlines() if " DBG " not in line and " TRC " not in line]
        return "\n".join(kept[-lines:])

    def wait_ready(self, policies: list[str], timeout: float = 120) -> None:
        """Until every named ClusterPolicy is Ready and Kyverno's resource webhooks have rules for them."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            self.check_running()
            items = json.loads(self.plane.kubectl("get", "clusterpolicies", "-o", "json").stdout)["items"]
            ready = {p["metadata"]["name"] for p in items
                     if any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))}
            hooks = {}
            for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
                for config in json.loads(self.plane.kubectl("get", kind, "-o", "json").stdout)["items"]:
                    hooks[config["metadata"]["name"]] = len(config.get("webhooks") or [])
            missing = sorted(set(policies) - ready)
            empty = [n for n in ("kyverno-resource-validating-webhook-cfg", "kyverno-resource-mutating-webhook-cfg")
                     if not hooks.get(n)]
            if not missing and not empty:
                return
            state = f"not ready: {missing}; webhook configurations without webhooks: {empty}"
            time.sleep(1)
        raise RuntimeError(f"Kyverno not ready in {timeout:.0f} s ({state}):\n{self.log_tail('kyverno')}")

    def _spawn(self, name: str, env: dict[str, str], *args: str) -> None:
        self.spawn(name, [str(self.folder / name), *args], env)

    def _wait_for_webhooks(self, timeout: float) -> None:
        """Until Kyverno registered its webhooks and serves TLS with the CA it put in them (the webhook
        configurations appear before the serving certificate is loaded: calls in between fail)."""
        deadline = time.monotonic() + timeout
        last = "no webhook configuration"
        while time.monotonic() < deadline:
            self.check_running()
            result = self.plane.kubectl("get", "validatingwebhookconfigurations", "kyverno-policy-validating-webhook-cfg",
                                        "-o", "json", check=False)
            if result.returncode == 0:
                bundle = base64.b64decode(json.loads(result.stdout)["webhooks"][0]["clientConfig"]["caBundle"])
                context = ssl.create_default_context(cadata=bundle.decode())
                try:
                    with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/health/readiness", context=context,
                                                timeout=5) as response:
                        if response.status == 200:
                            return
                except (OSError, ssl.SSLError) as error:
                    last = f"readiness: {error}"
            time.sleep(1)
        raise RuntimeError(f"Kyverno's webhook not serving in {timeout:.0f} s ({last}):\n{self.log_tail('kyverno')}")

def with_key(rendered: dict, public_key: str) -> dict:
    """The rendered verify-images ClusterPolicy with its signers replaced by the key-based form the project
    renders for `supply_chain.public_key` with `transparency_log=False` (constructs/kubechat_deploy/
    admission.py attestors()): every rule, condition and failure action stays as rendered."""
    import copy

    from cdk8s import App, Chart, Testing

    from kubechat_deploy.security.admission import KyvernoPolicies, SupplyChainProps

    chart = Chart(App(), "keyed")
    KyvernoPolicies(chart, "kyverno", props=SupplyChainProps(public_key=public_key, transparency_log=False),
                    namespace="keyed")
    keyed = next(d for d in Testing.synth(chart) if d["metadata"]["name"] == "verify-images")
    entries = keyed["spec"]["rules"][0]["verifyImages"][0]["attestors"][0]["entries"]
    policy = copy.deepcopy(rendered)
    for rule in policy["spec"]["rules"]:
        for verify in rule.get("verifyImages", []):
            for attestor in verify.get("attestors", []):
                attestor["entries"] = copy.deepcopy(entries)
            for attestation in verify.get("attestations", []):
                for attestor in attestation.get("attestors", []):
                    attestor["entries"] = copy.deepcopy(entries)
    return policy
