"""Logical backup of the KubeChat database: pg_dump in custom format (compressed), checked with
pg_restore --list, uploaded with a manifest (checksum, schema version, row counts of the main
tables, and the audit trail's newest row: an anchor outside the database) under a timestamped name,
then retention by age and count. Any failed step exits non-zero with the step named; older backups are
deleted only after a new one was stored. Each run first checks the live audit trail against the anchors
of the backups kept: a row an earlier backup recorded that is now missing or rewritten (the newest rows
removed, which the chain alone cannot show) fails the run, after the new backup is stored and with every
older backup kept as evidence.

Environment: PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD (libpq), or DATABASE_URL (a managed
database's DSN; it wins when set), BACKUP_TARGET (s3://bucket/prefix
or file:///path), S3_ENDPOINT_URL and AWS_* for S3, RETENTION_DAYS, RETENTION_KEEP_NEWEST.
Usage: python3 logical_backup.py [--now 2026-01-31T03:00:00Z]   (--now only for tests)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backup_store import BackupError, Store, file_sha256, dump_name, expired  # noqa: E402

MAIN_TABLES = ("users", "sessions", "chat_sessions", "chat_messages", "kubernetes_operations", "audit_log")


def log(message: str) -> None:
    print(f"logical-backup: {message}", flush=True)


def run(step: str, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise BackupError(f"{step} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result


def connect():
    import psycopg2  # in the job image with the barman-cloud tools; libpq reads the PG* variables

    try:
        return psycopg2.connect(os.environ.get("DATABASE_URL", ""))
    except psycopg2.Error as error:
        where = ("DATABASE_URL" if os.environ.get("DATABASE_URL") else
                 f"{os.environ.get('PGHOST')}:{os.environ.get('PGPORT', '5432')}/{os.environ.get('PGDATABASE')}"
                 f" as {os.environ.get('PGUSER')}")
        raise BackupError(f"cannot connect to {where}: {str(error).strip()}") from error


def database_identity(cursor) -> dict:
    """Which database and history this is: PostgreSQL's system identifier (another for a database created anew,
    the same for a physical copy) and the current timeline (a point-in-time recovery, a lost cluster's recovery
    and a failover each start a new one)."""
    cursor.execute("SELECT (SELECT system_identifier FROM pg_control_system())::text, "
                   "(SELECT timeline_id FROM pg_control_checkpoint())")
    system, timeline = cursor.fetchone()
    return {"system_identifier": system, "timeline": timeline}


def audit_head(cursor) -> dict | None:
    """The audit trail's newest row (id, row_hash, occurred_at) and the database it is in: the anchor this backup
    records."""
    cursor.execute("SELECT id, encode(row_hash, 'hex'), occurred_at FROM audit_log ORDER BY id DESC LIMIT 1")
    row = cursor.fetchone()
    return None if row is None else {"id": row[0], "row_hash": row[1], "occurred_at": row[2].isoformat(),
                                     **database_identity(cursor)}


def broken_anchors(cursor, store: Store, names: list[str]) -> list[str]:
    """What the live audit trail contradicts of the anchors the kept backups' manifests recorded in this same
    database history. An anchor from another database, or from before a recovery to an earlier point (another
    timeline), may name rows this history never had: reported in the log, not as tampering."""
    cursor.execute("SELECT to_regprocedure('audit_verify_anchor(bigint, bytea, timestamptz)') IS NOT NULL")
    if not cursor.fetchone()[0]:
        log("audit anchors: the schema has no audit_verify_anchor() yet (before version 6): not checked")
        return []
    here = database_identity(cursor)
    problems = []
    with tempfile.TemporaryDirectory(prefix="kubechat-anchors-") as tmp:
        for manifest_name in sorted(n for n in names if n.endswith(".dump.json")):
            local = Path(tmp) / manifest_name
            store.get(manifest_name, local)
            head = json.loads(local.read_text()).get("audit_head")
            if not head:
                continue
            cursor.execute("SELECT broken_id, reason FROM audit_verify_anchor(%s, decode(%s, 'hex'), %s)",
                           (head["id"], head["row_hash"], head["occurred_at"]))
            found = [f"row {row[0]} recorded by {manifest_name}: {row[1]}" for row in cursor.fetchall()]
            same = {k: head.get(k) for k in here} == here
            if found and not same:
                log(f"audit anchors: {found[0]}, but {manifest_name} was taken of another database or timeline "
                    f"({head.get('system_identifier')}/{head.get('timeline')}, now {here['system_identifier']}/"
                    f"{here['timeline']}: a recovery to an earlier point, or a database created anew): not counted")
                continue
            problems += found
    return problems


def snapshot_facts(cursor) -> dict:
    """Schema version and row counts, read in the snapshot the dump is taken from."""
    cursor.execute("SELECT version, dirty FROM schema_migrations")
    number, dirty = cursor.fetchone()
    if dirty:
        raise BackupError(f"the schema is dirty at version {number}; fix it before backing up (docs/data-tier.md)")
    counts = {}
    for table in MAIN_TABLES:
        cursor.execute(f"SELECT count(*) FROM {table}")
        counts[table] = cursor.fetchone()[0]
    return {"schema_version": number, "row_counts": counts, "audit_head": audit_head(cursor)}


def positive(name: str) -> int:
    value = os.environ.get(name, "")
    if not value.isdigit() or int(value) < 1:
        raise BackupError(f"{name}={value!r}: allowed: an integer >= 1")
    return int(value)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--now", help="override the current time (tests)")
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now.replace("Z", "+00:00")) if args.now else datetime.now(timezone.utc)
    try:
        max_age, keep = positive("RETENTION_DAYS"), positive("RETENTION_KEEP_NEWEST")
        store = Store(os.environ.get("BACKUP_TARGET", ""))
        name = dump_name(now)
        with tempfile.TemporaryDirectory(prefix="kubechat-backup-") as tmp:
            dump = Path(tmp) / name
            # One snapshot for the counts and the dump, so the drill can demand exact equality.
            connection = connect()
            try:
                connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_export_snapshot()")
                    snapshot = cursor.fetchone()[0]
                    facts = snapshot_facts(cursor)
                    tampered = broken_anchors(cursor, store, store.list())
                    log(f"dumping the database at schema version {facts['schema_version']}")
                    dsn = [f"--dbname={os.environ['DATABASE_URL']}"] if os.environ.get("DATABASE_URL") else []
                    run("pg_dump", ["pg_dump", "--format=custom", "--compress=6", "--no-owner",
                                    f"--snapshot={snapshot}", "--file", str(dump), *dsn])
            finally:
                connection.close()
            listing = run("pg_restore --list", ["pg_restore", "--list", str(dump)]).stdout
            if "TABLE DATA" not in listing:
                raise BackupError("pg_restore --list shows no table data: the dump is empty or unreadable")
            digest = file_sha256(dump)
            manifest = Path(tmp) / f"{name}.json"
            manifest.write_text(json.dumps({**facts, "sha256": digest, "dump": name,
                                            "created_at": now.isoformat()}, indent=2, sort_keys=True))
            store.put(dump, name)
            store.put(manifest, f"{name}.json")
            log(f"stored {name} ({dump.stat().st_size} bytes, sha256 {digest[:12]}) in {store.url}")
        if tampered:
            raise BackupError("the audit trail contradicts what earlier backups recorded of it: " + "; ".join(tampered)
                              + f". {name} was stored; no older backup was deleted (they are the evidence). "
                              "See docs/runbooks/KubeChatLogicalBackupFailed.md")
        log("audit anchors: the live audit trail holds every row the kept backups recorded")
        names = store.list()
        for old in expired([n for n in names if n.endswith(".dump")], now, max_age, keep):
            store.delete(old)
            if f"{old}.json" in names:
                store.delete(f"{old}.json")
            log(f"retention: deleted {old} (older than {max_age} days, not among the newest {keep})")
        log("done")
        return 0
    except BackupError as error:
        print(f"logical-backup: FAILED: {error}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
