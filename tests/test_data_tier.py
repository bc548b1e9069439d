"""The data tier as rendered: PostgreSQL cluster and pooler, the connection budget, the migration
hook's place in the sync, Valkey, and the external-database / external-redis modes."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse

import pytest
import yaml

from conftest import ROOT, find
from kubechat_deploy.data.migration_files import latest_version
from kubechat_tools.footprint import quantity
from kubechat_tools.gates import references_gate, schema_gate, workloads_gate
from kubechat_tools.manifests import load_all_text
from kubechat_tools.netpol import Endpoint, allowed, pods_of
from testbed.controlplane import free_port

from conftest import cloudnative_pg_operator_pod_labels

OPERATOR_POD_LABELS = cloudnative_pg_operator_pod_labels()

ENVS = ("dev", "staging", "production")
WAVE = "argocd.argoproj.io/sync-wave"


def api_container(docs):
    return find(docs, "Deployment", "kubechat-api")["spec"]["template"]["spec"]["containers"][0]


def env_of(container) -> dict:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.mark.parametrize("env, instances, anti_affinity", [("dev", 1, "preferred"), ("staging", 2, "preferred"),
                                                           ("production", 3, "required")])
def test_postgres_cluster_per_environment(rendered, env, instances, anti_affinity):
    cluster = find(rendered[env], "Cluster", "kubechat-db")
    spec = cluster["spec"]
    assert spec["instances"] == instances
    assert spec["affinity"]["enablePodAntiAffinity"] is True
    assert spec["affinity"]["podAntiAffinityType"] == anti_affinity
    assert int(re.search(r":(\d+)", spec["imageName"]).group(1)) >= 16
    assert spec["bootstrap"]["initdb"] == {**spec["bootstrap"]["initdb"], "database": "kubechat", "owner": "kubechat"}
    assert "secret" not in spec["bootstrap"]["initdb"], "the operator manages the app credentials"
    assert spec["enableSuperuserAccess"] is False
    assert quantity(spec["storage"]["size"]) >= quantity("1Gi")
    assert spec["resources"]["requests"]["memory"] == spec["resources"]["limits"]["memory"]
    assert "Prune=false" in cluster["metadata"]["annotations"]["argocd.argoproj.io/sync-options"]
    if env != "dev":
        assert spec["storage"]["storageClass"]


@pytest.mark.parametrize("env", ENVS)
def test_connection_budget_fits_at_maximum_scale(rendered, env):
    docs = rendered[env]
    hpa = find(docs, "HorizontalPodAutoscaler", "kubechat-api")["spec"]
    pool_per_pod = int(env_of(api_container(docs))["DATABASE_MAX_CONNECTIONS"]["value"])
    pooler = find(docs, "Pooler", "kubechat-db-pooler-rw")["spec"]
    bouncer = pooler["pgbouncer"]["parameters"]
    params = find(docs, "Cluster", "kubechat-db")["spec"]["postgresql"]["parameters"]
    # Clients: every API pod at the HPA's maximum opens its full pool, spread over the pooler pods
    # (a pooler pod must take them all when the other one restarts).
    clients = hpa["maxReplicas"] * pool_per_pod
    assert clients <= int(bouncer["max_client_conn"]), f"{env}: {clients} clients > max_client_conn"
    # Servers: each pooler pod opens up to default + reserve pool to PostgreSQL; the migration Job,
    # backups and the restore drill connect directly (budget 10), the operator keeps its reserve.
    servers = pooler.get("instances", 1) * (int(bouncer["default_pool_size"]) + int(bouncer["reserve_pool_size"]))
    available = int(params["max_connections"]) - int(params["superuser_reserved_connections"]) - 10
    assert servers <= available, f"{env}: pooler may open {servers} server connections, PostgreSQL allows {available}"
    assert pooler["pgbouncer"]["poolMode"] == "transaction" and pooler["type"] == "rw"


@pytest.mark.parametrize("env", ENVS)
def test_api_connects_through_the_pooler_and_migrations_go_to_the_primary(rendered, env):
    docs = rendered[env]
    api = env_of(api_container(docs))
    assert api["DATABASE_URL"]["value"].startswith("postgres://kubechat-db-pooler-rw:5432/kubechat?")
    # The API's own role (#31.2), never the owner's operator-managed Secret, which only the migration reads.
    for variable, key in (("PGUSER", "username"), ("PGPASSWORD", "password")):
        reference = api[variable]["valueFrom"]["secretKeyRef"]
        assert reference["key"] == key and re.fullmatch(r"kubechat-db-api(-[a-z0-9]{10})?", reference["name"])
    assert "kubechat-db-app" not in str(find(docs, "Deployment", "kubechat-api"))
    assert api["REDIS_URL"]["value"] == "redis://kubechat-redis:6379/0"  # its password apart: REDIS_PASSWORD
    assert "$(" not in api["DATABASE_URL"]["value"], "no credentials inside the URL (#31: any character)"
    job = find(docs, "Job", "kubechat-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert "@kubechat-db-rw:5432/kubechat" in env_of(job)["DATABASE_URL"]["value"]
    assert job["command"] == ["/bin/sh", "/migrations/migrate_up.sh"] and "args" not in job
    files = find(docs, "ConfigMap", "kubechat-migrations")["data"]
    assert files["migrate_up.sh"] == (ROOT / "jobs" / "migrate_up.sh").read_text()


@pytest.mark.parametrize("env", ENVS)
def test_exactly_one_job_migrates_between_database_and_api(rendered, env):
    docs = rendered[env]
    migrators = [d for d in docs if d["kind"] in ("Job", "CronJob", "Deployment")
                 and "migrate" in str(d["spec"]).split("image")[1][:60]]
    assert [d["metadata"]["name"] for d in migrators] == ["kubechat-migrate"]
    job = migrators[0]["metadata"]["annotations"]
    assert job["argocd.argoproj.io/hook"] == "Sync"
    assert job["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    wave = lambda kind, name: int(find(docs, kind, name)["metadata"]["annotations"][WAVE])  # noqa: E731
    assert wave("Cluster", "kubechat-db") < wave("Job", "kubechat-migrate") < wave("Deployment", "kubechat-api")
    assert wave("Pooler", "kubechat-db-pooler-rw") < wave("Job", "kubechat-migrate")
    assert wave("StatefulSet", "kubechat-redis") < wave("Deployment", "kubechat-api")
    assert "migrate" not in " ".join(api_container(docs).get("args", []) + api_container(docs).get("command", []))


@pytest.mark.parametrize("env", ENVS)
def test_migrations_ship_as_a_config_map_and_the_release_targets_an_existing_version(rendered, env):
    from kubechat_deploy.data.migration_files import load_migrations

    docs = rendered[env]
    files = find(docs, "ConfigMap", "kubechat-migrations")["data"]
    expected = {p.name: p.read_text() for m in load_migrations(ROOT / "migrations") for p in (m.up, m.down)}
    expected["migrate_up.sh"] = (ROOT / "jobs" / "migrate_up.sh").read_text()
    assert files == expected
    release = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("kubechat-release-"))
    assert int(release["data"]["SCHEMA_VERSION"]) in {m.version for m in load_migrations(ROOT / "migrations")}


@pytest.mark.parametrize("env", ENVS)
def test_valkey_persists_with_auth_and_exports_metrics(rendered, env):
    sts = find(rendered[env], "StatefulSet", "kubechat-redis")["spec"]
    server, exporter = sts["template"]["spec"]["containers"]
    assert server["args"][server["args"].index("--appendonly") + 1] == "yes"
    assert "--requirepass" in server["args"] and env_of(server)["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"
    assert re.fullmatch(r"docker.io/valkey/valkey:\d+\.\d+\.\d+.*", server["image"])
    assert {p["name"]: p["containerPort"] for p in exporter["ports"]} == {"metrics": 9121}
    assert sts["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert {"readinessProbe", "livenessProbe"} <= server.keys() and "livenessProbe" in exporter


@pytest.mark.parametrize("env", ENVS)
def test_only_the_api_reaches_the_pooler_and_cache_and_only_the_pooler_and_migration_reach_postgres(rendered, env):
    docs = rendered[env]
    pods = pods_of(docs)
    api, web, db, pooler, redis, migrate = (pods[n] for n in ("kubechat-api", "kubechat-web", "kubechat-db",
                                                              "kubechat-db-pooler-rw", "kubechat-redis", "kubechat-migrate"))
    assert allowed(docs, api, pooler, 5432) and allowed(docs, api, redis, 6379)
    assert allowed(docs, pooler, db, 5432) and allowed(docs, migrate, db, 5432) and allowed(docs, db, db, 5432)
    assert not allowed(docs, api, db, 5432), "the API goes through the pooler"
    for pod in (web,):
        assert not allowed(docs, pod, db, 5432) and not allowed(docs, pod, pooler, 5432)
        assert not allowed(docs, pod, redis, 6379)
    assert not allowed(docs, migrate, redis, 6379) and not allowed(docs, migrate, pooler, 5432)
    operator = Endpoint(name="cnpg", namespace="cnpg-system", labels=OPERATOR_POD_LABELS)
    assert allowed(docs, operator, db, 8000) and not allowed(docs, operator, redis, 6379)
    # #26.7: only the operator's pods of its namespace, not every pod there (the barman-cloud plugin's, any other).
    neighbour = Endpoint(name="plugin-barman-cloud", namespace="cnpg-system", labels={"app.kubernetes.io/name": "plugin-barman-cloud"})
    assert not allowed(docs, neighbour, db, 8000) and not allowed(docs, neighbour, db, 5432)
    prometheus = Endpoint(name="prometheus", namespace="monitoring")
    assert allowed(docs, prometheus, db, "metrics") and allowed(docs, prometheus, pooler, "metrics")
    assert allowed(docs, prometheus, redis, 9121) and not allowed(docs, prometheus, redis, 6379)


def build_with_components(tmp_path, env: str, *components: str) -> list[dict]:
    shutil.copytree(ROOT / "overlays", tmp_path / "overlays")
    (tmp_path / "dist").symlink_to(ROOT / "dist")
    kustomization = tmp_path / "overlays" / env / "kustomization.yaml"
    data = yaml.safe_load(kustomization.read_text())
    data["components"] = data.get("components", []) + [f"../components/{c}" for c in components]
    # What the component's instructions say: the overlay no longer patches what the component removes.
    removed = {"external-database": ("database.yaml",), "external-redis": ("redis.yaml", "redis-storage.yaml")}
    drop = {f for c in components for f in removed.get(c, ())}
    data["patches"] = [p for p in data["patches"] if p.get("path") not in drop]
    kustomization.write_text(yaml.safe_dump(data))
    out = subprocess.run([str(ROOT / "bin" / "kustomize"), "build", str(kustomization.parent)],
                         capture_output=True, text=True, check=True).stdout
    folder = tmp_path / "rendered"
    folder.mkdir()
    docs = load_all_text(out)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))
    return docs


def test_external_database_and_redis_mode(tmp_path):
    docs = build_with_components(tmp_path, "staging", "external-database", "external-redis")
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert not {k for k in kinds if k[0] in ("Cluster", "Pooler", "StatefulSet", "PodMonitor")}
    assert ("ExternalSecret", "kubechat-external-database") in kinds and ("ExternalSecret", "kubechat-external-redis") in kinds
    backup = env_of(find(docs, "CronJob", "kubechat-logical-backup")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0])
    assert backup["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "kubechat-external-database" and "PGPASSWORD" not in backup
    api = env_of(api_container(docs))
    assert api["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "kubechat-external-database", "key": "API_DATABASE_URL"}
    assert ("ExternalSecret", "kubechat-db-api") not in kinds  # the DBA's role: no in-cluster credentials
    assert "value" not in api["DATABASE_URL"] and "PGPASSWORD" not in api and "REDIS_PASSWORD" not in api
    assert api["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "kubechat-external-redis", "key": "REDIS_URL"}
    job = env_of(find(docs, "Job", "kubechat-migrate")["spec"]["template"]["spec"]["containers"][0])
    assert job["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "kubechat-external-database"
    pods = pods_of(docs)
    managed = Endpoint(name="managed postgres", ip="10.20.30.40")
    assert allowed(docs, pods["kubechat-api"], managed, 5432) and allowed(docs, pods["kubechat-migrate"], managed, 5432)
    assert not allowed(docs, pods["kubechat-web"], managed, 5432)
    rendered = [tmp_path / "rendered"]
    assert references_gate(rendered) == [] and workloads_gate(rendered) == [] and schema_gate(rendered) == []


def granted_roles(sql: str) -> set[str]:
    return set(re.findall(r"\bGRANT\b[^;]*?\bTO\s+(\w+)", sql, re.S))


@pytest.mark.parametrize("env", ENVS)
def test_each_database_role_is_one_name_from_the_cluster_to_its_secret_to_its_user(rendered, env):
    """CloudNativePG creates a managed role and takes its password from the Secret only when the Secret's
    username equals the role's name (v1.30.0 internal/management/controller/roles/runnable.go getPassword:
    'the username in secret ... does not match role'), and applies a changed password only for a Secret
    labelled cnpg.io/reload (internal/controller/cluster_predicates.go isUsefulClusterSecret). The API connects
    as the role migration 0006 grants, the logical backup as the read-only one."""
    docs = rendered[env]
    roles = {r["name"]: r for r in find(docs, "Cluster", "kubechat-db")["spec"]["managed"]["roles"]}
    assert set(roles) == {"kubechat_api", "kubechat_backup"}
    for role in roles.values():
        assert role["login"] is True and role["ensure"] == "present"
        assert not {"superuser", "createdb", "createrole", "replication", "bypassrls"} & set(role)
        secret_name = role["passwordSecret"]["name"]
        if env == "dev":
            import base64

            secret = find(docs, "Secret", secret_name)
            assert base64.b64decode(secret["data"]["username"]).decode() == role["name"]
            assert secret["metadata"]["labels"]["cnpg.io/reload"] == "true"
        else:
            # External Secrets v2.9.0 ApplyTemplate (pkg/controllers/externalsecret/externalsecret_controller_template.go):
            # with mergePolicy Merge the store's `password` is kept and template.data's `username` wins; the
            # template's labels go on the Secret.
            template = find(docs, "ExternalSecret", secret_name)["spec"]["target"]["template"]
            assert template["data"] == {"username": role["name"]} and template["mergePolicy"] == "Merge"
            assert template["metadata"]["labels"]["cnpg.io/reload"] == "true"
    api, backup = roles["kubechat_api"], roles["kubechat_backup"]
    assert "inRoles" not in api and backup["inRoles"] == ["pg_read_all_data"]
    assert env_of(api_container(docs))["PGUSER"]["valueFrom"]["secretKeyRef"]["name"] == api["passwordSecret"]["name"]
    job = find(docs, "CronJob", "kubechat-logical-backup")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert env_of(job["containers"][0])["PGUSER"]["valueFrom"]["secretKeyRef"]["name"] == backup["passwordSecret"]["name"]
    grants = granted_roles((ROOT / "migrations" / "0006_least_privilege.up.sql").read_text())
    assert grants == {api["name"]}, grants
    migration = find(docs, "Job", "kubechat-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(migration)["DB_USER"]["valueFrom"]["secretKeyRef"]["name"] == "kubechat-db-app"  # the owner's only user


def render_with_schema(tmp_path, env: str, version: int) -> subprocess.CompletedProcess:
    """`make render`'s render of a copy of the overlays whose `env` deploys SCHEMA_VERSION=`version`."""
    shutil.copytree(ROOT / "overlays", tmp_path / "overlays")
    kustomization = tmp_path / "overlays" / env / "kustomization.yaml"
    kustomization.write_text(re.sub(r"SCHEMA_VERSION=\d+", f"SCHEMA_VERSION={version}", kustomization.read_text()))
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "render.py"), "--dist", str(tmp_path / "dist"),
                           "--overlays", str(tmp_path / "overlays")], capture_output=True, text=True)


def test_render_rejects_a_schema_version_below_the_one_the_api_role_needs(tmp_path):
    """The API connects as kubechat_api, whose privileges migration 6 grants: a release of this render with an
    older SCHEMA_VERSION would leave every request without access."""
    result = render_with_schema(tmp_path, "staging", 5)
    assert result.returncode == 1
    assert ("environment 'staging': SCHEMA_VERSION=5 in overlays/staging/kustomization.yaml, but the API connects as "
            "kubechat_api, whose privileges schema version 6 grants; allowed: 6 or newer") in result.stderr, result.stderr


def test_render_rejects_a_schema_version_without_migration(tmp_path):
    result = render_with_schema(tmp_path, "production", 42)
    assert result.returncode == 1
    assert f"environment 'production': SCHEMA_VERSION: schema version 42 has no migration; allowed: 0 or 1..{latest_version(ROOT / 'migrations')}" in result.stderr
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize("env, file, old, new, message", [
    ("staging", "scaling.yaml", "minReplicas: 2\n  maxReplicas: 4", "minReplicas: 5\n  maxReplicas: 4",
     "environment 'staging': HorizontalPodAutoscaler/kubechat-api: spec.maxReplicas=4; allowed: an integer >= spec.minReplicas (5)"),
    ("production", "database.yaml", "instances: 3", "instances: 0",
     "environment 'production': Cluster/kubechat-db: spec.instances=0; allowed: an integer >= 1"),
    ("dev", "database.yaml", "size: 2Gi", "size: lots",
     "environment 'dev': Cluster/kubechat-db: spec.storage.size='lots'; allowed: a positive quantity"),
    # 18.7: the release VERSION (the version label of every resource) is a label value and the images' tag
    ("staging", "kustomization.yaml", "VERSION=1.0.0,", "VERSION=1.0.0 beta,",
     "environment 'staging': VERSION='1.0.0 beta' in overlays/staging/kustomization.yaml (kubechat-release); "
     "allowed: the release version, a label value"),
    ("production", "kustomization.yaml", "VERSION=1.0.0,", "VERSION=1.0.1,",
     "environment 'production': VERSION='1.0.1' in overlays/production/kustomization.yaml, but the KubeChat "
     "images are tagged ['1.0.0']; allowed: the images' release tag"),
])
def test_render_rejects_overlay_values_that_make_no_sense(tmp_path, env, file, old, new, message):
    shutil.copytree(ROOT / "overlays", tmp_path / "overlays")
    patch = tmp_path / "overlays" / env / file
    assert old in patch.read_text()
    patch.write_text(patch.read_text().replace(old, new))
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "render.py"), "--dist", str(tmp_path / "dist"),
                             "--overlays", str(tmp_path / "overlays")], capture_output=True, text=True)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "dist").exists()


def test_dev_tools_reach_only_their_own_backend(rendered):
    docs = rendered["dev"]
    pods = pods_of(docs)
    laptop = Endpoint(name="another machine on the laptop's network", ip="192.168.5.1")
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for name, port in (("kubechat-pgadmin", "30050"), ("kubechat-redis-commander", "30081")):
        assert services[name]["spec"].get("type", "ClusterIP") == "ClusterIP"  # reached by make dev-open only
        assert services[name]["metadata"]["annotations"]["kubechat.io/local-port"] == port
    pgadmin, commander = pods["kubechat-pgadmin"], pods["kubechat-redis-commander"]
    assert not allowed(docs, laptop, pgadmin, "http") and not allowed(docs, laptop, commander, "http")
    assert allowed(docs, pgadmin, pods["kubechat-db"], 5432) and not allowed(docs, pgadmin, pods["kubechat-redis"], 6379)
    assert allowed(docs, commander, pods["kubechat-redis"], 6379) and not allowed(docs, commander, pods["kubechat-db"], 5432)
    assert not allowed(docs, pods["kubechat-web"], pods["kubechat-db"], 5432)
    servers = find(docs, "ConfigMap", "kubechat-pgadmin")["data"]["servers.json"]
    assert '"Host": "kubechat-db-rw"' in servers
    for env in ("staging", "production"):
        assert not [d for d in rendered[env] if d["metadata"]["name"] in ("kubechat-pgadmin", "kubechat-redis-commander")]


# --- 14.5: shared dependencies survive a node drain; readiness needs only what a pod cannot serve without


@pytest.mark.parametrize("env", ("staging", "production"))
def test_pgbouncer_pods_spread_and_are_evicted_one_at_a_time(rendered, env):
    """CloudNativePG copies the Pooler's template into its Deployment (pkg/specs/pgbouncer/deployments.go,
    podspec.NewFrom(pooler.Spec.Template)) and labels the pods cnpg.io/poolerName=<pooler>; it creates no
    PodDisruptionBudget for a Pooler (none under pkg/specs/pgbouncer/ at v1.30.0), so the render does."""
    pooler = find(rendered[env], "Pooler", "kubechat-db-pooler-rw")
    assert pooler["spec"]["instances"] >= 2, f"{env}: one PgBouncer pod is a single point of failure"
    pod_labels = {"cnpg.io/poolerName": pooler["metadata"]["name"]}
    terms = pooler["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert any(t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
               and t["podAffinityTerm"]["labelSelector"]["matchLabels"] == pod_labels for t in terms), terms
    pdbs = [d for d in rendered[env] if d["kind"] == "PodDisruptionBudget"
            and d["spec"]["selector"].get("matchLabels") == pod_labels]
    assert len(pdbs) == 1 and pdbs[0]["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": pod_labels},
                                                  "unhealthyPodEvictionPolicy": "AlwaysAllow"}, pdbs


def test_a_single_pooler_still_drains(rendered):
    """maxUnavailable, not minAvailable: with one PgBouncer pod (dev) a drain is not blocked forever."""
    pdb = find(rendered["dev"], "PodDisruptionBudget", "kubechat-db-pooler-rw")
    assert "minAvailable" not in pdb["spec"] and pdb["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("env", ENVS)
def test_the_cache_pod_is_ready_when_the_cache_is(rendered, env):
    """The exporter sidecar is restarted when it fails (liveness) but never decides the cache pod's
    readiness; the API's readiness does not need the cache (docs/app-contract.md)."""
    sts = find(rendered[env], "StatefulSet", "kubechat-redis")
    containers = {c["name"]: c for c in sts["spec"]["template"]["spec"]["containers"]}
    assert "readinessProbe" in containers["valkey"]
    assert "readinessProbe" not in containers["exporter"] and "livenessProbe" in containers["exporter"]
    contract = (ROOT / "docs" / "app-contract.md").read_text()
    assert "`GET /health/ready` 200 only while PostgreSQL is reachable (not Redis" in contract
    row = next(line for line in contract.splitlines() if line.startswith("| Valkey cache"))
    assert row.split("|")[2].strip() == "no"


def test_kyverno_admission_survives_a_drain():
    """KubeChat's Kyverno policies fail closed: the admission controller runs three replicas behind a
    PodDisruptionBudget (kyverno/kyverno charts/kyverno/values.yaml at tag v1.19.0 (ee97ce09):
    admissionController.replicas, admissionController.podDisruptionBudget.{enabled,minAvailable}; its
    default podAntiAffinity spreads them by hostname)."""
    app = yaml.safe_load((ROOT / "dist" / "platform" / "prerequisites" / "application-platform-kyverno.yaml").read_text())
    values = app["spec"]["source"]["helm"]["valuesObject"]["admissionController"]
    assert values["replicas"] >= 3
    assert values["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}
    policies = [yaml.safe_load(path.read_text()) for path in (ROOT / "dist" / "rendered" / "production").glob("clusterpolicy-*.yaml")]
    assert policies and all(p["spec"].get("failurePolicy", "Fail") == "Fail" for p in policies), \
        "the policies no longer fail closed: revisit the replica count"


@pytest.mark.parametrize("env", ENVS)
def test_postgresql_images_are_pinned_never_a_deprecated_rolling_tag(rendered, env):
    """14.8: `MM.mm` and `MM` are deprecated rolling tags of the `system` flavour (cloudnative-pg/
    postgres-containers README, "Deprecated Rolling Tags"); images are pinned as CloudNativePG's own
    catalogs list them (MM.mm-TIMESTAMP-TYPE-OS@sha256:...)."""
    full = r"ghcr\.io/cloudnative-pg/postgresql:\d+\.\d+-\d{12}-(minimal|standard|system)-[a-z]+@sha256:[0-9a-f]{64}"
    cluster = find(rendered[env], "Cluster", "kubechat-db")
    assert re.fullmatch(full, cluster["spec"]["imageName"]) and "-system-" not in cluster["spec"]["imageName"]
    for name in ("kubechat-logical-backup", "kubechat-restore-drill"):
        job = find(rendered[env], "CronJob", name)
        image = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"]
        assert re.fullmatch(full, image), image


def test_a_rolling_postgresql_tag_is_refused_by_name():
    from kubechat_deploy.data.database import DatabaseProps
    from kubechat_deploy.validation import SettingsError

    with pytest.raises(SettingsError, match=r"database\.image.*17\.6.*not a deprecated rolling tag"):
        DatabaseProps(image="ghcr.io/cloudnative-pg/postgresql:17.6")


@pytest.mark.parametrize("env", ENVS)
def test_valkey_leaves_half_its_memory_to_the_rewrite_fork(rendered, env):
    """14.8: maxmemory at most half the memory limit (the AOF rewrite forks; copy-on-write under writes can
    need the dataset's memory again). The render refuses the previous production setting (768mb of 1Gi)."""
    from kubechat_tools.release import check_cache_memory

    docs = rendered[env]
    assert check_cache_memory(docs, env) == []
    sts = yaml.safe_load(yaml.safe_dump(find(docs, "StatefulSet", "kubechat-redis")))
    valkey = next(c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "valkey")
    next(e for e in valkey["env"] if e["name"] == "REDIS_MAXMEMORY")["value"] = "768mb"
    valkey["resources"]["limits"]["memory"] = "1Gi"
    assert check_cache_memory([sts], env) == [
        f"environment {env!r}: StatefulSet/kubechat-redis: REDIS_MAXMEMORY='768mb' with a memory limit of '1Gi'; "
        f"allowed: at most half the limit (room for the append-only file rewrite's fork), set in overlays/{env}/redis.yaml"]


@pytest.mark.parametrize("env", ENVS)
def test_the_storage_quota_holds_every_claim_the_environment_makes_at_once(rendered, env):
    """Review finding: the backup jobs' scratch volumes count against requests.storage while their pods
    exist; with production's previous 500Gi the second nightly backup would stay Pending for good."""
    from kubechat_tools.release import check_storage_budget

    docs = rendered[env]
    assert check_storage_budget(docs, env) == []
    quota = yaml.safe_load(yaml.safe_dump(next(d for d in docs if d["kind"] == "ResourceQuota")))
    if env == "production":
        quota["spec"]["hard"]["requests.storage"] = "600Gi"  # the drill's scratch is twice the database's (#26.7)
        errors = check_storage_budget([d for d in docs if d["kind"] != "ResourceQuota"] + [quota], env)
        assert len(errors) == 1 and "is less than the claims the environment makes at once (610Gi" in errors[0], errors
    for name in ("kubechat-logical-backup", "kubechat-restore-drill"):
        job = find(docs, "CronJob", name)["spec"]
        assert job["jobTemplate"]["spec"]["ttlSecondsAfterFinished"] == 3600
        assert job["successfulJobsHistoryLimit"] == 1 and job["failedJobsHistoryLimit"] == 1


PASSWORD_WITH_URL_CHARACTERS = "p@ss/w:rd%40?#&$x"
"""A password a secret store may hold: every character that means something inside a URL."""


def kubelet_env(container: dict, secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: a secretKeyRef's value from `secrets` (any other
    secret or ConfigMap key: "x"), and $(NAME) replaced by a variable defined before it, $$ by $, an unknown reference kept
    (k8s.io/kubernetes third_party/forked/golang/expansion/expand.go)."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(item["value"], env)
        else:
            ref = item["valueFrom"].get("secretKeyRef") or item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = secrets.get((ref["name"], ref["key"]), "x")
    return env


def expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def redis_command(client: socket.socket, *words: str) -> bytes:
    client.sendall(f"*{len(words)}\r\n".encode() + b"".join(
        f"${len(w.encode())}\r\n".encode() + w.encode() + b"\r\n" for w in words))
    return client.recv(4096)


@pytest.mark.servers
@pytest.mark.parametrize("env", ENVS)
def test_the_api_reaches_the_cache_whatever_characters_its_password_holds(rendered, env, tmp_path):
    """The cache started with its rendered arguments (a real redis-server; the kubelet's expansion of the
    password) and a password full of URL characters; the API's rendered REDIS_URL and REDIS_PASSWORD, read as
    docs/app-contract.md says, reach it: the URL names the cache's Service, port and database and carries no
    credentials, and the password authenticates. redis-commander (dev) gets host, port and password apart."""
    docs = rendered[env]
    secret = find(docs, "StatefulSet", "kubechat-redis")["spec"]["template"]["spec"]["containers"][0]
    password_ref = next(e["valueFrom"]["secretKeyRef"] for e in secret["env"] if e["name"] == "REDIS_PASSWORD")
    secrets = {(password_ref["name"], password_ref["key"]): PASSWORD_WITH_URL_CHARACTERS}
    api = kubelet_env(api_container(docs), secrets)
    url = urllib.parse.urlsplit(api["REDIS_URL"])
    assert (url.scheme, url.username, url.password) == ("redis", None, None), api["REDIS_URL"]
    assert url.hostname == find(docs, "Service", "kubechat-redis")["metadata"]["name"]
    assert url.port == find(docs, "Service", "kubechat-redis")["spec"]["ports"][0]["port"] and url.path == "/0"
    assert api["REDIS_PASSWORD"] == PASSWORD_WITH_URL_CHARACTERS

    server_env = kubelet_env(secret, secrets)
    args = [expand(a, server_env) for a in secret["args"]]
    port = free_port()
    for flag, value in (("--port", str(port)), ("--dir", str(tmp_path))):
        args[args.index(flag) + 1] = value
    server = subprocess.Popen(["redis-server", *args, "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:  # the Service's name resolves, in a cluster, to the cache; here it is on loopback
            try:
                client = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "redis-server did not start"
                time.sleep(0.1)
        with client:
            assert redis_command(client, "PING").startswith(b"-NOAUTH"), "the cache must require its password"
            assert redis_command(client, "AUTH", api["REDIS_PASSWORD"]) == b"+OK\r\n"
            assert redis_command(client, "SELECT", url.path.lstrip("/")) == b"+OK\r\n"
            assert redis_command(client, "PING") == b"+PONG\r\n"
    finally:
        server.terminate()
        server.wait(timeout=10)
    if env == "dev":
        tool = find(docs, "Deployment", "kubechat-redis-commander")["spec"]["template"]["spec"]["containers"][0]
        commander = kubelet_env(tool, secrets)
        assert "REDIS_HOSTS" not in commander
        assert (commander["REDIS_HOST"], commander["REDIS_PORT"], commander["REDIS_PASSWORD"]) == \
            (url.hostname, str(url.port), PASSWORD_WITH_URL_CHARACTERS)


def cloudnative_pg_server_names(cluster: dict, cluster_domain: str = "cluster.local") -> list[str]:
    """The DNS names CloudNativePG v1.30.0 puts in the instances' certificate (api/v1/cluster_funcs.go
    GetClusterAltDNSNames): each default Service (-rw, -r, -ro) as name, name.ns, name.ns.svc and
    name.ns.svc.<domain>, then spec.certificates.serverAltDNSNames."""
    name, namespace = cluster["metadata"]["name"], cluster["metadata"]["namespace"]
    names = [form for service in (f"{name}-rw", f"{name}-r", f"{name}-ro")
             for form in (service, f"{service}.{namespace}", f"{service}.{namespace}.svc",
                          f"{service}.{namespace}.svc.{cluster_domain}")]
    return names + (cluster["spec"].get("certificates") or {}).get("serverAltDNSNames", [])


def issue_certificates(folder, names: list[str]) -> None:
    """A CA and a server certificate for `names`, as the operator makes them (openssl here)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=kubechat-db CA")
    openssl("req", *curve, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={names[0]}")
    (folder / "san.ext").write_text("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "1", "-extfile", "san.ext")
    (folder / "server.key").chmod(0o600)


def psql_as(server, conninfo: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(server.bin / "psql"), "-X", "-At", "-c",
                           "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", conninfo],
                          env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True)


def dialled_here(url: str, server, ca_file) -> str:
    """The rendered URL, dialled at the test's server: the host name stays (verify-full checks it), the
    address and port are the test's, the CA file is where the test keeps it."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(sslrootcert=str(ca_file), hostaddr="127.0.0.1")
    userinfo = parts.netloc.rpartition("@")[0]
    return urllib.parse.urlunsplit((parts.scheme, f"{userinfo}@" * bool(userinfo) + f"{parts.hostname}:{server.port}", parts.path,
                                    urllib.parse.urlencode(query), ""))


@pytest.mark.servers
@pytest.mark.parametrize("env", ENVS)
def test_the_database_clients_verify_the_server_and_log_in_whatever_characters_the_password_holds(rendered, env):
    """#31.5 sslmode=verify-full: a real PostgreSQL with TLS from a certificate for the names CloudNativePG gives
    the rendered Cluster's; PgBouncer presents that same certificate to the API (CloudNativePG v1.30.0
    api/v1/pooler_funcs.go GetClientTLSSecretNameOrDefault: the Cluster's server TLS Secret), so the API's
    rendered DATABASE_URL, which dials the pooler's Service, must be one of its names. The API logs in with
    PGUSER and PGPASSWORD beside the URL (the app contract; psql reads them as libpq does), here a password full of URL characters, checked
    by scram-sha-256. The migration (its URL, to the primary's Service) and the logical backup (libpq's PG*
    variables) verify the same way. Before, the certificate did not name the pooler: refused."""
    from postgres import PostgresServer

    docs = rendered[env]
    cluster = find(docs, "Cluster", "kubechat-db")
    container = api_container(docs)
    secret = next(e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if e["name"] == "PGPASSWORD")
    api = kubelet_env(container, {(secret, "username"): "kubechat_api", (secret, "password"): PASSWORD_WITH_URL_CHARACTERS})
    mount = next(m for m in container["volumeMounts"] if m["name"] == "database-ca")
    volume = next(v for v in find(docs, "Deployment", "kubechat-api")["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == "database-ca")
    assert volume["secret"] == {"secretName": "kubechat-db-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(api["DATABASE_URL"]).query))
    assert query == {"sslmode": "verify-full", "sslrootcert": f"{mount['mountPath']}/ca.crt"}, api["DATABASE_URL"]

    server = PostgresServer()
    tls = server.root / "tls"
    tls.mkdir()
    issue_certificates(tls, cloudnative_pg_server_names(cluster))
    server.start(extra_conf=f"ssl = on\nssl_cert_file = '{tls}/server.crt'\nssl_key_file = '{tls}/server.key'",
                 hba_first="hostssl all kubechat_api 127.0.0.1/32 scram-sha-256\nhost all kubechat_api 127.0.0.1/32 reject")
    try:
        server.create_managed_roles(password=PASSWORD_WITH_URL_CHARACTERS)
        server.psql("CREATE DATABASE kubechat")
        login = {"PGUSER": api["PGUSER"], "PGPASSWORD": api["PGPASSWORD"]}
        result = psql_as(server, dialled_here(api["DATABASE_URL"], server, tls / "ca.crt"), login)
        assert result.stdout.strip() == "kubechat_api|t", result.stderr
        wrong = psql_as(server, dialled_here(api["DATABASE_URL"], server, tls / "ca.crt"), {**login, "PGPASSWORD": "x"})
        assert "password authentication failed" in wrong.stderr

        migration = kubelet_env(find(docs, "Job", "kubechat-migrate")["spec"]["template"]["spec"]["containers"][0],
                                {("kubechat-db-app", "username"): "postgres", ("kubechat-db-app", "password"): "x"})
        result = psql_as(server, dialled_here(migration["DATABASE_URL"], server, tls / "ca.crt"), {})
        assert result.stdout.strip() == "postgres|t", result.stderr
        backup = kubelet_env(find(docs, "CronJob", "kubechat-logical-backup")["spec"]["jobTemplate"]["spec"]["template"]
                             ["spec"]["containers"][0], {})
        assert (backup["PGSSLMODE"], backup["PGSSLROOTCERT"]) == ("verify-full", query["sslrootcert"])
        result = psql_as(server, "", {**{k: v for k, v in backup.items() if k.startswith("PG")},
                                      "PGUSER": "postgres", "PGPASSWORD": "x", "PGHOSTADDR": "127.0.0.1",
                                      "PGPORT": str(server.port), "PGSSLROOTCERT": str(tls / "ca.crt")})
        assert result.stdout.strip() == "postgres|t", result.stderr

        # The certificate as the operator issued it before (no serverAltDNSNames): the pooler's name is not in it.
        issue_certificates(tls, cloudnative_pg_server_names({**cluster, "spec": {}}))
        server.psql("SELECT pg_reload_conf()")
        time.sleep(1)
        result = psql_as(server, dialled_here(api["DATABASE_URL"], server, tls / "ca.crt"), login)
        assert result.returncode != 0 and "does not match host name" in result.stderr, result.stderr
    finally:
        server.stop()
