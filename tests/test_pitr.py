"""Point-in-time recovery for real, the way CloudNativePG's barman-cloud plugin does it: PostgreSQL
archives WAL with barman-cloud-wal-archive into a local S3-compatible server, a base backup with
barman-cloud-backup, rows written before and after a recorded time, barman-cloud-restore into a new
data directory, replay with barman-cloud-wal-restore up to that time: exactly the earlier rows."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postgres import PostgresServer
from s3server import S3Server, environ_with

pytestmark = pytest.mark.servers  # a real PostgreSQL server (and S3 server) per test module

BIN = Path(sys.executable).parent
BUCKET, PREFIX, SERVER_NAME = "kubechat-pitr", "s3://kubechat-pitr/production", "kubechat-db"


@pytest.fixture
def s3():
    server = S3Server().start()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


def barman(tool: str, s3: S3Server, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / tool), "--endpoint-url", s3.url, *args], env=environ_with(s3.env),
                            capture_output=True, text=True)
    assert result.returncode == 0, f"{tool}: {result.stderr}"
    return result


def wait_for(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_point_in_time_recovery_restores_exactly_the_rows_before_the_target(s3):
    credentials = "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1"
    archive = (f"{credentials} {BIN / 'barman-cloud-wal-archive'} --endpoint-url {s3.url} {PREFIX} {SERVER_NAME} %p")
    source = PostgresServer().start(extra_conf=(
        "wal_level = replica\narchive_mode = on\narchive_timeout = 2\n"
        f"archive_command = '{archive}'\n"))
    restored = None
    try:
        source.psql("CREATE TABLE events (id serial PRIMARY KEY, note text, at timestamptz DEFAULT clock_timestamp())")
        source.psql("INSERT INTO events (note) VALUES ('before backup 1'), ('before backup 2')")
        barman("barman-cloud-backup", s3, "-h", "127.0.0.1", "-p", str(source.port), "-U", "postgres", PREFIX, SERVER_NAME)
        source.psql("INSERT INTO events (note) VALUES ('after backup, before target')")
        time.sleep(1.1)
        target = source.psql("SELECT clock_timestamp()")
        time.sleep(1.1)
        source.psql("INSERT INTO events (note) VALUES ('after target 1'), ('after target 2')")
        lsn = source.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        source.psql("SELECT pg_switch_wal()")
        wait_for(lambda: source.psql(f"SELECT last_archived_wal >= '{lsn}' FROM pg_stat_archiver") == "t",
                 "the WAL holding the last rows to be archived")
        source.stop()

        backups = json.loads(barman("barman-cloud-backup-list", s3, "--format", "json", PREFIX, SERVER_NAME).stdout)
        backup_id = backups["backups_list"][0]["backup_id"]
        restored = PostgresServer()
        restored.data.parent.mkdir(parents=True, exist_ok=True)
        barman("barman-cloud-restore", s3, PREFIX, SERVER_NAME, backup_id, str(restored.data))
        shutil.chown(restored.root, "postgres", "postgres")
        subprocess.run(["chown", "-R", "postgres:postgres", str(restored.data)], check=True)
        restored.data.chmod(0o700)
        restore_command = (f"{credentials} {BIN / 'barman-cloud-wal-restore'} --endpoint-url {s3.url} "
                           f"{PREFIX} {SERVER_NAME} %f %p")
        with open(restored.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {restored.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{restored.root}'\narchive_mode = off\n"
                       f"restore_command = '{restore_command}'\nrecovery_target_time = '{target}'\n"
                       "recovery_target_action = 'promote'\n")
        (restored.data / "recovery.signal").touch()
        shutil.chown(restored.data / "recovery.signal", "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
        restored.process = subprocess.Popen(prefix + [str(restored.bin / "postgres"), "-D", str(restored.data)],
                                            stdout=subprocess.DEVNULL, stderr=open(restored.root / "server.log", "w"))
        wait_for(lambda: subprocess.run([str(restored.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(restored.port)],
                                        capture_output=True).returncode == 0, "the restored server")
        wait_for(lambda: restored.psql("SELECT pg_is_in_recovery()", check=False) == "f", "recovery to finish")
        notes = restored.psql("SELECT string_agg(note, ',' ORDER BY id) FROM events")
        assert notes == "before backup 1,before backup 2,after backup, before target"
    finally:
        source.stop()
        if restored:
            restored.stop()
