"""Write docs/configuration.md: every setting of the constructs (read from their props dataclasses:
name, default, the docstring under each field) and every per-environment value (read from the
rendered environments), so the reference cannot drift. `make render` runs it; tests fail when stale.

Usage: python scripts/config_reference.py [--check]
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubechat_tools.manifests import load_dir  # noqa: E402
from kubechat_tools.paths import DIST, ENVIRONMENTS, ROOT  # noqa: E402

PACKAGE = ROOT / "constructs" / "kubechat_deploy"
TARGET = ROOT / "docs" / "configuration.md"


def dataclasses_in_package() -> dict[str, tuple[str, list[tuple[str, str, str]]]]:
    """class name -> (module file, [(field, default, doc)])"""
    found = {}
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if not isinstance(node, ast.ClassDef) or not node.name.endswith("Props"):
                continue
            fields = []
            body = node.body
            for i, item in enumerate(body):
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    default = ast.unparse(item.value) if item.value is not None else "(required)"
                    default = re.sub(r"field\(default_factory=(lambda: )?", "", default).rstrip(")") \
                        if default.startswith("field(") else default
                    doc = ""
                    if i + 1 < len(body) and isinstance(body[i + 1], ast.Expr) and isinstance(body[i + 1].value, ast.Constant):
                        doc = " ".join(str(body[i + 1].value.value).split())
                    fields.append((item.target.id, default, doc))
            found[node.name] = (path.name, fields)
    return found


def composition() -> list[tuple[str, str]]:
    """KubeChatProps' fields in order: (field, props class)."""
    tree = ast.parse((PACKAGE / "chart.py").read_text())
    props = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "KubeChatProps")
    return [(item.target.id, ast.unparse(item.annotation)) for item in props.body if isinstance(item, ast.AnnAssign)]


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_section() -> str:
    classes = dataclasses_in_package()
    out = ["## Construct settings\n",
           "Environment-neutral settings, in Python (`constructs/kubechat_deploy/`). Change a default in its "
           "dataclass, run `make render`, review the diff. Every value is checked when the settings are built "
           "(an invalid one stops the render, naming the field).\n"]
    for field, cls in composition():
        module, fields = classes[cls]
        out.append(f"### `{field}`: `{cls}` ({module})\n")
        out.append("| setting | default | meaning |\n|---|---|---|")
        for name, default, doc in fields:
            meaning = re.sub(r"\s*Default: .*$", "", doc)
            out.append(f"| `{field}.{name}` | `{cell(default)}` | {cell(meaning)} |")
        out.append("")
    return "\n".join(out)


def find(docs, kind, name_prefix):
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"].startswith(name_prefix):
            return doc
    return None


def dig(obj, *path, default="-"):
    for key in path:
        if isinstance(obj, list):
            obj = obj[key] if isinstance(key, int) and len(obj) > key else None
        elif isinstance(obj, dict):
            obj = obj.get(key)
        else:
            obj = None
        if obj is None:
            return default
    return obj


def environment_rows(envs: dict[str, list[dict]]) -> list[tuple[str, str, dict[str, str]]]:
    """(setting, where it is set, env -> value)."""
    def per_env(fn):
        return {env: str(fn(docs)) for env, docs in envs.items()}

    def container(docs, name):
        dep = find(docs, "Deployment", name)
        return dig(dep, "spec", "template", "spec", "containers", 0, default={})

    def digest_pinning(docs) -> str:
        if "@sha256:" in dig(container(docs, "kubechat-api"), "image"):
            return "yes"
        required = any(x["kind"] == "ValidatingAdmissionPolicy" and x["metadata"]["name"].endswith("image-digests")
                       for x in docs)
        return "required, written by scripts/release.py (none committed)" if required else "no"

    rows = [
        ("Namespace", "(generated: kubechat-<env>)", per_env(lambda d: next(x["metadata"]["name"] for x in d if x["kind"] == "Namespace"))),
        ("Release version (image tags, VERSION)", "kustomization.yaml", per_env(
            lambda d: dig(find(d, "Deployment", "kubechat-api"), "metadata", "labels", "app.kubernetes.io/version"))),
        ("Images pinned by digest", "kustomization.yaml", per_env(digest_pinning)),
        ("Schema version (SCHEMA_VERSION)", "kustomization.yaml", per_env(lambda d: dig(find(d, "ConfigMap", "kubechat-release-"), "data", "SCHEMA_VERSION"))),
    ]
    for key in ("LOG_LEVEL", "CORS_ALLOWED_ORIGINS", "PUBLIC_URL", "FEATURE_WRITE_ACTIONS", "FEATURE_STREAMING"):
        rows.append((f"API setting {key}", "api-settings.env", per_env(
            lambda d, k=key: dig(find(d, "ConfigMap", "kubechat-api-config-"), "data", k) or "(empty)")))
    for name in ("kubechat-api", "kubechat-web"):
        rows += [
            (f"{name} replicas (HPA min-max)", "scaling.yaml", per_env(lambda d, n=name: "{}-{}".format(
                dig(find(d, "HorizontalPodAutoscaler", n), "spec", "minReplicas"),
                dig(find(d, "HorizontalPodAutoscaler", n), "spec", "maxReplicas")))),
            (f"{name} requests (CPU/memory)", "resources.yaml", per_env(lambda d, n=name: "{} / {}".format(
                dig(container(d, n), "resources", "requests", "cpu"), dig(container(d, n), "resources", "requests", "memory")))),
            (f"{name} limits (CPU/memory)", "resources.yaml", per_env(lambda d, n=name: "{} / {}".format(
                dig(container(d, n), "resources", "limits", "cpu"), dig(container(d, n), "resources", "limits", "memory")))),
            (f"{name} canary steps", "progressive-delivery component, canary.yaml", per_env(lambda d, n=name: " ".join(
                f"{s['setWeight']}%" if "setWeight" in s else f"pause {s['pause'].get('duration', '')}"
                for s in dig(find(d, "Rollout", n), "spec", "strategy", "canary", "steps", default=[])) or "none (Deployment)")),
        ]
    cluster = lambda d: find(d, "Cluster", "kubechat-db")  # noqa: E731
    rows += [
        ("PostgreSQL instances", "database.yaml", per_env(lambda d: dig(cluster(d), "spec", "instances"))),
        ("PostgreSQL anti-affinity", "database.yaml", per_env(lambda d: dig(cluster(d), "spec", "affinity", "podAntiAffinityType"))),
        ("PostgreSQL storage (size, class)", "database.yaml", per_env(lambda d: "{}, {}".format(
            dig(cluster(d), "spec", "storage", "size"), dig(cluster(d), "spec", "storage", "storageClass", default="cluster default")))),
        ("PostgreSQL memory", "database.yaml", per_env(lambda d: dig(cluster(d), "spec", "resources", "requests", "memory"))),
        ("PgBouncer pods", "database.yaml", per_env(lambda d: dig(find(d, "Pooler", "kubechat-db-pooler-rw"), "spec", "instances"))),
        ("Cache maxmemory", "redis.yaml", per_env(lambda d: next((e["value"] for e in dig(find(d, "StatefulSet", "kubechat-redis"), "spec", "template", "spec", "containers", 0, "env", default=[]) if e["name"] == "REDIS_MAXMEMORY"), "-"))),
        ("Cache volume", "redis-storage.yaml", per_env(lambda d: dig(find(d, "StatefulSet", "kubechat-redis"), "spec", "volumeClaimTemplates", 0, "spec", "resources", "requests", "storage"))),
        ("Physical backups: object store", "backups.yaml", per_env(lambda d: dig(find(d, "ObjectStore", "kubechat-backups"), "spec", "configuration", "destinationPath", default="none"))),
        ("Physical backups: retention", "backups.yaml", per_env(lambda d: dig(find(d, "ObjectStore", "kubechat-backups"), "spec", "retentionPolicy", default="none"))),
        ("Logical backups: target", "backup-settings.env / kustomization.yaml", per_env(lambda d: dig(find(d, "ConfigMap", "kubechat-backup-settings-"), "data", "BACKUP_TARGET"))),
        ("Logical backups: retention (days, keep newest)", "backup-settings.env / kustomization.yaml", per_env(lambda d: "{}, {}".format(
            dig(find(d, "ConfigMap", "kubechat-backup-settings-"), "data", "RETENTION_DAYS"),
            dig(find(d, "ConfigMap", "kubechat-backup-settings-"), "data", "RETENTION_KEEP_NEWEST")))),
        ("Public host", "tls.yaml", per_env(lambda d: dig(find(d, "Ingress", "kubechat"), "spec", "rules", 0, "host", default="none (NodePorts)"))),
        ("Certificate issuer", "tls.yaml", per_env(lambda d: dig(find(d, "Certificate", "kubechat-tls"), "spec", "issuerRef", "name", default="none"))),
        ("Secrets from", "secrets.yaml / dev *.env", per_env(lambda d: "External Secrets" if find(d, "ExternalSecret", "kubechat-api-secrets") else "generated (dev-only values)")),
        ("ResourceQuota requests (CPU/memory)", "quota.yaml", per_env(lambda d: "{} / {}".format(
            dig(find(d, "ResourceQuota", "kubechat-quota"), "spec", "hard", "requests.cpu"),
            dig(find(d, "ResourceQuota", "kubechat-quota"), "spec", "hard", "requests.memory")))),
    ]
    return rows


def environments_section() -> str:
    envs = {env: load_dir(DIST / "rendered" / env) for env in ENVIRONMENTS}
    out = ["## Per-environment values\n",
           "Read from `dist/rendered/<env>/`; set in the file named, under `overlays/<env>/`.\n",
           "| setting | file | " + " | ".join(ENVIRONMENTS) + " |", "|---|---|" + "---|" * len(ENVIRONMENTS)]
    for setting, where, values in environment_rows(envs):
        out.append(f"| {setting} | `{where}` | " + " | ".join(cell(values[e]) for e in ENVIRONMENTS) + " |")
    return "\n".join(out) + "\n"


def render() -> str:
    return ("# Configuration reference\n\n"
            "Generated by `scripts/config_reference.py` (run by `make render`) from the constructs' settings and the "
            "rendered environments; do not edit by hand.\n\n" + environments_section() + "\n" + settings_section())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            print("config-reference: docs/configuration.md is stale; run `make render`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print("config-reference: wrote docs/configuration.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
