"""Public exposure for staging and production: an Ingress (ingress-nginx by default) with one host per
service, because both serve paths under `/api` (docs/app-contract.md, "Public routing"): the web front
end at `host` (all paths, its own `/api/*` routes included) and the API at `api_host` (all paths), TLS from cert-manager (Let's Encrypt over ACME HTTP-01),
HTTPS redirect, security headers and timeouts long enough for streaming chat.
Rendered as the Kustomize component dist/components/tls-ingress."""
from __future__ import annotations

from dataclasses import dataclass

from cdk8s_plus_28 import k8s
from constructs import Construct

import imports.cert_manager.io.cert_manager as cm

from kubechat_deploy import validation as v
from kubechat_deploy.app.api import KubeChatApi
from kubechat_deploy.labels import standard_labels
from kubechat_deploy.security.network import namespace_peer
from kubechat_deploy.delivery.sync import Wave, wave
from kubechat_deploy.versions import ACME_HTTP01_SOLVER_LABEL, ACME_HTTP01_SOLVER_PORT
from kubechat_deploy.app.web import KubeChatWeb

LETSENCRYPT = {
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "letsencrypt-production": "https://acme-v02.api.letsencrypt.org/directory",
}

def content_security_policy(api_host: str) -> str:
    """The pages may call the API's host (chat streams) and nothing else."""
    return ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data:; connect-src 'self' https://{api_host}; frame-ancestors 'none'; "
            "base-uri 'self'; form-action 'self'")


SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass(frozen=True, kw_only=True)
class IngressProps:
    """Settings of the public entry point; overlays patch host, issuer and e-mail per environment."""

    host: str = "kubechat.example.com"
    """Public hostname of the web front end (overlays set the real one). Default: kubechat.example.com."""
    api_host: str = "api.kubechat.example.com"
    """Public hostname of the API (overlays set the real one). Default: api.kubechat.example.com."""
    ingress_class: str = "nginx"
    """IngressClass name. Default: nginx (ingress-nginx)."""
    issuer: str = "letsencrypt-production"
    """ClusterIssuer of the certificate: letsencrypt-staging or letsencrypt-production. Default: letsencrypt-production."""
    acme_email: str = "platform@example.com"
    """Contact for Let's Encrypt expiry notices (overlays set a real one). Default: platform@example.com."""
    renew_before: str = "720h"
    """Renew this long before expiry (30 days of a 90-day certificate). Default: 720h."""
    stream_timeout_seconds: int = 3600
    """Proxy read/send timeout, so streaming chat responses are not cut. Default: 3600."""
    max_body_size: str = "10m"
    """Largest request body (manifests pasted into chat). Default: 10m."""

    def __post_init__(self) -> None:
        v.dns_subdomain("ingress.host", self.host)
        v.dns_subdomain("ingress.api_host", self.api_host)
        if self.api_host == self.host:
            raise v.SettingsError("ingress.api_host", self.api_host,
                                  "a host other than ingress.host (the web and the API both serve /api paths)")
        v.dns_label("ingress.ingress_class", self.ingress_class)
        if self.issuer not in LETSENCRYPT:
            raise v.SettingsError("ingress.issuer", self.issuer, " or ".join(sorted(LETSENCRYPT)))
        if not isinstance(self.acme_email, str) or "@" not in self.acme_email or " " in self.acme_email:
            raise v.SettingsError("ingress.acme_email", self.acme_email, "an e-mail address")
        if not isinstance(self.renew_before, str) or not self.renew_before[:-1].isdigit() or self.renew_before[-1] not in "hm":
            raise v.SettingsError("ingress.renew_before", self.renew_before, "a duration in hours or minutes, e.g. 720h")
        v.at_least("ingress.stream_timeout_seconds", self.stream_timeout_seconds, 60)
        v.quantity("ingress.max_body_size", self.max_body_size.upper().replace("M", "M"))


class KubeChatIngress(Construct):
    def __init__(self, scope: Construct, id: str, *, props: IngressProps, api: KubeChatApi, web: KubeChatWeb,
                 ingress_namespace: str) -> None:
        super().__init__(scope, id)
        labels = standard_labels("ingress")
        self.name = "kubechat"
        self.tls_secret_name = "kubechat-tls"
        self.headers_config_map = "kubechat-security-headers"
        for issuer, server in sorted(LETSENCRYPT.items()):
            cm.ClusterIssuer(self, issuer, metadata={"name": issuer, "labels": labels, "annotations": wave(Wave.CONFIGURATION)}, spec=cm.ClusterIssuerSpec(
                acme=cm.ClusterIssuerSpecAcme(
                    server=server, email=props.acme_email,
                    private_key_secret_ref=cm.ClusterIssuerSpecAcmePrivateKeySecretRef(name=f"{issuer}-account-key"),
                    solvers=[cm.ClusterIssuerSpecAcmeSolvers(http01=cm.ClusterIssuerSpecAcmeSolversHttp01(
                        ingress=cm.ClusterIssuerSpecAcmeSolversHttp01Ingress(ingress_class_name=props.ingress_class)))])))
        cm.Certificate(self, "certificate", metadata={"name": self.tls_secret_name, "labels": labels, "annotations": wave(Wave.EXPOSURE)},
                       spec=cm.CertificateSpec(
                           secret_name=self.tls_secret_name, dns_names=[props.host, props.api_host], renew_before=props.renew_before,
                           issuer_ref=cm.CertificateSpecIssuerRef(kind="ClusterIssuer", name=props.issuer,
                                                                   group="cert-manager.io"),
                           private_key=cm.CertificateSpecPrivateKey(algorithm=cm.CertificateSpecPrivateKeyAlgorithm.ECDSA,
                                                                    size=256,
                                                                    rotation_policy=cm.CertificateSpecPrivateKeyRotationPolicy.ALWAYS)))
        # HTTP-01: cert-manager starts a solver pod here (image admitted by supply_chain.allowed_images);
        # the ingress controller must reach it on its port through the default-deny policy. Nothing else.
        k8s.KubeNetworkPolicy(self, "acme-solver", metadata=k8s.ObjectMeta(
            name="kubechat-acme-http01-solver", labels=labels, annotations=wave(Wave.NAMESPACE)),
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels={ACME_HTTP01_SOLVER_LABEL: "true"}),
                policy_types=["Ingress", "Egress"],
                ingress=[k8s.NetworkPolicyIngressRule(
                    from_=[namespace_peer(ingress_namespace)],
                    ports=[k8s.NetworkPolicyPort(port=k8s.IntOrString.from_number(ACME_HTTP01_SOLVER_PORT),
                                                 protocol="TCP")])]))
        # ingress-nginx adds these response headers (custom-headers annotation; the controller must
        # allow them in global-allowed-response-headers, see docs/platform.md).
        k8s.KubeConfigMap(self, "headers", metadata=k8s.ObjectMeta(name=self.headers_config_map, labels=labels,
                                                                 annotations=wave(Wave.CONFIGURATION)),
                          data={"Content-Security-Policy": content_security_policy(props.api_host), **SECURITY_HEADERS})
        timeout = str(props.stream_timeout_seconds)
        backend = lambda service, port: k8s.IngressBackend(service=k8s.IngressServiceBackend(  # noqa: E731
            name=service, port=k8s.ServiceBackendPort(name=port)))
        k8s.KubeIngress(self, "ingress", metadata=k8s.ObjectMeta(
            name=self.name, labels=labels,
            annotations={
                **wave(Wave.EXPOSURE),
                "nginx.ingress.kubernetes.io/ssl-redirect": "true",
                "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
                "nginx.ingress.kubernetes.io/proxy-read-timeout": timeout,
                "nginx.ingress.kubernetes.io/proxy-send-timeout": timeout,
                # Server-sent events must reach the browser as they are written.
                "nginx.ingress.kubernetes.io/proxy-buffering": "off",
                "nginx.ingress.kubernetes.io/proxy-body-size": props.max_body_size,
            }),
            spec=k8s.IngressSpec(
                ingress_class_name=props.ingress_class,
                tls=[k8s.IngressTls(hosts=[props.host, props.api_host], secret_name=self.tls_secret_name)],
                rules=[
                    k8s.IngressRule(host=props.host, http=k8s.HttpIngressRuleValue(paths=[
                        k8s.HttpIngressPath(path="/", path_type="Prefix", backend=backend(web.service_name, web.http_port_name))])),
                    k8s.IngressRule(host=props.api_host, http=k8s.HttpIngressRuleValue(paths=[
                        k8s.HttpIngressPath(path="/", path_type="Prefix", backend=backend(api.service_name, api.http_port_name))])),
                ]))
