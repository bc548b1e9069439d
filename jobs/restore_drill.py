"""Restore drill: restore the newest logical backup into a scratch database and prove it is whole.
Checks the dump's checksum, the schema version (not dirty, as recorded and as the release expects),
the row counts of the main tables (exactly as recorded at backup time) and the audit hash chain;
drops the scratch database whatever happened; exits non-zero on any mismatch so the Job fails and
the alert fires.

The scratch database lives on a throwaway PostgreSQL server the drill starts inside its own pod
(--scratch-server, as the CronJob runs it: no privileges on, and no load for, the production
cluster), or on a server given by the PG* variables (--scratch-database).

Environment: BACKUP_TARGET, S3_ENDPOINT_URL and AWS_* as for logical_backup.py; EXPECTED_SCHEMA_VERSION
(optional); PG* for --scratch-database.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backup_store import BackupError, Store, file_sha256, dump_time  # noqa: E402
from logical_backup import MAIN_TABLES  # noqa: E402


def log(message: str) -> None:
    print(f"restore-drill: {message}", flush=True)


def run(step: str, command: list[str], env: dict | None = None) -> str:
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise BackupError(f"{step} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


class ScratchServer:
    """A PostgreSQL server in a temporary folder, on a Unix socket only."""

    def __init__(self, root: Path) -> None:
        self.root, self.data = root, root / "data"
        self.bin = Path(os.environ.get("PG_BIN", "")) if os.environ.get("PG_BIN") else None

    def _tool(self, name: str) -> str:
        return str(self.bin / name) if self.bin else name

    def __enter__(self) -> dict:
        run("initdb", [self._tool("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8"])
        run("pg_ctl start", [self._tool("pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.root / "server.log"),
                             "-o", f"-c listen_addresses='' -c unix_socket_directories='{self.root}' -c fsync=off",
                             "start"])
        return {"PGHOST": str(self.root), "PGUSER": "postgres", "PGDATABASE": "postgres", "PGPORT": "5432"}

    def __exit__(self, *exc) -> None:
        subprocess.run([self._tool("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], capture_output=True)


def psql(env: dict, database: str, sql: str) -> str:
    return run("psql", ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql], env=env)


def newest_dump(store: Store) -> str:
    dumps = [n for n in store.list() if dump_time(n)]
    if not dumps:
        raise BackupError(f"no logical backup found in {store.url}")
    return max(dumps, key=dump_time)


def drill(store: Store, server_env: dict, expected_version: int | None) -> None:
    name = newest_dump(store)
    log(f"newest backup: {name}")
    with tempfile.TemporaryDirectory(prefix="kubechat-drill-") as tmp:
        dump, manifest_path = Path(tmp) / name, Path(tmp) / f"{name}.json"
        store.get(name, dump)
        store.get(f"{name}.json", manifest_path)
        manifest = json.loads(manifest_path.read_text())
        digest = file_sha256(dump)
        if digest != manifest["sha256"]:
            raise BackupError(f"{name}: checksum {digest[:12]} does not match the manifest's "
                              f"{manifest['sha256'][:12]}: the backup was altered or damaged")
        scratch = f"kubechat_drill_{int(time.time())}"
        env = {**os.environ, **server_env}
        psql(env, "postgres", f"CREATE DATABASE {scratch}")
        try:
            run("pg_restore", ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "-d", scratch,
                                 str(dump)], env=env)
            version, dirty = psql(env, scratch, "SELECT version, dirty FROM schema_migrations").split("|")
            problems = []
            if dirty == "t":
                problems.append(f"schema version {version} is dirty")
            if int(version) != manifest["schema_version"]:
                problems.append(f"schema version {version}, the manifest recorded {manifest['schema_version']}")
            if expected_version is not None and int(version) != expected_version:
                problems.append(f"schema version {version}, the release expects {expected_version}")
            for table in MAIN_TABLES:
                count = int(psql(env, scratch, f"SELECT count(*) FROM {table}"))
                if count != manifest["row_counts"][table]:
                    problems.append(f"{table}: {count} rows restored, {manifest['row_counts'][table]} backed up")
            broken = psql(env, scratch, "SELECT broken_id || ': ' || reason FROM audit_verify_chain()")
            if broken:
                problems.append(f"audit chain broken at row {broken}")
            if problems:
                raise BackupError(f"{name} restored but does not match: " + "; ".join(problems))
            counts = ", ".join(f"{t}={manifest['row_counts'][t]}" for t in MAIN_TABLES)
            log(f"{name}: schema version {version}, {counts}, audit chain intact")
        finally:
            psql(env, "postgres", f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
            log(f"dropped scratch database {scratch}")


def main() -> int:
    parser = argparse.ArgumentParser()
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--scratch-server", action="store_true", help="start a throwaway server in this pod")
    mode.add_argument("--scratch-database", action="store_true", help="use the server of the PG* variables")
    args = parser.parse_args()
    try:
        store = Store(os.environ.get("BACKUP_TARGET", ""))
        expected = os.environ.get("EXPECTED_SCHEMA_VERSION")
        expected_version = int(expected) if expected else None
        if args.scratch_server:
            root = Path(tempfile.mkdtemp(prefix="kubechat-scratch-pg-"))
            try:
                with ScratchServer(root) as server_env:
                    drill(store, server_env, expected_version)
            finally:
                shutil.rmtree(root, ignore_errors=True)
        else:
            drill(store, {}, expected_version)
        log("passed")
        return 0
    except BackupError as error:
        print(f"restore-drill: FAILED: {error}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
