"""Release, upgrade and roll back KubeChat environments the GitOps way. Every subcommand prints each
command before running it; --dry-run prints them and changes nothing.

  release.py upgrade  --env ENV --version X.Y.Z [--api-digest sha256:...] [--web-digest sha256:...] [--schema N]
      Sets the images, the version label and SCHEMA_VERSION in overlays/ENV/kustomization.yaml,
      renders everything `make render` writes (dist/, docs/runbooks/, docs/configuration.md), and commits
      "release ENV X.Y.Z". Push it; Argo CD syncs it. Refused (a version, digest or schema version not
      allowed, a render that fails): the tree is left exactly as it was.
  release.py rollback-revert --release COMMIT
      The default rollback: `git revert` the release commit (images, version and schema version go back
      together; the schema stays: the migration hook only migrates up), re-render to prove dist/
      matches, commit.
      Works with auto-sync: push, and Argo CD syncs the previous release.
  release.py rollback-argocd --app APPLICATION --to HISTORY_ID
      Emergency rollback without git: Argo CD refuses `app rollback` while auto-sync is on, so this
      turns auto-sync off, rolls back, and reminds you to revert in git and turn auto-sync back on.
  release.py promote --env production [--revision REV] [--override REASON]
      Moves production's promotion branch (promoted/production, which its Applications follow) to REV,
      only if staging's Applications have synced exactly REV and are Healthy (read from Argo CD, with
      kubectl), or REV was promoted to production before (a rollback), or --override gives a reason (a
      hotfix that cannot wait for staging: logged in the promotion's tag). REV defaults to what staging
      has synced; it must be on origin/main. Shows the rendered change production gets, then pushes the
      branch and an annotated tag promotion/production/<time> (who, what, why) in one atomic push.
      Run it in your checkout; `--dry-run` reads git and Argo CD but tags and pushes nothing.
  release.py migrate-down --env ENV --to N [--output FILE]
      Writes the Job that migrates ENV's schema down to version N (docs/upgrade.md, "Migrating the schema
      down"): the rendered migration Job's pod (its labels, which the NetworkPolicies admit to the database;
      its credentials, expanded inside the pod; the migration files of the release) running
      `migrate goto N`. It runs nothing: you apply it after the backup, as the printed steps say.
"""
from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path


from kubechat_deploy.data.migration_files import (API_ROLE, API_ROLE_SCHEMA, MigrationError, check_target,
                                                  latest_version)
from kubechat_tools.release import ReleaseError, set_release

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "staging", "production")
VERSION = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
RENDER = [sys.executable, "scripts/render.py"]
"""The full render: dist/, then the pages generated from it (what `make render` writes)."""
WRITES = ("overlays", "dist", "docs")
"""What upgrade and rollback-revert change; they start only when these have no uncommitted change, so a
refusal can put them back exactly."""


def run(command: list[str], dry_run: bool, cwd: Path = ROOT) -> str:
    print("+ " + " ".join(shlex.quote(c) for c in command), flush=True)
    if dry_run:
        return ""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ReleaseError(f"{command[0]} failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def current_schema(text: str, env: str) -> int:
    match = re.search(r"SCHEMA_VERSION=(\d+)", text)
    if not match:
        raise ReleaseError(f"overlays/{env}/kustomization.yaml: SCHEMA_VERSION not found")
    return int(match.group(1))


def require_clean(dry_run: bool) -> None:
    """Refuse to start unless the commit will hold exactly the release: no staged file, no edited tracked file
    anywhere (an edited construct would be rendered into it) and no untracked file where it writes (a refusal
    could not tell it from its own). Checked in a dry run too."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    blocking = [line for line in status if not line.startswith("??") or line[3:].startswith(tuple(w + "/" for w in WRITES))]
    if blocking:
        raise ReleaseError("the working tree has changes the release commit would include; commit or stash them first "
                           "(a release commits exactly its own change, rendered from committed code):\n"
                           + "\n".join(blocking))


def restore(head: str) -> None:
    """Put the tree back as it was at `head` (it was clean when the command started): unstage, drop a commit
    made since, restore and remove what the command wrote."""
    subprocess.run(["git", "reset", "--quiet", head], cwd=ROOT, check=True)
    subprocess.run(["git", "checkout", "--quiet", head, "--", *WRITES], cwd=ROOT, check=True)
    subprocess.run(["git", "clean", "-fdq", "--", *WRITES], cwd=ROOT, check=True)
    print(f"release: the tree is as it was before ({head[:12]}; overlays/, dist/ and docs/ restored)", file=sys.stderr)


def head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def upgrade(args) -> None:
    if not VERSION.match(args.version):
        raise ReleaseError(f"--version {args.version!r}: allowed: a semantic version such as 1.4.2")
    for name in ("api_digest", "web_digest"):
        value = getattr(args, name)
        if value and not DIGEST.match(value):
            raise ReleaseError(f"--{name.replace('_', '-')} {value!r}: allowed: sha256:<64 hex digits>")
    if args.env == "production" and not (args.api_digest and args.web_digest):
        raise ReleaseError("production pins digests: pass --api-digest and --web-digest")
    path = ROOT / "overlays" / args.env / "kustomization.yaml"
    text = path.read_text()
    if args.schema is not None:
        latest, current = latest_version(ROOT / "migrations"), current_schema(text, args.env)
        if not current <= args.schema <= latest:
            try:
                check_target(ROOT / "migrations", args.schema, "--schema")
            except MigrationError:
                raise ReleaseError(f"--schema: schema version {args.schema} has no migration (migrations/ goes up to "
                                   f"{latest}); allowed for overlays/{args.env}: {current}..{latest}") from None
        if args.schema < current:
            raise ReleaseError(f"--schema {args.schema}: overlays/{args.env} is at schema version {current}, and the "
                               f"migration hook only migrates up; allowed: {current}..{latest}. To go back, use "
                               f"release.py rollback-revert (the schema stays) or docs/upgrade.md's migrate-down.")
    new = set_release(text, args.env, args.version,
                      {"kubechat-api": args.api_digest, "kubechat-web": args.web_digest}, args.schema)
    require_clean(args.dry_run)
    head = head_commit()
    print(f"+ edit {path.relative_to(ROOT)}: version {args.version}"
          + (f", SCHEMA_VERSION={args.schema}" if args.schema is not None else ""), flush=True)
    if args.dry_run:
        for command in (RENDER, ["git", "add", *WRITES], ["git", "commit", "-m", f"release {args.env} {args.version}"]):
            run(command, True)
        print(f"release: dry run: the checks above passed; nothing was edited, rendered or committed "
              f"(overlays/{args.env}/kustomization.yaml is unchanged).")
        return
    try:
        path.write_text(new)
        run(RENDER, False)
        run(["git", "add", *WRITES], False)
        run(["git", "commit", "-m", f"release {args.env} {args.version}"], False)
    except BaseException:
        restore(head)
        raise
    print(f"release: committed 'release {args.env} {args.version}'; push it (git push) and Argo CD syncs "
          f"kubechat-{args.env}-<cluster> (one Application per registered cluster).")


def rollback_revert(args) -> None:
    require_clean(args.dry_run)
    if args.dry_run:
        for command in (["git", "revert", "--no-edit", args.release], RENDER, ["git", "status", "--porcelain", "dist"]):
            run(command, True)
        print("release: dry run: nothing was reverted, rendered or verified.")
        return
    head = head_commit()
    try:
        try:
            run(["git", "revert", "--no-edit", args.release], False)
        except ReleaseError as error:
            subprocess.run(["git", "revert", "--abort"], cwd=ROOT, capture_output=True)
            raise ReleaseError(f"{error}\nThe revert did not apply cleanly (a later release changed the same lines?): "
                               f"revert the later releases first, newest first.") from None
        run(RENDER, False)
        changed = run(["git", "status", "--porcelain", *WRITES], False)
        if changed.strip():
            raise ReleaseError(f"the render of the reverted sources differs from the reverted dist/ (was the "
                               f"release's dist/ rendered from its sources?):\n{changed}")
    except BaseException:
        restore(head)
        raise
    print("release: reverted and verified; push it (git push): Argo CD syncs the previous release, and the "
          "schema stays at its newer version (the migration hook only migrates up; migrations are expand/contract).")


def rollback_argocd(args) -> None:
    app = args.app
    if not re.fullmatch(r"kubechat-[a-z0-9-]+", app):
        raise ReleaseError(f"--app {app!r}: allowed: an Application the ApplicationSet generated, "
                           "kubechat-<env>-<cluster> (see `argocd app list`)")
    run(["argocd", "app", "set", app, "--sync-policy", "none"], args.dry_run)
    run(["argocd", "app", "rollback", app, str(args.to)], args.dry_run)
    then = (f"revert the release in git (release.py rollback-revert), push, then turn auto-sync back on:\n"
            f"  argocd app set {app} --sync-policy automated --self-heal --auto-prune")
    if args.dry_run:
        print(f"release: dry run: auto-sync of {app} is unchanged and nothing was rolled back. After a real run: {then}")
        return
    print(f"release: rolled back {app} to history {args.to} with auto-sync OFF. Now {then}")


def migrate_down(args) -> None:
    """The Job manifest that migrates down: the migration hook's own pod spec, by hand."""
    import yaml

    from kubechat_tools.manifests import dump, load_dir

    rendered = load_dir(ROOT / "dist" / "rendered" / args.env)
    hook = next((d for d in rendered if d["kind"] == "Job" and d["metadata"]["name"] == "kubechat-migrate"), None)
    if hook is None:
        raise ReleaseError(f"--env {args.env!r}: dist/rendered/{args.env} has no Job kubechat-migrate: run `make render`")
    latest = latest_version(ROOT / "migrations")
    if not 1 <= args.to < latest:
        raise ReleaseError(f"--to {args.to}: allowed: a schema version from 1 to {latest - 1}, below the newest "
                           f"migration ({latest}) (golang-migrate has no version 0 to go to)")
    if args.to < API_ROLE_SCHEMA and not args.below_api_schema:
        raise ReleaseError(f"--to {args.to}: below schema version {API_ROLE_SCHEMA} the API's role "
                           f"{API_ROLE} has no privileges, and this commit's API connects as it: every "
                           f"request would fail. First release (and sync) a version whose API connects otherwise, "
                           f"with SCHEMA_VERSION={args.to}, or scale the API to 0; then run this again with "
                           f"--below-api-schema")
    ns = hook["metadata"]["namespace"]
    name = f"kubechat-migrate-down-to-{args.to}"
    job = yaml.safe_load(yaml.safe_dump(hook))
    job["metadata"] = {"name": name, "namespace": ns, "labels": hook["metadata"].get("labels", {})}
    spec = job["spec"]
    spec["backoffLimit"] = 0  # a failed step down is looked at, not retried
    container = spec["template"]["spec"]["containers"][0]
    container.pop("command", None)  # the image's entrypoint is `migrate` (golang-migrate's Dockerfile)
    # $(DATABASE_URL) is expanded by the kubelet inside the pod, from the pod's own variables: the owner's
    # credentials never pass through the operator's shell.
    container["args"] = ["-path", "/migrations", "-database", "$(DATABASE_URL)", "-verbose", "goto", str(args.to)]
    text = (f"# Migrate {ns}'s schema down to version {args.to} (docs/upgrade.md, \"Migrating the schema down\"):\n"
            f"# 1. Back up first: kubectl cnpg backup kubechat-db -n {ns} --method plugin "
            f"--plugin-name barman-cloud.cloudnative-pg.io\n"
            f"#    and wait until `kubectl -n {ns} get backup` shows it completed.\n"
            f"# 2. Read what it undoes: migrations/*.down.sql above version {args.to}.\n"
            f"# 3. kubectl apply -f <this file>; kubectl -n {ns} logs -f job/{name}\n"
            f"# 4. Check: the Job completed and schema_migrations holds {args.to}|f; set SCHEMA_VERSION={args.to}\n"
            f"#    in overlays/{args.env}/kustomization.yaml (a release), or the next sync migrates up again.\n"
            f"# 5. kubectl -n {ns} delete job {name}\n") + dump(job)
    if args.output:
        Path(args.output).write_text(text)
        print(f"release: wrote {args.output} (Job {name} in {ns}); nothing was applied", file=sys.stderr)
    else:
        sys.stdout.write(text)


def git(*args: str, check: bool = True) -> str:
    """A read-only git command in the checkout the command runs in; without `check` a failure reads as ""."""
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    if result.returncode != 0:
        if not check:
            return ""
        raise ReleaseError(f"git {' '.join(args)} failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout.strip()


def applications(namespace: str, label: str, env: str) -> list[dict]:
    """The Applications of `env`, as Argo CD's Application status says (the current kubectl context)."""
    import json

    command = ["kubectl", "get", "applications.argoproj.io", "-n", namespace, "-l", f"{label}={env}", "-o", "json"]
    print("+ " + " ".join(command), flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ReleaseError(f"reading {env}'s Applications failed (is the kubectl context Argo CD's cluster?): "
                           f"{result.stderr.strip()}")
    return json.loads(result.stdout)["items"]


def promote(args) -> None:
    from datetime import datetime, timezone

    from kubechat_deploy.platform.props import DeliveryProps

    props = DeliveryProps()
    env, source = args.env, props.first_environment
    promoted = [e for e in props.environments if e != source]
    if env not in promoted:
        raise ReleaseError(f"--env {env!r}: allowed: {', '.join(promoted)} ({source} follows "
                           f"{props.revision} and is never promoted)")
    branch = f"{props.promotion_branch_prefix}{env}"
    run(["git", "fetch", "--quiet", "--tags", "origin"], False, cwd=Path.cwd())  # a read: also in a dry run
    def merged(revision: str) -> str:
        on_main = subprocess.run(["git", "merge-base", "--is-ancestor", revision, f"origin/{props.revision}"],
                                 capture_output=True).returncode == 0
        if not on_main:
            raise ReleaseError(f"{revision[:12]} is not on origin/{props.revision}: only what was merged is "
                               "promoted (merge the hotfix first)")
        return revision

    if args.revision:  # checked before Argo CD is read
        revision = merged(git("rev-parse", "--verify", f"{args.revision}^{{commit}}"))
    apps = applications(props.argocd_namespace, props.environment_label, source)
    status = {a["metadata"]["name"]: a.get("status") or {} for a in apps}
    synced = {name: (s.get("sync") or {}).get("revision") for name, s in status.items()}
    if not args.revision:
        if len(set(synced.values())) != 1 or None in synced.values():
            raise ReleaseError(f"--revision not given and {source}'s Applications are not at one revision: {synced}")
        revision = merged(next(iter(synced.values())))
    healthy = [name for name, s in status.items() if synced[name] == revision
               and (s.get("sync") or {}).get("status") == "Synced" and (s.get("health") or {}).get("status") == "Healthy"]
    before = git("tag", "--points-at", revision, "-l", f"promotion/{env}/*", check=False).split()
    if apps and len(healthy) == len(apps):
        reason = f"{source} synced and Healthy at it ({', '.join(sorted(healthy))})"
    elif before:
        reason = f"promoted to {env} before ({before[0]}): a rollback"
    elif args.override:
        reason = f"OVERRIDE, {source} has not run it Healthy: {args.override}"
    else:
        states = {name: (synced[name], (s.get("sync") or {}).get("status"), (s.get("health") or {}).get("status"))
                  for name, s in status.items()}
        raise ReleaseError(f"{revision[:12]} has not run in {source}: its Applications must have synced exactly it and "
                           f"be Healthy, found (revision, sync, health): {states or 'no Application'}. Wait for "
                           f"{source}, fix it, or give --override REASON for a hotfix")
    current = git("rev-parse", "--verify", "--quiet", f"refs/remotes/origin/{branch}", check=False)
    if current == revision:
        print(f"release: {env} is already promoted to {revision[:12]}: nothing to do")
        return
    if current:
        print(f"release: {env} gets, from {current[:12]} to {revision[:12]} (committed render):", flush=True)
        print(git("log", "--oneline", f"{current}..{revision}") or "(an older revision: a rollback)")
        print(git("diff", "--stat", current, revision, "--", f"dist/rendered/{env}", f"overlays/{env}", "dist/base",
                  "dist/components", f"dist/environments/{env}") or "(no change to what it builds from)")
        print(git("diff", current, revision, "--", f"dist/rendered/{env}"), flush=True)
    user = git("config", "user.email", check=False) or "unknown"
    tag = f"promotion/{env}/{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    message = f"promote {env} to {revision}\nby: {user}\nbecause: {reason}\nprevious: {current or 'none'}"
    run(["git", "tag", "-a", tag, revision, "-m", message], args.dry_run, cwd=Path.cwd())
    run(["git", "push", "--atomic", f"--force-with-lease=refs/heads/{branch}:{current}", "origin",
         f"{revision}:refs/heads/{branch}", f"refs/tags/{tag}"], args.dry_run, cwd=Path.cwd())
    if args.dry_run:
        print(f"release: dry run: would promote {env} to {revision[:12]} ({reason}); read git and Argo CD, "
              "tagged nothing, pushed nothing")
        return
    print(f"release: promoted {env} to {revision[:12]} ({reason}); its Applications sync it in their sync "
          f"window (or `argocd app sync kubechat-{env}-<cluster>` by a {env} deployer)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade")
    up.add_argument("--env", required=True, choices=ENVIRONMENTS)
    up.add_argument("--version", required=True)
    up.add_argument("--api-digest")
    up.add_argument("--web-digest")
    up.add_argument("--schema", type=int)
    rv = sub.add_parser("rollback-revert")
    rv.add_argument("--release", required=True, help="the release commit to undo")
    ra = sub.add_parser("rollback-argocd")
    ra.add_argument("--app", required=True, help="the environment's Application, kubechat-<env>-<cluster>")
    ra.add_argument("--to", required=True, type=int, help="history ID from `argocd app history`")
    for p in (up, rv, ra):
        p.add_argument("--dry-run", action="store_true", help="print the commands, change nothing")
    pr = sub.add_parser("promote", help="move an environment's promotion branch to a revision staging has run")
    pr.add_argument("--env", required=True)
    pr.add_argument("--revision", help="commit, tag or branch (default: what staging's Applications have synced)")
    pr.add_argument("--override", metavar="REASON", help="promote although staging has not run it Healthy (logged)")
    pr.add_argument("--dry-run", action="store_true", help="read git and Argo CD, tag and push nothing")
    md = sub.add_parser("migrate-down", help="write the Job that migrates an environment's schema down")
    md.add_argument("--env", required=True, choices=ENVIRONMENTS)
    md.add_argument("--to", required=True, type=int, help="the schema version to go down to")
    md.add_argument("--output", help="file to write (default: standard output)")
    md.add_argument("--below-api-schema", action="store_true",
                    help="allow a version below the one this commit's API needs (after its API was changed or stopped)")
    args = parser.parse_args(argv)
    try:
        {"upgrade": upgrade, "rollback-revert": rollback_revert, "rollback-argocd": rollback_argocd,
         "migrate-down": migrate_down, "promote": promote}[args.command](args)
    except ReleaseError as error:
        print(f"release: FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
