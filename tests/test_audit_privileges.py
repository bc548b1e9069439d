"""Least privilege on the audit trail (#31.2), on a real PostgreSQL set up as CloudNativePG sets up the
rendered Cluster: the database owned by the bootstrap owner (`kubechat`, not a superuser), the managed
roles of the Cluster's spec.managed.roles created, the migrations run as the owner by golang-migrate's CLI,
and the API connected as its own role."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from conftest import ROOT
from postgres import PostgresServer

pytestmark = pytest.mark.servers  # a real PostgreSQL server per test module

MIGRATE = ROOT / "bin" / "migrate"
OWNER = "kubechat"


def rendered_api_role() -> str:
    """The role the rendered API connects as: the username in dev's Secret its PGUSER comes from."""
    import base64

    (path,) = (ROOT / "dist" / "rendered" / "dev").glob("secret-kubechat-db-api-*.yaml")
    return base64.b64decode(yaml.safe_load(path.read_text())["data"]["username"]).decode()


API = rendered_api_role()


@pytest.fixture(scope="module")
def server():
    pg = PostgresServer().start()
    assert {API, "kubechat_backup"} <= set(pg.create_managed_roles())
    # CloudNativePG's initdb bootstrap: the owner is an ordinary login role owning the application database.
    pg.psql(f"CREATE ROLE {OWNER} LOGIN PASSWORD 'test'")
    yield pg
    pg.stop()


@pytest.fixture
def database(server, request):
    name = server.fresh_database(request.node.name, prefix="a", owner=OWNER)
    result = subprocess.run([str(MIGRATE), "-path", str(ROOT / "migrations"), "-database",
                             server.url(name, user=OWNER), "up"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return name


def as_api(server, database, sql: str, check: bool = True) -> str:
    return server.psql(sql, database, user=API, check=check)


def as_owner(server, database, sql: str, check: bool = True) -> str:
    return server.psql(sql, database, user=OWNER, check=check)


def append(server, database, n: int) -> None:
    for i in range(n):
        as_api(server, database, "INSERT INTO audit_log (action, target, details) VALUES "
                                 f"('kubernetes.scale', 'deployment/web-{i}', '{{\"replicas\": {i}}}')")


def count(server, database) -> int:
    return int(as_api(server, database, "SELECT count(*) FROM audit_log"))


def test_the_api_role_runs_the_application_and_appends_to_the_audit_trail(server, database):
    as_api(server, database, """
        INSERT INTO users (email, display_name) VALUES ('ada@example.com', 'Ada');
        INSERT INTO user_roles (user_id, role) SELECT id, 'operator' FROM users;
        INSERT INTO chat_sessions (user_id, title) SELECT id, 'why is my pod pending' FROM users;
        INSERT INTO chat_messages (chat_session_id, author, content) SELECT id, 'user', 'why?' FROM chat_sessions;
        UPDATE users SET display_name = 'Ada L.';
        DELETE FROM chat_messages;""")
    append(server, database, 3)
    assert count(server, database) == 3
    assert as_api(server, database, "SELECT count(*) FROM audit_verify_chain()") == "0"
    assert as_api(server, database, "SELECT dirty FROM schema_migrations") == "f"


# Each way an API credential could rewrite the trail before 0006, and what PostgreSQL answers now.
BYPASSES = {
    "the prune setting, then DELETE": ("SET kubechat.audit_prune = 'on'; DELETE FROM audit_log",
                                       "permission denied for table audit_log"),
    "UPDATE": ("UPDATE audit_log SET target = 'deployment/innocent'", "permission denied for table audit_log"),
    "TRUNCATE": ("TRUNCATE audit_log", "permission denied for table audit_log"),
    "disabling the triggers": ("ALTER TABLE audit_log DISABLE TRIGGER USER", "must be owner of table audit_log"),
    "rewriting a hash": ("UPDATE audit_log SET row_hash = '\\x00'", "permission denied for table audit_log"),
    "lowering the retention": ("UPDATE audit_settings SET min_retention = interval '1 day'",
                               "permission denied for table audit_settings"),
    "a forged checkpoint": ("INSERT INTO audit_checkpoints (last_pruned_id, last_row_hash, pruned_rows) "
                            "VALUES (3, '\\x00', 3)", "permission denied for table audit_checkpoints"),
    "a forged prune grant": ("INSERT INTO audit_prune_grants VALUES (pg_current_xact_id())",
                             "permission denied for table audit_prune_grants"),
    "a backdated row (prune would take every row before it)": (
        "INSERT INTO audit_log (occurred_at, action) VALUES (now() - interval '10 years', 'x')",
        "permission denied for table audit_log"),
    "a chosen id": ("INSERT INTO audit_log (id, action) OVERRIDING SYSTEM VALUE VALUES (1000000, 'x')",
                    "permission denied for table audit_log"),
    "a function of its own in the schema": (
        "CREATE FUNCTION public.audit_log_chain_off() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "permission denied for schema public"),
    "a trigger replaced": ("CREATE OR REPLACE FUNCTION audit_log_reject_change() RETURNS trigger "
                           "LANGUAGE plpgsql AS 'BEGIN RETURN OLD; END'", "permission denied for schema public"),
    "pruning inside the retention period": ("SELECT audit_prune(interval '1 day')",
                                            "is shorter than the minimum retention"),
}


@pytest.mark.parametrize("bypass", BYPASSES)
def test_as_the_api_role_each_way_to_rewrite_the_audit_trail_is_refused(server, database, bypass):
    append(server, database, 3)
    statement, refusal = BYPASSES[bypass]
    answer = as_api(server, database, statement, check=False)
    assert refusal in answer, answer
    assert count(server, database) == 3
    assert as_api(server, database, "SELECT count(*) FROM audit_verify_chain()") == "0"


def test_the_backup_role_reads_everything_and_writes_nothing(server, database):
    """The logical backups' role (the rendered Cluster's other managed role, in pg_read_all_data)."""
    import base64

    (path,) = (ROOT / "dist" / "rendered" / "dev").glob("secret-kubechat-db-backup-*.yaml")
    backup = base64.b64decode(yaml.safe_load(path.read_text())["data"]["username"]).decode()
    append(server, database, 2)
    assert server.psql("SELECT count(*) FROM audit_log", database, user=backup) == "2"
    assert server.psql("SELECT count(*) FROM audit_checkpoints", database, user=backup) == "0"
    for statement in ("DELETE FROM audit_log", "INSERT INTO audit_log (action) VALUES ('x')",
                      "INSERT INTO users (email) VALUES ('eve@example.com')", "TRUNCATE sessions",
                      "SELECT audit_prune(interval '400 days')"):
        assert "permission denied" in server.psql(statement, database, user=backup, check=False), statement
    assert count(server, database) == 2


def test_the_prune_setting_no_longer_opens_the_table_even_to_the_owner(server, database):
    """0005 let any session that set kubechat.audit_prune delete rows; now only audit_prune() can."""
    append(server, database, 3)
    answer = as_owner(server, database, "SET kubechat.audit_prune = 'on'; DELETE FROM audit_log WHERE id = 3",
                      check=False)
    assert "audit_log is append-only: DELETE is not allowed" in answer
    assert count(server, database) == 3


def test_a_temporary_table_cannot_feed_the_chain_another_previous_hash(server, database):
    append(server, database, 2)
    as_api(server, database, """
        CREATE TEMP TABLE audit_log (id bigint, row_hash bytea);
        INSERT INTO pg_temp.audit_log VALUES (99, '\\xdeadbeef');
        INSERT INTO public.audit_log (action) VALUES ('login')""")
    assert as_api(server, database, "SELECT count(*) FROM audit_verify_chain()") == "0"
    assert as_api(server, database, "SELECT prev_hash = (SELECT row_hash FROM audit_log WHERE id = 2) "
                                    "FROM audit_log WHERE id = 3") == "t"


def backdate(server, database, ids: str, age: str) -> None:
    """As the superuser (the only one who could), move rows into the past and chain them again."""
    server.rechain_audit_log(database, f"UPDATE audit_log SET occurred_at = now() - interval '{age}' WHERE id IN ({ids});")


def test_the_api_role_prunes_only_through_audit_prune_past_the_retention(server, database):
    append(server, database, 4)
    backdate(server, database, "1, 2", "500 days")
    assert as_api(server, database, "SELECT audit_prune(interval '400 days')") == "2"
    assert count(server, database) == 2
    assert as_api(server, database, "SELECT count(*) FROM audit_verify_chain()") == "0"
    assert as_api(server, database, "SELECT last_pruned_id, pruned_rows FROM audit_checkpoints") == "2|2"


def head(server, database) -> tuple[str, str, str]:
    return tuple(as_api(server, database, "SELECT id, encode(row_hash, 'hex'), occurred_at FROM audit_log "
                                          "ORDER BY id DESC LIMIT 1").split("|"))


def verify_anchor(server, database, anchor: tuple[str, str, str]) -> str:
    anchor_id, anchor_hash, anchor_time = anchor
    return as_api(server, database, f"SELECT broken_id || ': ' || reason FROM audit_verify_anchor("
                                    f"{anchor_id}, decode('{anchor_hash}', 'hex'), '{anchor_time}')")


def test_removing_the_newest_rows_is_reported_against_an_anchor_kept_outside(server, database):
    append(server, database, 5)
    anchor = head(server, database)
    assert verify_anchor(server, database, anchor) == ""
    # Someone with the owner's rights (not the API) removes the two newest rows.
    as_owner(server, database, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; "
                               "DELETE FROM audit_log WHERE id >= 4; "
                               "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    # The chain alone cannot tell: the rows left still chain.
    assert as_api(server, database, "SELECT count(*) FROM audit_verify_chain()") == "0"
    report = verify_anchor(server, database, anchor)
    assert report.startswith("5: the row recorded outside the database") and "is missing" in report, report


def test_a_rewritten_newest_row_is_reported_against_its_anchor(server, database):
    append(server, database, 3)
    anchor = head(server, database)
    # Rewritten with a recomputed hash, so the chain verifies.
    server.psql("""
        ALTER TABLE audit_log DISABLE TRIGGER USER;
        UPDATE audit_log SET target = 'deployment/innocent' WHERE id = 3;
        UPDATE audit_log l SET row_hash = audit_row_digest(l.prev_hash, l) WHERE id = 3;
        ALTER TABLE audit_log ENABLE TRIGGER USER;""", database)
    assert as_api(server, database, "SELECT count(*) FROM audit_verify_chain()") == "0"
    assert verify_anchor(server, database, anchor).startswith("3: row_hash differs")


def test_an_anchor_pruned_after_the_retention_holds_and_a_recent_one_does_not(server, database):
    append(server, database, 3)
    backdate(server, database, "1, 2", "500 days")
    old = as_api(server, database, "SELECT id, encode(row_hash, 'hex'), occurred_at FROM audit_log WHERE id = 2").split("|")
    assert as_api(server, database, "SELECT audit_prune(interval '400 days')") == "2"
    assert verify_anchor(server, database, tuple(old)) == ""
    # The same row claimed as written yesterday: pruning it would have been refused, so it was removed.
    recent = (old[0], old[1], "now")
    assert verify_anchor(server, database, recent).startswith("2: the row recorded outside the database")
