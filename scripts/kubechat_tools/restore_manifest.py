"""Write the CloudNativePG Cluster that recovers an environment's database to a point in time, from
the physical backups and WAL in its object store, plus the steps to switch KubeChat over.

Usage:
  python scripts/restore_manifest.py --env production --target-time 2026-11-26T09:41:00Z [--output FILE]
  python scripts/restore_manifest.py --env production --target-lsn 0/3000060
  python scripts/restore_manifest.py --env production --target-name before-release-1.4
  python scripts/restore_manifest.py --env production --latest

By default the recovered cluster gets its own name (kubechat-db-r<timestamp>) next to the original,
to inspect the data. With --in-place it keeps the original name, to replace a lost or damaged
cluster (the original must be deleted first; docs/disaster-recovery.md). Either way it archives WAL
under a new server name, so the original's backups are never overwritten. Reads the environment's
committed render (dist/rendered/<env>): run `make render` first if you changed it.
"""
from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timezone
from pathlib import Path


from kubechat_tools.manifests import dump, load_dir  # noqa: E402
from kubechat_tools.paths import DIST, ENVIRONMENTS  # noqa: E402

PLUGIN = "barman-cloud.cloudnative-pg.io"
LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
RESTORE_POINT = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")


class TargetError(ValueError):
    pass


def parse_time(value: str) -> datetime:
    """RFC 3339 with an explicit zone (Z or +hh:mm): a recovery target must never be ambiguous."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", value):
        raise TargetError(f"--target-time {value!r}: allowed: RFC 3339 with a zone, e.g. 2026-11-26T09:41:00Z")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError as error:
        raise TargetError(f"--target-time {value!r}: {error}") from error


def recovery_target(args) -> tuple[dict, str]:
    if args.target_time:
        at = parse_time(args.target_time).astimezone(timezone.utc)
        return {"targetTime": at.strftime("%Y-%m-%dT%H:%M:%SZ")}, at.strftime("%Y%m%d%H%M%S")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    if args.target_lsn:
        if not LSN.match(args.target_lsn):
            raise TargetError(f"--target-lsn {args.target_lsn!r}: allowed: an LSN like 0/3000060")
        return {"targetLSN": args.target_lsn}, stamp
    if args.target_name:
        if not RESTORE_POINT.match(args.target_name):
            raise TargetError(f"--target-name {args.target_name!r}: allowed: a restore point name "
                              "(letters, digits, . _ -; at most 63)")
        return {"targetName": args.target_name}, stamp
    return {}, stamp  # --latest: replay all archived WAL


def build(env: str, target: dict, stamp: str, rendered: list[dict], in_place: bool = False) -> dict:
    clusters = [d for d in rendered if d["kind"] == "Cluster" and d["apiVersion"].startswith("postgresql.cnpg.io/")]
    stores = [d for d in rendered if d["kind"] == "ObjectStore"]
    if len(clusters) != 1 or not stores:
        raise TargetError(f"environment {env!r} renders {len(clusters)} CloudNativePG Cluster(s) and "
                          f"{len(stores)} ObjectStore(s); point-in-time recovery needs the physical-backups component")
    origin = clusters[0]
    spec = origin["spec"]
    archiver = next(p for p in spec.get("plugins", []) if p["name"] == PLUGIN)
    server_name = f"{origin['metadata']['name']}-r{stamp}"
    name = origin["metadata"]["name"] if in_place else server_name
    # database and owner: the operator re-creates <name>-app for the recovered owner.
    initdb = (spec.get("bootstrap") or {}).get("initdb") or {}
    recovery = {"source": "origin", "database": initdb.get("database", "kubechat"),
                "owner": initdb.get("owner", "kubechat"), **({"recoveryTarget": target} if target else {})}
    # managed: the database roles (the API's and the backups', passwords from their Secrets); certificates: the
    # pooler's name in the server certificate (the API verifies it). Side by side, one instance: it is there to be
    # inspected, beside the environment's own, under the same quota (#27: three more instances did not fit).
    new_spec = {key: spec[key] for key in ("instances", "imageName", "storage", "resources", "affinity",
                                           "postgresql", "enableSuperuserAccess", "primaryUpdateStrategy",
                                           "managed", "certificates") if key in spec}
    if not in_place:
        new_spec["instances"] = 1
        check_quota(env, rendered, new_spec)
    new_spec.update({
        "bootstrap": {"recovery": recovery},
        "externalClusters": [{"name": "origin", "plugin": {"name": PLUGIN, "parameters": {
            "barmanObjectName": archiver["parameters"]["barmanObjectName"],
            "serverName": archiver["parameters"]["serverName"]}}}],
        # Archive under the new name: the origin's backups and WAL are never overwritten.
        "plugins": [{"name": PLUGIN, "isWALArchiver": True, "parameters": {
            "barmanObjectName": archiver["parameters"]["barmanObjectName"], "serverName": server_name}}],
    })
    return {"apiVersion": origin["apiVersion"], "kind": "Cluster",
            "metadata": {"name": name, "namespace": origin["metadata"]["namespace"],
                         "labels": origin["metadata"].get("labels", {}),
                         "annotations": {"argocd.argoproj.io/sync-options": "Prune=false,Delete=false"}},
            "spec": new_spec}


def check_quota(env: str, rendered: list[dict], recovery_spec: dict) -> None:
    """The side-by-side cluster must fit the namespace's ResourceQuota beside everything the environment runs:
    its bootstrap (full-recovery) Job's pod, then its instance, each request the Cluster's resources
    (CloudNativePG v1.30.0 pkg/specs/jobs.go: the Job pods take spec.resources), and a data volume."""
    from kubechat_tools.footprint import footprint, quantity

    quota = next((d for d in rendered if d["kind"] == "ResourceQuota"), None)
    if quota is None:
        return
    hard = quota["spec"]["hard"]
    used = footprint(rendered)
    memory = quantity(((recovery_spec.get("resources") or {}).get("requests") or {}).get("memory", 0))
    needed = used.memory_bytes + memory
    if "requests.memory" in hard and needed > quantity(hard["requests.memory"]):
        raise TargetError(f"environment {env!r}: the side-by-side recovery cluster needs {memory / 2**30:.1f}Gi of memory "
                          f"requests beside the environment's {used.memory_bytes / 2**30:.1f}Gi, more than the "
                          f"ResourceQuota's requests.memory {hard['requests.memory']}: raise it in "
                          f"overlays/{env}/quota.yaml first (or scale the environment down), then generate again")


def api_workload(rendered: list[dict]) -> str:
    """What owns the API's pods: the Rollout where progressive delivery renders one (its Deployment is only the
    template, at 0 replicas: scaling that changes nothing and Argo Rollouts undoes it), else the Deployment."""
    kinds = {d["kind"] for d in rendered if d["metadata"]["name"] == "kubechat-api"}
    return "rollout/kubechat-api" if "Rollout" in kinds else "deployment/kubechat-api"


def steps(cluster: dict, in_place: bool, api: str = "deployment/kubechat-api") -> str:
    ns, name = cluster["metadata"]["namespace"], cluster["metadata"]["name"]
    env = ns.removeprefix("kubechat-")
    if not in_place:
        return f"""# Side-by-side recovery as {name} in {ns}, to inspect the data (docs/disaster-recovery.md):
# 1. kubectl apply --server-side -f <this file>
# 2. kubectl -n {ns} get cluster {name} -w        # until "Cluster in healthy state"
# 3. kubectl -n {ns} exec -it {name}-1 -c postgres -- psql -d kubechat \\
#      -c "SELECT max(occurred_at) FROM audit_log" -c "SELECT * FROM audit_verify_chain()"
# 4. Copy what you need, or replace the damaged cluster: generate again with --in-place.
# 5. Remove it afterwards: kubectl -n {ns} delete cluster {name}
"""
    return f"""# In-place recovery of {name} in {ns} (docs/disaster-recovery.md, "Replace the cluster"):
# 1. Stop Argo CD from re-creating an empty cluster (its Application for this cluster, kubechat-{env}-<cluster>):
#      APP=$(argocd app list -l kubechat.io/environment={env} -o name)
#      argocd app set "$APP" --sync-policy none
# 2. Stop writes (the API's pods: {api}), and wait until none runs:
#      kubectl -n {ns} scale {api} --replicas=0
#      kubectl -n {ns} wait --for=delete pod -l app.kubernetes.io/component=api --timeout=5m
# 3. Delete the damaged cluster (its backups and WAL stay in the object store):
#      kubectl -n {ns} delete cluster {name}
# 4. kubectl apply --server-side -f <this file>; kubectl -n {ns} get cluster {name} -w
# 5. Check: kubectl -n {ns} exec -it {name}-1 -c postgres -- psql -d kubechat -c "SELECT * FROM audit_verify_chain()"
# 6. Commit this file's spec as overlays/{env}/recovery.yaml (added to `patches:`), so git matches the
#    cluster (its bootstrap and its new WAL server name), run `make render`, push, then
#      argocd app set "$APP" --sync-policy automated --self-heal --auto-prune
# 7. Bring the API back (the HPA does not scale up from zero); it logs in as before: its role kubechat_api
#    and password come from the Secret kubechat-db-api, which the recovered cluster applies to the role:
#      kubectl -n {ns} scale {api} --replicas=<HPA minReplicas>
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a CloudNativePG recovery Cluster manifest.")
    parser.add_argument("--env", required=True, choices=ENVIRONMENTS)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-time", help="RFC 3339 time with zone, e.g. 2026-11-26T09:41:00Z")
    target.add_argument("--target-lsn", help="a WAL location, e.g. 0/3000060")
    target.add_argument("--target-name", help="a restore point created with pg_create_restore_point()")
    target.add_argument("--latest", action="store_true", help="replay every archived WAL")
    parser.add_argument("--in-place", action="store_true", help="keep the original name (replace the cluster)")
    parser.add_argument("--output", type=Path, help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    try:
        goal, stamp = recovery_target(args)
        cluster = build(args.env, goal, stamp, load_dir(DIST / "rendered" / args.env), in_place=args.in_place)
    except TargetError as error:
        print(f"restore-manifest: {error}", file=sys.stderr)
        return 2
    text = steps(cluster, args.in_place, api_workload(load_dir(DIST / "rendered" / args.env))) + dump(cluster)
    if args.output:
        tmp = args.output.with_suffix(args.output.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.output)
        print(f"restore-manifest: wrote {args.output} (Cluster {cluster['metadata']['name']})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
