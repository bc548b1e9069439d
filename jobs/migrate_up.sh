#!/bin/sh
# The migration hook (Argo CD Sync hook, every sync): migrate the schema UP to the release's
# SCHEMA_VERSION, never down. A release whose SCHEMA_VERSION is below the database's (a git-revert
# rollback) leaves the schema as it is: migrations are expand/contract, so the previous release runs on
# the newer schema (docs/data-tier.md). Going down is an operator's procedure with a backup first and
# an explicit confirmation (docs/upgrade.md, "Migrating the schema down").
# Environment: DATABASE_URL, SCHEMA_VERSION; MIGRATIONS_PATH (default /migrations); MIGRATE (default migrate).
set -eu
path="${MIGRATIONS_PATH:-/migrations}"
migrate="${MIGRATE:-migrate}"
target="${SCHEMA_VERSION:?SCHEMA_VERSION is not set}"
case "$target" in
  ''|*[!0-9]*) echo "migrate-up: SCHEMA_VERSION=$target is not a schema version (a whole number)" >&2; exit 2 ;;
esac

status=0
out=$("$migrate" -path "$path" -database "$DATABASE_URL" version 2>&1) || status=$?
case "$out" in
  *"no migration"*) current=0 ;;
  *dirty*)
    echo "migrate-up: the schema is dirty ($out): a migration failed halfway." >&2
    echo "migrate-up: nothing was run; follow docs/data-tier.md 'A failed migration' before syncing again." >&2
    exit 1 ;;
  *)
    current=$(printf '%s\n' "$out" | tail -n 1 | tr -d '[:space:]')
    case "$current" in
      ''|*[!0-9]*) echo "migrate-up: cannot read the schema version (exit $status): $out" >&2; exit 1 ;;
    esac ;;
esac

if [ "$current" -lt "$target" ]; then
  echo "migrate-up: schema version $current -> $target"
  exec "$migrate" -path "$path" -database "$DATABASE_URL" -verbose goto "$target"
elif [ "$current" -eq "$target" ]; then
  echo "migrate-up: schema version $current is the release's; nothing to do"
else
  echo "migrate-up: schema version $current is newer than the release's $target: left as it is, never migrated down here"
  echo "migrate-up: (expand/contract keeps this release working on it; going down is docs/upgrade.md's procedure)"
fi
