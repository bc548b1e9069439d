"""Checks on a rendered environment that Kustomize cannot make: the values overlays patch in
(scaling bounds, instance counts, storage sizes, the release's schema version) make sense.
`make render` runs them on every environment and writes nothing when one fails."""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .footprint import quantity
from kubechat_deploy.data.migration_files import API_ROLE, API_ROLE_SCHEMA, MigrationError, check_target
from .paths import ROOT

class ReleaseError(RuntimeError):
    pass


def set_release(text: str, env: str, version: str, digests: dict[str, str | None], schema: int | None) -> str:
    """The kustomization with the release's images, version label and schema version."""
    text, n = re.subn(r"\bVERSION=[^,\]\s]+", f"VERSION={version}", text)
    if n != 1:
        raise ReleaseError(f"overlays/{env}/kustomization.yaml: expected one VERSION= in the kubechat-release "
                           f"ConfigMap, found {n}")
    for image, digest in digests.items():
        pattern = rf'(  - name: ghcr\.io/kubechat/{image}\n    newTag: )"[^"]*"(\n    digest: \S+)?'
        replacement = rf'\g<1>"{version}"' + (f"\n    digest: {digest}" if digest else "")
        text, n = re.subn(pattern, replacement, text)
        if n != 1:
            raise ReleaseError(f"overlays/{env}/kustomization.yaml: image ghcr.io/kubechat/{image} not found")
    if schema is not None:
        text, n = re.subn(r"SCHEMA_VERSION=\d+", f"SCHEMA_VERSION={schema}", text)
        if n != 1:
            raise ReleaseError(f"overlays/{env}/kustomization.yaml: SCHEMA_VERSION not found")
    return text


def stand_in_digests(label: str = "test release") -> dict[str, str]:
    """Digests for the test tiers' releases of production: sha256 of a name, held by no registry, computed
    at test time and never committed (the repository itself holds no digest, docs/upgrade.md)."""
    return {image: "sha256:" + hashlib.sha256(f"{image} {label}".encode()).hexdigest()
            for image in ("kubechat-api", "kubechat-web")}


def release_tree(tree: Path, env: str, version: str, digests: dict[str, str | None], schema: int | None = None) -> None:
    """What `scripts/release.py upgrade` edits, done on a copy of the repository (`tree` holds overlays/)."""
    path = tree / "overlays" / env / "kustomization.yaml"
    path.write_text(set_release(path.read_text(), env, version, digests, schema))


def previous_release_commit(env: str) -> str:
    """The newest earlier commit whose dist/rendered/<env> differs from the working tree's (the release
    before this one), from the git history (a shallow clone is deepened first)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    if git("rev-parse", "--is-shallow-repository").strip() == "true":
        git("fetch", "--quiet", "--unshallow")
    folder = f"dist/rendered/{env}"
    for commit in git("log", "--format=%H", "--", folder).split():
        if subprocess.run(["git", "diff", "--quiet", commit, "--", folder], cwd=ROOT).returncode != 0:
            return commit
    raise ReleaseError(f"no earlier commit renders {folder} differently: the upgrade tests need the git history")


def overlay_version(env: str, tree: Path = ROOT) -> str:
    """The release version overlays/<env> deploys (VERSION of its kubechat-release ConfigMap, which sets
    every resource's app.kubernetes.io/version label)."""
    text = (tree / "overlays" / env / "kustomization.yaml").read_text()
    return re.search(r"\bVERSION=([^,\]\s]+)", text).group(1)


def released_render(env: str, version: str | None, digests: dict[str, str | None], schema: int | None = None) -> list[dict]:
    """dist/rendered/<env> as it is after a release: the overlay (with the release's images, version and
    schema version set as scripts/release.py sets them) built with the project's kustomize. version None
    keeps the overlay's."""
    from .manifests import load_all_text
    from .paths import BIN

    with tempfile.TemporaryDirectory(prefix="kubechat-release-") as tmp:
        tree = Path(tmp)
        for name in ("overlays", "dist"):
            shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns(".render-*"))
        release_tree(tree, env, version or overlay_version(env), digests, schema)
        result = subprocess.run([str(BIN / "kustomize"), "build", str(tree / "overlays" / env)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise ReleaseError(f"kustomize build overlays/{env} after the release failed:\n{result.stderr}")
        return load_all_text(result.stdout)


RELEASE_CONFIG_MAP = re.compile(r"^kubechat-release(-[a-z0-9]{10})?$")


OFFSITE_BACKUPS = ("staging", "production")
"""Environments whose backups must leave the cluster (object store), physical and logical."""


def seconds(duration: str) -> int:
    """Argo Rollouts' durations as the overlays write them: 90s, 2m, 1h (or a bare number of seconds)."""
    match = re.fullmatch(r"(\d+)([smh]?)", str(duration))
    if not match:
        raise ValueError(duration)
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def check_canary_measured(docs: list[dict], env: str) -> list[str]:
    """Every pause of a canary with background analysis must outlast the analysis' initial delay, or the
    next step promotes a canary that was never measured."""
    errors = []
    templates = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "AnalysisTemplate"}
    for doc in docs:
        if doc["kind"] != "Rollout":
            continue
        canary = doc["spec"].get("strategy", {}).get("canary", {})
        analysis = canary.get("analysis")
        if not analysis:
            continue
        delay = max(seconds(m.get("initialDelay", "0s")) for t in analysis.get("templates", [])
                    for m in templates.get(t["templateName"], {}).get("metrics", [])) if analysis.get("templates") else 0
        for index, step in enumerate(canary.get("steps", [])):
            if index < analysis.get("startingStep", 0) or "pause" not in step:
                continue
            duration = step["pause"].get("duration")
            if duration is not None and seconds(duration) <= delay:
                errors.append(f"environment {env!r}: Rollout/{doc['metadata']['name']} spec.strategy.canary.steps[{index}]"
                              f".pause.duration={duration!r}; allowed: longer than the analysis' initialDelay "
                              f"({delay} s), so the canary is measured before the next step")
    return errors


def valkey_bytes(size: str) -> int:
    """Valkey's memory units as maxmemory takes them: 128mb, 2gb (1024-based, like Redis)."""
    match = re.fullmatch(r"(\d+)(kb|mb|gb)", size.strip().lower())
    if not match:
        raise ValueError(size)
    return int(match.group(1)) * {"kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}[match.group(2)]


def check_cache_memory(docs: list[dict], env: str) -> list[str]:
    """Valkey's maxmemory leaves the other half of the container's memory limit to the append-only file
    rewrite (a fork whose copy-on-write pages can double the memory under writes): more is an OOM kill
    waiting for the first rewrite under load."""
    errors = []
    for doc in (d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "kubechat-redis"):
        container = next(c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "valkey")
        env_vars = {e["name"]: e.get("value") for e in container.get("env", [])}
        maxmemory, limit = env_vars.get("REDIS_MAXMEMORY"), (container.get("resources") or {}).get("limits", {}).get("memory")
        try:
            ok = valkey_bytes(maxmemory) * 2 <= quantity(limit)
        except (ValueError, TypeError, AttributeError):
            ok = False
        if not ok:
            errors.append(f"environment {env!r}: StatefulSet/kubechat-redis: REDIS_MAXMEMORY={maxmemory!r} with a memory "
                          f"limit of {limit!r}; allowed: at most half the limit (room for the append-only file "
                          f"rewrite's fork), set in overlays/{env}/redis.yaml")
    return errors


def check_environment(docs: list[dict], env: str) -> list[str]:
    errors = (check_release(docs, env) + check_backups(docs, env) + check_canary_measured(docs, env)
              + check_cache_memory(docs, env))
    for doc in docs:
        kind, name, spec = doc["kind"], doc["metadata"]["name"], doc.get("spec") or {}
        where = f"environment {env!r}: {kind}/{name}"
        if kind == "HorizontalPodAutoscaler":
            low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
            if not isinstance(low, int) or low < 1:
                errors.append(f"{where}: spec.minReplicas={low!r}; allowed: an integer >= 1")
            elif not isinstance(high, int) or high < low:
                errors.append(f"{where}: spec.maxReplicas={high!r}; allowed: an integer >= spec.minReplicas ({low})")
        elif kind in ("Cluster", "Pooler") and doc["apiVersion"].startswith("postgresql.cnpg.io/"):
            field = "instances"
            value = spec.get(field, 1)
            if not isinstance(value, int) or value < 1:
                errors.append(f"{where}: spec.{field}={value!r}; allowed: an integer >= 1")
            if kind == "Cluster":
                size = (spec.get("storage") or {}).get("size", "")
                try:
                    ok = quantity(size) > 0
                except ValueError:
                    ok = False
                if not ok:
                    errors.append(f"{where}: spec.storage.size={size!r}; allowed: a positive quantity such as 20Gi")
    return errors


VERSION_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
"""A label value: what the release VERSION becomes on every resource."""
KUBECHAT_IMAGE_PREFIX = "ghcr.io/kubechat/"


def check_release(docs: list[dict], env: str) -> list[str]:
    """The release's VERSION is a label value and the KubeChat images' tag; the schema version it
    targets has a migration."""
    errors = []
    releases = [d for d in docs if d["kind"] == "ConfigMap" and RELEASE_CONFIG_MAP.match(d["metadata"]["name"])]
    if len(releases) != 1:
        return [f"environment {env!r}: expected one kubechat-release ConfigMap (SCHEMA_VERSION), found {len(releases)}"]
    version = (releases[0].get("data") or {}).get("VERSION", "")
    if not VERSION_VALUE.fullmatch(version):
        errors.append(f"environment {env!r}: VERSION={version!r} in overlays/{env}/kustomization.yaml (kubechat-release); "
                      "allowed: the release version, a label value such as 1.4.0 (letters, digits, '.', '-', '_', "
                      "at most 63 characters)")
    tags = {image.split("@")[0].rpartition(":")[2] for d in docs if d["kind"] in ("Deployment", "Rollout")
            for c in (((d.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers", [])
            for image in [c.get("image", "")] if image.startswith(KUBECHAT_IMAGE_PREFIX)}
    if version and tags and tags != {version}:
        errors.append(f"environment {env!r}: VERSION={version!r} in overlays/{env}/kustomization.yaml, but the "
                      f"KubeChat images are tagged {sorted(tags)}; allowed: the images' release tag (scripts/release.py "
                      "sets both)")
    value = (releases[0].get("data") or {}).get("SCHEMA_VERSION", "")
    if not value.isdigit():
        return [f"environment {env!r}: SCHEMA_VERSION={value!r} in overlays/{env}/kustomization.yaml; "
                "allowed: the number of an existing migration"]
    try:
        check_target(ROOT / "migrations", int(value), f"environment {env!r}: SCHEMA_VERSION")
    except MigrationError as error:
        errors.append(str(error))
    else:
        api = next((d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "kubechat-api"), None)
        logins = [e.get("valueFrom", {}).get("secretKeyRef", {}).get("name", "") for c in
                  ((api or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [])
                  for e in c.get("env", []) if e["name"] == "PGUSER"]
        if int(value) < API_ROLE_SCHEMA and any(name.startswith("kubechat-db-api") for name in logins):
            errors.append(f"environment {env!r}: SCHEMA_VERSION={value} in overlays/{env}/kustomization.yaml, but the API "
                          f"connects as {API_ROLE}, whose privileges schema version {API_ROLE_SCHEMA} grants; allowed: "
                          f"{API_ROLE_SCHEMA} or newer")
    return errors


def check_backups(docs: list[dict], env: str) -> list[str]:
    """Schedules, retention and object-store settings of the backups an environment renders."""
    from kubechat_deploy.validation import SettingsError, cron

    errors = []
    kinds = {d["kind"] for d in docs}
    if env in OFFSITE_BACKUPS:
        for kind in ("ObjectStore", "ScheduledBackup"):
            if kind not in kinds:
                errors.append(f"environment {env!r}: no {kind}: staging and production need physical backups "
                              "(components: ../../dist/components/physical-backups)")
    for doc in docs:
        kind, name, spec = doc["kind"], doc["metadata"]["name"], doc.get("spec") or {}
        where = f"environment {env!r}: {kind}/{name}"
        try:
            if kind == "ScheduledBackup":
                cron(f"{where}: spec.schedule", spec.get("schedule"), seconds=True)
            elif kind == "CronJob":
                cron(f"{where}: spec.schedule", spec.get("schedule"))
        except SettingsError as error:
            errors.append(str(error))
        if kind == "ObjectStore":
            config = spec.get("configuration") or {}
            path, endpoint = config.get("destinationPath", ""), config.get("endpointURL", "")
            if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?", path) or "SET-IN-OVERLAY" in path.upper():
                errors.append(f"{where}: spec.configuration.destinationPath={path!r}; allowed: s3://<bucket>/<path> "
                              f"set in overlays/{env}/backups.yaml")
            if not endpoint.startswith(("https://", "http://")):
                errors.append(f"{where}: spec.configuration.endpointURL={endpoint!r}; allowed: an http(s):// URL")
            retention = spec.get("retentionPolicy", "")
            if not re.fullmatch(r"[1-9]\d*[dwm]", retention):
                errors.append(f"{where}: spec.retentionPolicy={retention!r}; allowed: a positive number of days, "
                              "weeks or months, e.g. 30d")
        if kind == "ConfigMap" and name.startswith("kubechat-backup-settings"):
            data = doc.get("data") or {}
            for key in ("RETENTION_DAYS", "RETENTION_KEEP_NEWEST"):
                if not data.get(key, "").isdigit() or int(data[key]) < 1:
                    errors.append(f"environment {env!r}: {key}={data.get(key)!r} in kubechat-backup-settings; "
                                  "allowed: an integer >= 1")
            target = data.get("BACKUP_TARGET", "")
            if env in OFFSITE_BACKUPS and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]+[a-z0-9](/\S*)?", target):
                errors.append(f"environment {env!r}: BACKUP_TARGET={target!r} in kubechat-backup-settings; "
                              "allowed: s3://<bucket>/<path> (staging and production back up off the cluster)")
    return errors + check_scratch(docs, env) + check_storage_budget(docs, env)


def scratch_size(cronjob: dict) -> str | None:
    for volume in cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"].get("volumes", []):
        if volume["name"] == "tmp":
            template = (volume.get("ephemeral") or {}).get("volumeClaimTemplate") or {}
            return ((template.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
    return None


def check_scratch(docs: list[dict], env: str) -> list[str]:
    """Each backup job fits the database it works on, in space and in time, as sized from the Cluster's storage
    size (kubechat_deploy.data.backups): the logical backup writes the whole dump to its scratch volume (at least
    the database's size), the restore drill holds the dump and the restored database at once (twice); each
    Job's activeDeadlineSeconds grows with the database (a fixed one failed every drill past some size)."""
    from kubechat_deploy.data.sizing import (DRILL_SCRATCH_FACTOR, backup_deadline_seconds,
                                             drill_deadline_seconds, scaled)

    cluster = next((d for d in docs if d["kind"] == "Cluster" and d["apiVersion"].startswith("postgresql.cnpg.io/")), None)
    if cluster is None:
        return []
    size = (cluster["spec"].get("storage") or {}).get("size", "0")
    where = f"(Cluster/{cluster['metadata']['name']} spec.storage.size = {size!r})"
    jobs = {"kubechat-logical-backup": (1, backup_deadline_seconds), "kubechat-restore-drill":
            (DRILL_SCRATCH_FACTOR, drill_deadline_seconds)}
    errors = []
    for job in (d for d in docs if d["kind"] == "CronJob" and d["metadata"]["name"] in jobs):
        name = job["metadata"]["name"]
        factor, deadline_of = jobs[name]
        scratch = scratch_size(job)
        try:
            needed = scaled(size, factor)
            small = scratch is None or quantity(scratch) < quantity(needed)
            minimum = deadline_of(size)
        except ValueError:  # an unreadable size: the Cluster's own check names it
            continue
        if small:
            errors.append(f"environment {env!r}: CronJob/{name}: scratch volume tmp = {scratch!r} is smaller than "
                          f"{'the database' if factor == 1 else f'{factor} x the database'} {where}; allowed: at least "
                          f"{needed}, set in overlays/{env}/backups.yaml (the volume's "
                          "ephemeral.volumeClaimTemplate.spec.resources.requests.storage)")
        deadline = job["spec"]["jobTemplate"]["spec"].get("activeDeadlineSeconds")
        if minimum is not None and (not isinstance(deadline, int) or deadline < minimum):
            errors.append(f"environment {env!r}: CronJob/{name}: activeDeadlineSeconds = {deadline!r} is too short "
                          f"for the database {where}; allowed: at least {minimum}, set in overlays/{env}/backups.yaml "
                          "(spec.jobTemplate.spec.activeDeadlineSeconds)")
    return errors


def check_storage_budget(docs: list[dict], env: str) -> list[str]:
    """The namespace's ResourceQuota requests.storage holds every claim the environment makes at once: the
    database's instances, the StatefulSets' and standalone claims, plus one scratch volume per backup
    CronJob (a finished Job's pod keeps its generic ephemeral volume until the Job's TTL removes it, and
    the nightly backup and the weekly drill can overlap). Short of it, a backup pod stays Pending."""
    quota = next((d for d in docs if d["kind"] == "ResourceQuota"), None)
    limit = ((quota or {}).get("spec", {}).get("hard") or {}).get("requests.storage")
    if not limit:
        return []
    try:
        return _storage_budget(docs, env, quantity(limit))
    except (ValueError, KeyError, TypeError):
        return []  # an unreadable size: the checks above name it


def _storage_budget(docs: list[dict], env: str, limit_bytes: float) -> list[str]:
    quota = next(d for d in docs if d["kind"] == "ResourceQuota")
    limit = quota["spec"]["hard"]["requests.storage"]
    parts: list[tuple[str, float]] = []
    for doc in docs:
        kind, spec = doc["kind"], doc.get("spec") or {}
        if kind == "Cluster" and doc["apiVersion"].startswith("postgresql.cnpg.io/"):
            for key in ("storage", "walStorage"):
                if (spec.get(key) or {}).get("size"):
                    parts.append((f"Cluster/{doc['metadata']['name']} {key} x {spec.get('instances', 1)}",
                                  quantity(spec[key]["size"]) * spec.get("instances", 1)))
        elif kind == "StatefulSet":
            for claim in spec.get("volumeClaimTemplates") or []:
                size = claim["spec"]["resources"]["requests"]["storage"]
                parts.append((f"StatefulSet/{doc['metadata']['name']} {claim['metadata']['name']} x {spec.get('replicas', 1)}",
                              quantity(size) * spec.get("replicas", 1)))
        elif kind == "PersistentVolumeClaim":
            parts.append((f"PersistentVolumeClaim/{doc['metadata']['name']}",
                          quantity(spec["resources"]["requests"]["storage"])))
        elif kind == "CronJob" and scratch_size(doc):
            parts.append((f"CronJob/{doc['metadata']['name']} scratch", quantity(scratch_size(doc))))
    total = sum(size for _, size in parts)
    if total > limit_bytes:
        gib = 1024 ** 3
        listed = ", ".join(f"{name} {size / gib:g}Gi" for name, size in parts)
        return [f"environment {env!r}: ResourceQuota requests.storage = {limit!r} is less than the claims the "
                f"environment makes at once ({total / gib:g}Gi: {listed}); allowed: at least {total / gib:g}Gi, "
                f"set in overlays/{env}/quota.yaml (or smaller volumes)"]
    return []

