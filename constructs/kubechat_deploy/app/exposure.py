"""Public exposure for staging and production through the Gateway API, served by the platform's Traefik
(docs/platform.md, "The front door"): a Gateway with an HTTP listener (the HTTP-01 challenge, and a redirect of
everything else to HTTPS) and an HTTPS listener with cert-manager's certificate; one host per service, because
both serve paths under `/api` (docs/app-contract.md, "Public routing"): the web front end at `host` (all paths,
its own `/api/*` routes included) and the API at `api_host` (all paths). Traefik Middlewares add the security
headers, limit request bodies, and rate-limit the API per client address. Each host's traffic goes through a
TraefikService that splits it between the stable and the canary Service by weight: Argo Rollouts moves the
weights during a canary (trafficRouting.traefik, delivery/progressive.py).
Rendered as the Kustomize component dist/components/public-gateway."""
from __future__ import annotations

from dataclasses import dataclass

from cdk8s_plus_28 import k8s
from constructs import Construct

import imports.cert_manager.io.cert_manager as cm
import imports.gateway_api.io.k8s.networking.gateway as gw
import imports.traefik.io.traefik as tr

from kubechat_deploy import validation as v
from kubechat_deploy.app.api import KubeChatApi
from kubechat_deploy.app.web import CSP_CONFIG_MAP as WEB_CSP_CONFIG_MAP, KubeChatWeb
from kubechat_deploy.delivery.sync import Wave, wave
from kubechat_deploy.labels import standard_labels
from kubechat_deploy.security.network import namespace_peer
from kubechat_deploy.versions import (ACME_HTTP01_SOLVER_LABEL, ACME_HTTP01_SOLVER_PORT, TRAEFIK_ENTRYPOINTS,
                                      TRAEFIK_GATEWAY_CLASS)

LETSENCRYPT = {
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "letsencrypt-production": "https://acme-v02.api.letsencrypt.org/directory",
}
GATEWAY = "kubechat"
TLS_SECRET = "kubechat-tls"
HEADERS_MIDDLEWARE = "kubechat-security-headers"
"""The API host's headers: the security headers and a Content-Security-Policy."""
WEB_HEADERS_MIDDLEWARE = "kubechat-web-security-headers"
"""The web host's headers: the same security headers without a Content-Security-Policy, which the web app sends
itself with a fresh nonce per response (WEB_CSP_CONFIG_MAP)."""
BODY_LIMIT_MIDDLEWARE = "kubechat-request-body-limit"
RATE_LIMIT_MIDDLEWARE = "kubechat-api-rate-limit"
STREAM_PATH = "/api/chat/stream"
"""The API's server-sent event streams (docs/app-contract.md): never buffered, so not body-limited here."""
HSTS_SECONDS = 31536000


def content_security_policy(api_host: str, script_src: str = "'self'") -> str:
    """The pages may call the API's host (chat streams) and nothing else."""
    return (f"default-src 'self'; script-src {script_src}; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data:; connect-src 'self' https://{api_host}; frame-ancestors 'none'; "
            "base-uri 'self'; form-action 'self'")


def web_content_security_policy(api_host: str) -> str:
    """The web pages' policy: scripts only with the response's nonce, and what those load ('strict-dynamic':
    Next.js adds its chunks' script elements at run time)."""
    return content_security_policy(api_host, "'self' 'nonce-{nonce}' 'strict-dynamic'")


SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
"""Every public response carries these and, on HTTPS, Strict-Transport-Security; the API host's responses the
Content-Security-Policy too (the web app sends the pages' own, with its nonce: WEB_CSP_CONFIG_MAP)."""


def stable_service(service: str) -> str:
    """The Service Argo Rollouts points at the stable pods (its stableService). The workload's own Service
    (`service`) keeps selecting every pod: the web's in-cluster calls and the API's ServiceMonitor use it, and the
    canary analysis reads the canary pods' own series through it."""
    return f"{service}-stable"


def canary_service(service: str) -> str:
    """The Service Argo Rollouts points at the canary's pods (its canaryService)."""
    return f"{service}-canary"


@dataclass(frozen=True, kw_only=True)
class ExposureProps:
    """Settings of the public entry point; overlays patch hosts, issuer and e-mail per environment."""

    host: str = "kubechat.example.com"
    """Public hostname of the web front end (overlays set the real one). Default: kubechat.example.com."""
    api_host: str = "api.kubechat.example.com"
    """Public hostname of the API (overlays set the real one). Default: api.kubechat.example.com."""
    issuer: str = "letsencrypt-production"
    """ClusterIssuer of the certificate: letsencrypt-staging or letsencrypt-production. Default: letsencrypt-production."""
    acme_email: str = "platform@example.com"
    """Contact for Let's Encrypt expiry notices (overlays set a real one). Default: platform@example.com."""
    renew_before: str = "720h"
    """Renew this long before expiry (30 days of a 90-day certificate). Default: 720h."""
    max_request_body_bytes: int = 10 * 1024 * 1024
    """Largest request body (manifests pasted into chat), refused above with 413; streams excepted. Default: 10 MiB."""
    api_requests_per_second: int = 50
    """Requests per second one client address may make to the API, on average. Default: 50."""
    api_burst: int = 100
    """Requests one client address may make to the API at once above the average. Default: 100."""

    def __post_init__(self) -> None:
        v.dns_subdomain("exposure.host", self.host)
        v.dns_subdomain("exposure.api_host", self.api_host)
        if self.api_host == self.host:
            raise v.SettingsError("exposure.api_host", self.api_host,
                                  "a host other than exposure.host (the web and the API both serve /api paths)")
        if self.issuer not in LETSENCRYPT:
            raise v.SettingsError("exposure.issuer", self.issuer, " or ".join(sorted(LETSENCRYPT)))
        if not isinstance(self.acme_email, str) or "@" not in self.acme_email or " " in self.acme_email:
            raise v.SettingsError("exposure.acme_email", self.acme_email, "an e-mail address")
        if not isinstance(self.renew_before, str) or not self.renew_before[:-1].isdigit() or self.renew_before[-1] not in "hm":
            raise v.SettingsError("exposure.renew_before", self.renew_before, "a duration in hours or minutes, e.g. 720h")
        v.at_least("exposure.max_request_body_bytes", self.max_request_body_bytes, 1024)
        v.at_least("exposure.api_requests_per_second", self.api_requests_per_second, 1)
        v.at_least("exposure.api_burst", self.api_burst, 1)


class PublicExposure(Construct):
    def __init__(self, scope: Construct, id: str, *, props: ExposureProps, api: KubeChatApi, web: KubeChatWeb,
                 proxy_namespace: str) -> None:
        super().__init__(scope, id)
        labels = standard_labels("exposure")
        meta = lambda name, w: {"name": name, "labels": labels, "annotations": wave(w)}  # noqa: E731
        http, https = "http", "https"
        for issuer, server in sorted(LETSENCRYPT.items()):
            # HTTP-01 through the Gateway: cert-manager creates, in the Certificate's namespace, an HTTPRoute with
            # these parentRefs and an Exact match for the token's path (cert-manager v1.21.1
            # pkg/issuer/acme/http/httproute.go), which outranks the redirect's catch-all "/" (traefik v3.7.13
            # pkg/provider/kubernetes/gateway/httproute.go buildPathRule: Exact 100000, PathPrefix "/" 1).
            cm.ClusterIssuer(self, issuer, metadata=meta(issuer, Wave.CONFIGURATION), spec=cm.ClusterIssuerSpec(
                acme=cm.ClusterIssuerSpecAcme(
                    server=server, email=props.acme_email,
                    private_key_secret_ref=cm.ClusterIssuerSpecAcmePrivateKeySecretRef(name=f"{issuer}-account-key"),
                    solvers=[cm.ClusterIssuerSpecAcmeSolvers(http01=cm.ClusterIssuerSpecAcmeSolversHttp01(
                        gateway_http_route=cm.ClusterIssuerSpecAcmeSolversHttp01GatewayHttpRoute(parent_refs=[
                            cm.ClusterIssuerSpecAcmeSolversHttp01GatewayHttpRouteParentRefs(
                                group="gateway.networking.k8s.io", kind="Gateway", name=GATEWAY,
                                section_name=http)])))])))
        # A temporary self-signed certificate is in the Secret at once (cert-manager v1.21.1
        # pkg/controller/certificates/issuing/temporary.go): until the real one is issued, Traefik can load the
        # HTTPS listener's certificateRefs, so the Gateway and its routes are not Degraded (Argo CD's Gateway
        # health: a listener whose ResolvedRefs is False), which would fail the first sync of an environment.
        cm.Certificate(self, "certificate", metadata={**meta(TLS_SECRET, Wave.EXPOSURE), "annotations": {
                           **wave(Wave.EXPOSURE), "cert-manager.io/issue-temporary-certificate": "true"}},
                       spec=cm.CertificateSpec(
                           secret_name=TLS_SECRET, dns_names=[props.host, props.api_host], renew_before=props.renew_before,
                           issuer_ref=cm.CertificateSpecIssuerRef(kind="ClusterIssuer", name=props.issuer,
                                                                   group="cert-manager.io"),
                           private_key=cm.CertificateSpecPrivateKey(algorithm=cm.CertificateSpecPrivateKeyAlgorithm.ECDSA,
                                                                    size=256,
                                                                    rotation_policy=cm.CertificateSpecPrivateKeyRotationPolicy.ALWAYS)))
        # HTTP-01: cert-manager starts a solver pod here (image admitted by supply_chain.allowed_images); Traefik
        # must reach it on its port through the default-deny policy. Nothing else.
        k8s.KubeNetworkPolicy(self, "acme-solver", metadata=k8s.ObjectMeta(
            name="kubechat-acme-http01-solver", labels=labels, annotations=wave(Wave.NAMESPACE)),
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels={ACME_HTTP01_SOLVER_LABEL: "true"}),
                policy_types=["Ingress", "Egress"],
                ingress=[k8s.NetworkPolicyIngressRule(
                    from_=[namespace_peer(proxy_namespace)],
                    ports=[k8s.NetworkPolicyPort(port=k8s.IntOrString.from_number(ACME_HTTP01_SOLVER_PORT),
                                                 protocol="TCP")])]))
        # Listener ports are Traefik's entry points (versions.TRAEFIK_ENTRYPOINTS); routes only from this namespace.
        same = gw.GatewaySpecListenersAllowedRoutes(namespaces=gw.GatewaySpecListenersAllowedRoutesNamespaces(
            from_=gw.GatewaySpecListenersAllowedRoutesNamespacesFrom.SAME))
        gw.Gateway(self, "gateway", metadata=meta(GATEWAY, Wave.EXPOSURE), spec=gw.GatewaySpec(
            gateway_class_name=TRAEFIK_GATEWAY_CLASS,
            listeners=[gw.GatewaySpecListeners(name=http, port=TRAEFIK_ENTRYPOINTS[http], protocol="HTTP",
                                               allowed_routes=same),
                       gw.GatewaySpecListeners(name=https, port=TRAEFIK_ENTRYPOINTS[https], protocol="HTTPS",
                                               allowed_routes=same, tls=gw.GatewaySpecListenersTls(
                                                   mode=gw.GatewaySpecListenersTlsMode.TERMINATE,
                                                   certificate_refs=[gw.GatewaySpecListenersTlsCertificateRefs(
                                                       group="", kind="Secret", name=TLS_SECRET)]))]))
        # The Middlewares in the workloads' wave, before the routes that name them: a route Traefik reads while a
        # Middleware it names is missing is ResolvedRefs False (pkg/provider/kubernetes/gateway/httproute.go),
        # which Argo CD's HTTPRoute health calls Degraded, and a Degraded resource fails the sync.
        for name, policy in ((HEADERS_MIDDLEWARE, content_security_policy(props.api_host)), (WEB_HEADERS_MIDDLEWARE, None)):
            tr.Middleware(self, name, metadata=meta(name, Wave.WORKLOADS), spec=tr.MiddlewareSpec(
                headers=tr.MiddlewareSpecHeaders(
                    content_security_policy=policy,
                    frame_deny=True, content_type_nosniff=True,
                    referrer_policy=SECURITY_HEADERS["Referrer-Policy"],
                    permissions_policy=SECURITY_HEADERS["Permissions-Policy"],
                    # Sent on HTTPS responses only (Traefik adds it when the request came over TLS).
                    sts_seconds=HSTS_SECONDS, sts_include_subdomains=True)))
        # Before the web's pods (which read it at start): the workloads' wave.
        k8s.KubeConfigMap(self, "web-csp", metadata=k8s.ObjectMeta(name=WEB_CSP_CONFIG_MAP, labels=labels,
                                                                   annotations=wave(Wave.WORKLOADS)),
                          data={"CONTENT_SECURITY_POLICY": web_content_security_policy(props.api_host)})
        tr.Middleware(self, "body-limit", metadata=meta(BODY_LIMIT_MIDDLEWARE, Wave.WORKLOADS), spec=tr.MiddlewareSpec(
            buffering=tr.MiddlewareSpecBuffering(max_request_body_bytes=props.max_request_body_bytes,
                                                 mem_request_body_bytes=1024 * 1024)))
        tr.Middleware(self, "rate-limit", metadata=meta(RATE_LIMIT_MIDDLEWARE, Wave.WORKLOADS), spec=tr.MiddlewareSpec(
            rate_limit=tr.MiddlewareSpecRateLimit(average=props.api_requests_per_second, burst=props.api_burst)))

        def middleware(name: str) -> gw.HttpRouteSpecRulesFilters:
            return gw.HttpRouteSpecRulesFilters(type=gw.HttpRouteSpecRulesFiltersType.EXTENSION_REF,
                                                extension_ref=gw.HttpRouteSpecRulesFiltersExtensionRef(
                                                    group="traefik.io", kind="Middleware", name=name))

        def on(listener: str) -> list[gw.HttpRouteSpecParentRefs]:
            return [gw.HttpRouteSpecParentRefs(group="gateway.networking.k8s.io", kind="Gateway", name=GATEWAY,
                                               section_name=listener)]

        gw.HttpRoute(self, "redirect", metadata=meta("kubechat-https-redirect", Wave.EXPOSURE), spec=gw.HttpRouteSpec(
            parent_refs=on(http), hostnames=[props.host, props.api_host],
            rules=[gw.HttpRouteSpecRules(filters=[gw.HttpRouteSpecRulesFilters(
                type=gw.HttpRouteSpecRulesFiltersType.REQUEST_REDIRECT,
                request_redirect=gw.HttpRouteSpecRulesFiltersRequestRedirect(
                    scheme=gw.HttpRouteSpecRulesFiltersRequestRedirectScheme.HTTPS,
                    status_code=gw.HttpRouteSpecRulesFiltersRequestRedirectStatusCode.VALUE_301))])]))
        # The body limit only on the API's host: Traefik's buffering holds the whole response too (vulcand/oxy
        # v2.1.0 buffer/buffer.go), which would hold back the web's streamed pages; uploads go to the API.
        for workload, host, limits, headers in ((web, props.host, (), WEB_HEADERS_MIDDLEWARE),
                                                (api, props.api_host, (RATE_LIMIT_MIDDLEWARE, BODY_LIMIT_MIDDLEWARE),
                                                 HEADERS_MIDDLEWARE)):
            service, port = workload.service_name, workload.http_port_name
            # The split Argo Rollouts moves: all to the stable pods until a canary starts. Its two Services start
            # as the workload's own selector; Rollouts adds each one's pod-template hash. In the workloads' wave:
            # the Rollouts (the next wave) are refused while their Services or TraefikService are missing.
            for name in (stable_service(service), canary_service(service)):
                k8s.KubeService(self, name, metadata=k8s.ObjectMeta(name=name, labels=labels, annotations=wave(Wave.WORKLOADS)),
                                spec=k8s.ServiceSpec(type="ClusterIP", selector=workload.pod_selector, ports=[k8s.ServicePort(
                                    name=port, port=workload.props.http_port, target_port=k8s.IntOrString.from_string(port),
                                    protocol="TCP")]))
            tr.TraefikService(self, f"{service}-split", metadata=meta(service, Wave.WORKLOADS), spec=tr.TraefikServiceSpec(
                weighted=tr.TraefikServiceSpecWeighted(services=[
                    tr.TraefikServiceSpecWeightedServices(name=name, port=tr.TraefikServiceSpecWeightedServicesPort.from_string(port),
                                                          weight=weight)
                    for name, weight in ((stable_service(service), 100), (canary_service(service), 0))])))
            backend = [gw.HttpRouteSpecRulesBackendRefs(group="traefik.io", kind="TraefikService", name=service)]
            rules = [gw.HttpRouteSpecRules(filters=[middleware(m) for m in (*limits, headers)],
                                           backend_refs=backend)]
            if workload is api:  # streams are never buffered, so never body-limited here (the API limits its own)
                rules.insert(0, gw.HttpRouteSpecRules(
                    matches=[gw.HttpRouteSpecRulesMatches(path=gw.HttpRouteSpecRulesMatchesPath(
                        type=gw.HttpRouteSpecRulesMatchesPathType.PATH_PREFIX, value=STREAM_PATH))],
                    filters=[middleware(m) for m in (RATE_LIMIT_MIDDLEWARE, HEADERS_MIDDLEWARE)], backend_refs=backend))
            gw.HttpRoute(self, f"{service}-route", metadata=meta(service, Wave.EXPOSURE), spec=gw.HttpRouteSpec(
                parent_refs=on(https), hostnames=[host], rules=rules))
