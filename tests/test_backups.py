"""The logical backup and restore drill scripts (jobs/), run directly against a real PostgreSQL and
a local S3-compatible server, exactly as the CronJobs run them."""
from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import ROOT, find
from kubechat_deploy.data.migration_files import latest_version
from postgres import PostgresServer
from s3server import S3Server

sys.path.insert(0, str(ROOT / "jobs"))
from backup_store import BackupError, expired  # noqa: E402

pytestmark = pytest.mark.servers  # a real PostgreSQL server (and S3 server) per test module

MIGRATE = ROOT / "bin" / "migrate"
JOBS = ROOT / "jobs"
NOW = "2026-03-10T03:00:00Z"
LATEST = latest_version(ROOT / "migrations")


@pytest.fixture(scope="module")
def server():
    pg = PostgresServer().start()
    assert BACKUP_USER in pg.create_managed_roles()
    pg.psql("CREATE DATABASE kubechat")
    subprocess.run([str(MIGRATE), "-path", str(ROOT / "migrations"), "-database", pg.url("kubechat"), "up"],
                   check=True, capture_output=True)
    pg.psql("""
        INSERT INTO users (email) SELECT 'user' || i || '@example.com' FROM generate_series(1, 25) i;
        INSERT INTO chat_sessions (user_id, title) SELECT id, 'chat' FROM users;
        INSERT INTO chat_messages (chat_session_id, author, content) SELECT id, 'user', 'hello' FROM chat_sessions;
        INSERT INTO audit_log (action, target) SELECT 'login', 'user/' || i FROM generate_series(1, 40) i;
    """, "kubechat")
    yield pg
    pg.stop()


@pytest.fixture(scope="module")
def s3():
    server = S3Server().start()
    yield server
    server.stop()


def rendered_backup_user() -> str:
    """The role the rendered logical backup connects as: the username in dev's Secret its PGUSER comes from."""
    import base64

    import yaml

    (path,) = (ROOT / "dist" / "rendered" / "dev").glob("secret-kubechat-db-backup-*.yaml")
    return base64.b64decode(yaml.safe_load(path.read_text())["data"]["username"]).decode()


BACKUP_USER = rendered_backup_user()


def pg_env(server, **overrides) -> dict:
    """The backup job's connection: the rendered read-only role (#31.2), not the owner or a superuser."""
    return {"PGHOST": "127.0.0.1", "PGPORT": str(server.port), "PGDATABASE": "kubechat", "PGUSER": BACKUP_USER,
            "PGPASSWORD": "unused", "PATH": f"{server.bin}:{os.environ['PATH']}", **overrides}


def backup(env: dict, now: str = NOW, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(JOBS / "logical_backup.py"), "--now", now],
                          env={**os.environ, "RETENTION_DAYS": "7", "RETENTION_KEEP_NEWEST": "3", **env},
                          capture_output=True, text=True, preexec_fn=preexec)


def drill(env: dict, mode: str = "--scratch-database") -> subprocess.CompletedProcess:
    # A scratch database on the test's server is created by its superuser (the CronJob's drill starts a server
    # of its own, --scratch-server).
    return subprocess.run([sys.executable, str(JOBS / "restore_drill.py"), mode],
                          env={**os.environ, **env, "PGUSER": "postgres"}, capture_output=True, text=True)


def test_backup_then_drill_round_trip_on_a_volume(server, tmp_path):
    target = {"BACKUP_TARGET": f"file://{tmp_path}/backups"}
    result = backup({**pg_env(server), **target})
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert files == ["kubechat-20260310T030000Z.dump", "kubechat-20260310T030000Z.dump.json"]
    manifest = json.loads((tmp_path / "backups" / files[1]).read_text())
    assert manifest["schema_version"] == LATEST
    assert manifest["row_counts"] == {"users": 25, "sessions": 0, "chat_sessions": 25, "chat_messages": 25,
                                      "kubernetes_operations": 0, "audit_log": 40}
    result = drill({**pg_env(server), **target, "EXPECTED_SCHEMA_VERSION": str(LATEST)})
    assert result.returncode == 0, result.stderr
    assert "audit chain intact" in result.stdout and "dropped scratch database" in result.stdout
    assert server.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'kubechat_drill_%'") == "0"


def test_backup_and_drill_through_s3(server, s3):
    s3.create_bucket("kubechat-backups")
    target = {**s3.env, "BACKUP_TARGET": "s3://kubechat-backups/staging/logical"}
    assert backup({**pg_env(server), **target}).returncode == 0
    result = drill({**pg_env(server), **target})
    assert result.returncode == 0, result.stderr


def test_drill_in_its_own_scratch_server_as_the_cronjob_runs_it(server):
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="kubechat-drill-test-"))  # pytest's tmp is root-only
    backups = tmp_path / "backups"
    assert backup({**pg_env(server), "BACKUP_TARGET": f"file://{backups}"}).returncode == 0
    # initdb refuses root: run the drill as the unprivileged postgres user, as the pod's UID would.
    shutil.chown(tmp_path, "postgres")
    for path in [backups, *backups.iterdir()]:
        shutil.chown(path, "postgres")
    env = {"BACKUP_TARGET": f"file://{backups}", "PG_BIN": str(server.bin),
           "PATH": f"{server.bin}:{os.environ['PATH']}", "TMPDIR": str(tmp_path), "HOME": str(tmp_path)}
    try:
        result = subprocess.run(["runuser", "-u", "postgres", "--", sys.executable, str(JOBS / "restore_drill.py"),
                                 "--scratch-server"], env=env, capture_output=True, text=True)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    assert "passed" in result.stdout and "audit chain intact" in result.stdout


IMAGE_PASSWD = "root:x:0:0:root:/root:/bin/bash\npostgres:x:26:26:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n"
"""The users of CloudNativePG's PostgreSQL image (its postgres user is UID 26: the operator runs it so,
api/v1/cluster_types.go DefaultPostgresUID = 26), given to the drill with nss_wrapper as the image's
/etc/passwd would be: a UID missing from it cannot run initdb."""


def cronjob_user(rendered, name: str) -> tuple[int, int]:
    job = find(rendered["production"], "CronJob", name)
    context = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["securityContext"]
    return context["runAsUser"], context["runAsGroup"]


@pytest.mark.parametrize("who", ["rendered", "before the fix"])
def test_the_drill_runs_as_the_cronjobs_user_in_the_images_passwd(server, rendered, who):
    """14.4: the drill's scratch server (initdb) as the rendered CronJob's UID with the image's users; the
    UID the CronJob had before (10001, not in the image) fails exactly as it would in the pod."""
    import tempfile

    wrapper = next(iter(sorted(Path("/usr/lib").glob("*/libnss_wrapper.so"))), None)
    assert wrapper, "libnss-wrapper is missing: make setup installs it"
    uid, gid = cronjob_user(rendered, "kubechat-restore-drill") if who == "rendered" else (10001, 10001)
    assert cronjob_user(rendered, "kubechat-logical-backup")[0] == cronjob_user(rendered, "kubechat-restore-drill")[0]
    tmp_path = Path(tempfile.mkdtemp(prefix="kubechat-drill-uid-"))  # pytest's tmp is root-only
    try:
        backups = tmp_path / "backups"
        assert backup({**pg_env(server), "BACKUP_TARGET": f"file://{backups}"}).returncode == 0
        (tmp_path / "passwd").write_text(IMAGE_PASSWD)
        (tmp_path / "group").write_text("root:x:0:\npostgres:x:26:\n")
        for path in [tmp_path, backups, *backups.iterdir()]:
            os.chown(path, uid, gid)
        env = {"BACKUP_TARGET": f"file://{backups}", "PG_BIN": str(server.bin), "PATH": f"{server.bin}:{os.environ['PATH']}",
               "TMPDIR": str(tmp_path), "HOME": str(tmp_path), "LD_PRELOAD": str(wrapper),
               "NSS_WRAPPER_PASSWD": str(tmp_path / "passwd"), "NSS_WRAPPER_GROUP": str(tmp_path / "group")}
        result = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", sys.executable,
                                 str(JOBS / "restore_drill.py"), "--scratch-server"], env=env, capture_output=True, text=True)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
    if who == "rendered":
        assert uid == 26 and result.returncode == 0, result.stderr
        assert "passed" in result.stdout
    else:
        assert result.returncode != 0 and "initdb failed" in result.stderr, result.stderr
        assert "10001" in result.stderr, result.stderr


def test_a_tampered_backup_fails_the_drill(server, tmp_path):
    target = {"BACKUP_TARGET": f"file://{tmp_path}"}
    assert backup({**pg_env(server), **target}).returncode == 0
    dump = tmp_path / "kubechat-20260310T030000Z.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    result = drill({**pg_env(server), **target})
    assert result.returncode == 1 and "does not match the manifest" in result.stderr


def test_missing_rows_fail_the_drill(server, tmp_path):
    target = {"BACKUP_TARGET": f"file://{tmp_path}"}
    assert backup({**pg_env(server), **target}).returncode == 0
    manifest = tmp_path / "kubechat-20260310T030000Z.dump.json"
    data = json.loads(manifest.read_text())
    data["row_counts"]["chat_messages"] = 26
    manifest.write_text(json.dumps(data))
    result = drill({**pg_env(server), **target})
    assert result.returncode == 1 and "chat_messages: 25 rows restored, 26 backed up" in result.stderr


def test_a_backup_with_a_broken_audit_chain_fails_the_drill(server, tmp_path):
    server.psql("CREATE DATABASE tampered TEMPLATE kubechat")
    server.psql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;"
                "UPDATE audit_log SET target = 'user/nobody' WHERE id = 7;"
                "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only", "tampered")
    target = {"BACKUP_TARGET": f"file://{tmp_path}"}
    assert backup({**pg_env(server, PGDATABASE="tampered"), **target}).returncode == 0
    result = drill({**pg_env(server), **target})
    assert result.returncode == 1 and "audit chain broken at row 7" in result.stderr


def test_each_backup_records_the_audit_trails_newest_row_outside_the_database(server, tmp_path):
    assert backup({**pg_env(server), "BACKUP_TARGET": f"file://{tmp_path}"}).returncode == 0
    head = json.loads((tmp_path / "kubechat-20260310T030000Z.dump.json").read_text())["audit_head"]
    assert f"{head['id']}|{head['row_hash']}" == server.psql(
        "SELECT id, encode(row_hash, 'hex') FROM audit_log ORDER BY id DESC LIMIT 1", "kubechat")


def test_the_newest_audit_rows_removed_after_a_backup_fail_every_later_backup(server, tmp_path):
    """#31.2: the chain alone cannot show its newest rows removed; the anchors the kept backups recorded can."""
    server.psql("CREATE DATABASE trimmed TEMPLATE kubechat")
    env = {**pg_env(server, PGDATABASE="trimmed"), "BACKUP_TARGET": f"file://{tmp_path}"}
    first = backup(env, now="2026-03-10T03:00:00Z")
    assert first.returncode == 0, first.stderr
    assert "audit anchors: the live audit trail holds every row the kept backups recorded" in first.stdout
    server.psql("INSERT INTO audit_log (action, target) SELECT 'login', 'user/' || i FROM generate_series(41, 45) i",
                "trimmed")
    assert backup(env, now="2026-03-11T03:00:00Z").returncode == 0
    # Someone with the owner's rights removes the 7 newest rows: 39 and 40 (anchored by the first backup)
    # and 41 to 45 (the second's anchor is 45).
    server.psql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; DELETE FROM audit_log WHERE id > 38;"
                "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only", "trimmed")
    assert server.psql("SELECT count(*) FROM audit_verify_chain()", "trimmed") == "0"  # the rows left still chain
    for night in ("2026-03-12T03:00:00Z", "2026-03-20T03:00:00Z"):
        result = backup(env, now=night)
        assert result.returncode == 1, result.stdout
        assert "the audit trail contradicts what earlier backups recorded of it" in result.stderr
        assert "row 40 recorded by kubechat-20260310T030000Z.dump.json" in result.stderr
        assert "row 45 recorded by kubechat-20260311T030000Z.dump.json" in result.stderr
        assert "is missing: rows were removed" in result.stderr
    # Each failing night's dump was stored, and retention (7 days, 3 newest) deleted none of the evidence.
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".dump") == [
        "kubechat-20260310T030000Z.dump", "kubechat-20260311T030000Z.dump",
        "kubechat-20260312T030000Z.dump", "kubechat-20260320T030000Z.dump"]


def test_anchors_of_another_timeline_are_reported_not_counted(server, tmp_path):
    """After a recovery to an earlier point (a new timeline of the same database) the backups taken after the
    target anchor rows this history never had: logged, and the backup succeeds; the same anchors in the same
    timeline fail it (the test above)."""
    server.psql("CREATE DATABASE recovered TEMPLATE kubechat")
    env = {**pg_env(server, PGDATABASE="recovered"), "BACKUP_TARGET": f"file://{tmp_path}"}
    assert backup(env, now="2026-03-10T03:00:00Z").returncode == 0
    manifest = tmp_path / "kubechat-20260310T030000Z.dump.json"
    recorded = json.loads(manifest.read_text())
    head = recorded["audit_head"]
    assert head["system_identifier"] == server.psql("SELECT system_identifier FROM pg_control_system()")
    assert str(head["timeline"]) == server.psql("SELECT timeline_id FROM pg_control_checkpoint()")
    server.psql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; DELETE FROM audit_log WHERE id > 38;"
                "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only", "recovered")
    recorded["audit_head"]["timeline"] = head["timeline"] + 1  # as if this history had been recovered from it
    manifest.write_text(json.dumps(recorded))
    result = backup(env, now="2026-03-11T03:00:00Z")
    assert result.returncode == 0, result.stderr
    assert "row 40 recorded by kubechat-20260310T030000Z.dump.json" in result.stdout and "not counted" in result.stdout


def test_the_drill_checks_the_release_schema_version(server, tmp_path):
    target = {"BACKUP_TARGET": f"file://{tmp_path}"}
    assert backup({**pg_env(server), **target}).returncode == 0
    result = drill({**pg_env(server), **target, "EXPECTED_SCHEMA_VERSION": str(LATEST + 1)})
    assert result.returncode == 1 and f"the release expects {LATEST + 1}" in result.stderr


def seed_old_dumps(folder: Path, stamps: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stamp in stamps:
        (folder / f"kubechat-{stamp}.dump").write_bytes(b"old")
        (folder / f"kubechat-{stamp}.dump.json").write_text("{}")


@pytest.mark.parametrize("failure, env, message", [
    ("database unreachable", {"PGPORT": "1"}, "cannot connect to 127.0.0.1:1/kubechat"),
    ("bad credentials", {"PGUSER": "nobody"}, "cannot connect"),
    ("unknown target", {"BACKUP_TARGET": "ftp://somewhere"}, "allowed: s3://bucket/prefix or file:///path"),
])
def test_a_failing_backup_exits_non_zero_and_keeps_older_backups(server, tmp_path, failure, env, message):
    folder = tmp_path / "backups"
    seed_old_dumps(folder, ["20260101T030000Z", "20260102T030000Z"])
    before = sorted(p.name for p in folder.iterdir())
    result = backup({**pg_env(server), "BACKUP_TARGET": f"file://{folder}", **env})
    assert result.returncode == 1, failure
    assert "logical-backup: FAILED:" in result.stderr and message in result.stderr, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_full_target_fails_the_backup_and_keeps_older_backups(server, tmp_path):
    folder = tmp_path / "backups"
    seed_old_dumps(folder, ["20260101T030000Z"])
    before = sorted(p.name for p in folder.iterdir())

    def small_files():  # every file this process tree writes is capped at 4 KiB, like a full volume
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    result = backup({**pg_env(server), "BACKUP_TARGET": f"file://{folder}"}, preexec=small_files)
    assert result.returncode != 0 and "FAILED" in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == before


def test_retention_deletes_exactly_the_expired_dumps_whatever_the_clock(server, tmp_path):
    folder = tmp_path / "backups"
    seed_old_dumps(folder, ["20260201T030000Z", "20260301T030000Z", "20260302T030000Z", "20260305T030000Z"])
    result = backup({**pg_env(server), "BACKUP_TARGET": f"file://{folder}"}, now=NOW)
    assert result.returncode == 0, result.stderr
    kept = sorted(p.name for p in folder.iterdir() if p.name.endswith(".dump"))
    # 7 days before NOW is 03-03: 02-01 and 03-01 are expired; 03-02 is expired too but among the
    # newest three (03-10, 03-05, 03-02), so it stays.
    assert kept == ["kubechat-20260302T030000Z.dump", "kubechat-20260305T030000Z.dump", "kubechat-20260310T030000Z.dump"]
    assert not (folder / "kubechat-20260201T030000Z.dump.json").exists()


def test_retention_rule():
    now = datetime(2026, 3, 10, tzinfo=timezone.utc)
    names = [f"kubechat-202603{d:02d}T000000Z.dump" for d in range(1, 10)] + ["notes.txt"]
    assert expired(names, now, max_age_days=3, keep_newest=2) == [f"kubechat-202603{d:02d}T000000Z.dump" for d in range(1, 7)]
    assert expired(names, now, max_age_days=30, keep_newest=2) == []
    assert expired(names, now, max_age_days=1, keep_newest=9) == []
    for bad in ((0, 1), (1, 0), (-1, 3)):
        with pytest.raises(BackupError, match="must be >= 1"):
            expired(names, now, *bad)


def test_backup_from_a_dsn_as_in_external_database_mode(server, tmp_path):
    env = {"DATABASE_URL": server.url("kubechat"), "BACKUP_TARGET": f"file://{tmp_path}",
           "PATH": f"{server.bin}:{os.environ['PATH']}"}
    result = backup(env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kubechat-20260310T030000Z.dump").stat().st_size > 0


def test_the_scripts_hash_a_dump_in_bounded_memory(tmp_path):
    """A dump far larger than the job's 1Gi memory limit must not be read at once: hashing a 64 MiB file under
    a 48 MiB address-space headroom works only chunk by chunk (review finding: read_bytes() would be killed)."""
    from backup_store import file_sha256

    big = tmp_path / "dump"
    with open(big, "wb") as stream:
        for _ in range(64):
            stream.write(os.urandom(1 << 20))
    expected = hashlib.sha256(big.read_bytes()).hexdigest()
    code = ("import resource, sys; sys.path.insert(0, sys.argv[2]); from backup_store import file_sha256; "
            "soft, hard = resource.getrlimit(resource.RLIMIT_AS); used = int(open('/proc/self/statm').read().split()[0]) * 4096; "
            "resource.setrlimit(resource.RLIMIT_AS, (used + (48 << 20), hard)); print(file_sha256(sys.argv[1]))")
    result = subprocess.run([sys.executable, "-c", code, str(big), str(JOBS)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == expected, result.stderr[-2000:]
    for script in ("logical_backup.py", "restore_drill.py"):
        assert ".read_bytes()).hexdigest()" not in (JOBS / script).read_text(), script
    assert file_sha256(big) == expected
