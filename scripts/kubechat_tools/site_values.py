"""The site values a team adopting KubeChat sets before staging and production go live, and the release
check that refuses the repository's examples in them (`make preflight RELEASE=1`, docs/install.md,
"Your site's values"). Each placeholder is named with the file or setting where the real value goes."""
from __future__ import annotations

import re
from dataclasses import dataclass

KUBECHAT_IMAGES = ("ghcr.io/kubechat/kubechat-api", "ghcr.io/kubechat/kubechat-web")


@dataclass(frozen=True)
class Placeholder:
    pattern: str
    """Regular expression matched against every word of every string value of the rendered objects."""
    what: str
    where: dict[str, str]
    """Kind (or kind/name prefix) -> where the real value is set; {env} is the environment; "" is the default."""

    def where_for(self, doc: dict, env: str) -> str:
        kind, name = doc.get("kind", ""), doc.get("metadata", {}).get("name", "")
        for key, where in self.where.items():
            if key and (key == kind or (key.startswith(kind + "/") and name.startswith(key.split("/", 1)[1]))):
                return where.format(env=env)
        return self.where[""].format(env=env)


PLACEHOLDERS = (
    Placeholder(r"(^|[./@])example\.(com|org|net)\b", "an example domain", {
        "HTTPRoute": "overlays/{env}/tls.yaml (the HTTPRoutes' hostnames)",
        "Certificate": "overlays/{env}/tls.yaml (Certificate dnsNames)",
        "ClusterIssuer": "ExposureProps.acme_email (constructs/kubechat_deploy/app/exposure.py): the address Let's Encrypt "
                         "sends expiry notices to",
        "ConfigMap/kubechat-api-config": "overlays/{env}/api-settings.env (CORS_ALLOWED_ORIGINS, PUBLIC_URL, PUBLIC_API_URL)",
        "Middleware/kubechat-security-headers": "overlays/{env}/tls.yaml (the Content-Security-Policy's connect-src: the API host)",
        "ConfigMap/kubechat-web-content-security-policy": "overlays/{env}/tls.yaml (the web pages' Content-Security-Policy's "
                                                          "connect-src: the API host)",
        "ConfigMap/argocd-notifications-cm": "DeliveryProps.argocd_url (constructs/kubechat_deploy/platform/props.py): "
                                            "your Argo CD's address, for the links in notifications, then make render",
        "": "overlays/{env}/"}),
    Placeholder(r"^https://github\.com/kubechat/kubechat-deploy\.git$", "the upstream repository URL", {
        "": "DeliveryProps.repo_url (constructs/kubechat_deploy/platform/props.py): your fork's URL, then make render"}),
    Placeholder(r"^s3://kubechat-backups-(staging|production)/", "the example backup bucket", {
        "ObjectStore": "overlays/{env}/backups.yaml (destinationPath, endpointURL)",
        "ConfigMap/kubechat-backup-settings": "overlays/{env}/backup-settings.env (BACKUP_TARGET)",
        "": "overlays/{env}/backups.yaml"}),
)


def strings(value, path: str = ""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def find_placeholders(docs: list[dict], env: str) -> list[str]:
    """One line per placeholder value in `docs` (an environment's or the platform's render)."""
    found = []
    for doc in docs:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        for path, value in strings(doc):
            for line in value.splitlines() or [value]:
                for word in re.split(r"[\s,;\"'=]+", line):
                    for placeholder in PLACEHOLDERS:
                        if word and re.search(placeholder.pattern, word):
                            found.append(f"{env}: {name} {path} = {word!r} is {placeholder.what}; set it in "
                                         f"{placeholder.where_for(doc, env)}")
    return sorted(set(found))


def undigested_images(docs: list[dict], env: str) -> list[str]:
    """Production runs KubeChat's images by digest only (the image-digests admission policy refuses
    others). The repository holds none (no registry holds KubeChat's images for it): the release writes
    them into overlays/production/kustomization.yaml."""
    found = []
    for doc in docs:
        for path, value in strings(doc.get("spec", {})):
            if path.endswith(".image") and value.startswith(KUBECHAT_IMAGES) and "@sha256:" not in value:
                found.append(f"{env}: {doc['kind']}/{doc['metadata']['name']} runs {value} without a digest; set "
                             f"it with scripts/release.py upgrade --env {env} --api-digest sha256:... "
                             f"--web-digest sha256:... (the digests your release pipeline pushed)")
    return sorted(set(found))


def release_problems(environments: dict[str, list[dict]], platform: list[dict]) -> list[str]:
    """Everything that keeps staging and production from a real release: placeholders anywhere in their
    render or the platform's, and production images without digests."""
    problems = []
    for env in ("staging", "production"):
        problems += find_placeholders(environments[env], env)
    problems += find_placeholders(platform, "platform")
    problems += undigested_images(environments["production"], "production")
    return problems
