"""The schema migrations, driven exactly as the migration Job drives them (golang-migrate's CLI)
against a real PostgreSQL server, and the audit log's guarantees."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import ROOT
from kubechat_deploy.data.migration_files import MigrationError, latest_version, load_migrations
from postgres import PostgresServer

pytestmark = pytest.mark.servers  # a real PostgreSQL server per test module

MIGRATE = ROOT / "bin" / "migrate"
MIGRATIONS = ROOT / "migrations"


@pytest.fixture(scope="module")
def server():
    pg = PostgresServer().start()
    pg.create_managed_roles()
    yield pg
    pg.stop()


@pytest.fixture
def database(server, request):
    return server.fresh_database(request.node.name)


def migrate(server, database, *args, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(MIGRATE), "-path", str(MIGRATIONS), "-database", server.url(database), *args],
                            capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def version(server, database) -> str:
    return server.psql("SELECT version, dirty FROM schema_migrations", database)


def seed(server, database) -> None:
    server.psql("""
        INSERT INTO users (email, display_name) VALUES ('ada@example.com', 'Ada'), ('bob@example.com', 'Bob');
        INSERT INTO user_roles (user_id, role) SELECT id, 'operator' FROM users WHERE email = 'ada@example.com';
        INSERT INTO chat_sessions (user_id, title) SELECT id, 'why is my pod pending' FROM users WHERE email = 'ada@example.com';
        INSERT INTO chat_messages (chat_session_id, author, content) SELECT id, 'user', 'why?' FROM chat_sessions;
    """, database)


def test_migrations_are_well_formed():
    migrations = load_migrations(MIGRATIONS)
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert latest_version(MIGRATIONS) == len(migrations)
    for m in migrations:
        for sql in (m.up.read_text(), m.down.read_text()):
            assert sql.strip().startswith(("--", "BEGIN")) and "COMMIT;" in sql, f"{m.name}: not one transaction"


def test_all_up_all_down_all_up_again(server, database):
    latest = latest_version(MIGRATIONS)
    migrate(server, database, "up")
    assert version(server, database) == f"{latest}|f"
    migrate(server, database, "down", "-all")
    tables = server.psql("SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'", database)
    assert tables == "schema_migrations", f"down -all left tables behind: {tables}"
    migrate(server, database, "up")
    assert version(server, database) == f"{latest}|f"


def test_rerunning_an_up_migration_is_harmless(server, database):
    migrate(server, database, "up")
    # Apply every up file again by hand, as a half-finished earlier run might force an operator to.
    for m in load_migrations(MIGRATIONS):
        server.psql(m.up.read_text(), database)
    assert server.psql("SELECT count(*) FROM roles", database) == "4"


def test_down_then_up_of_the_latest_migration_keeps_earlier_data(server, database):
    latest = latest_version(MIGRATIONS)
    migrate(server, database, "up")
    seed(server, database)
    migrate(server, database, "goto", str(latest - 1))
    assert version(server, database) == f"{latest - 1}|f"
    migrate(server, database, "goto", str(latest))
    assert server.psql("SELECT count(*) FROM users", database) == "2"
    assert server.psql("SELECT count(*) FROM chat_messages", database) == "1"


def test_goto_a_version_without_migration_fails(server, database):
    result = migrate(server, database, "goto", "999", check=False)
    assert result.returncode != 0


def audit(server, database, n: int) -> None:
    for i in range(n):
        server.psql(f"INSERT INTO audit_log (action, target, details) VALUES "
                    f"('kubernetes.scale', 'deployment/web-{i}', '{{\"replicas\": {i}}}')", database)


def test_audit_log_rejects_update_delete_and_truncate(server, database):
    migrate(server, database, "up")
    audit(server, database, 3)
    for statement in ("UPDATE audit_log SET action = 'x' WHERE id = 2", "DELETE FROM audit_log WHERE id = 1",
                      "TRUNCATE audit_log"):
        error = server.psql(statement, database, check=False)
        assert "audit_log is append-only" in error, statement
    assert server.psql("SELECT count(*) FROM audit_log", database) == "3"


def test_audit_chain_verifies_when_intact_and_finds_the_first_tampered_row(server, database):
    migrate(server, database, "up")
    audit(server, database, 5)
    assert server.psql("SELECT count(*) FROM audit_verify_chain()", database) == "0"
    # A superuser disables the trigger and rewrites history.
    server.psql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;"
                "UPDATE audit_log SET target = 'deployment/innocent' WHERE id = 3;"
                "UPDATE audit_log SET action = 'x' WHERE id = 4;"
                "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only", database)
    result = server.psql("SELECT broken_id, reason FROM audit_verify_chain()", database)
    assert result.startswith("3|row_hash does not match"), result


def test_audit_chain_detects_a_removed_row(server, database):
    migrate(server, database, "up")
    audit(server, database, 4)
    server.psql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;"
                "DELETE FROM audit_log WHERE id = 2;"
                "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only", database)
    assert server.psql("SELECT broken_id, reason FROM audit_verify_chain()", database).startswith("3|prev_hash")


def test_audit_retention_prunes_only_past_the_minimum_and_keeps_the_chain_verifiable(server, database):
    migrate(server, database, "up")
    audit(server, database, 3)
    error = server.psql("SELECT audit_prune(interval '30 days')", database, check=False)
    assert "shorter than the minimum retention" in error
    # Age the first two rows past the retention period (as a superuser would only in a test).
    server.psql("ALTER TABLE audit_log DISABLE TRIGGER USER;"
                "UPDATE audit_log SET occurred_at = now() - interval '500 days' WHERE id <= 2;"
                "ALTER TABLE audit_log ENABLE TRIGGER USER", database)
    # Re-chain after the test's own edit so the starting point is an intact chain.
    server.rechain_audit_log(database)
    assert server.psql("SELECT count(*) FROM audit_verify_chain()", database) == "0"
    assert server.psql("SELECT audit_prune(interval '400 days')", database) == "2"
    assert server.psql("SELECT count(*) FROM audit_log", database) == "1"
    assert server.psql("SELECT count(*) FROM audit_verify_chain()", database) == "0"
    audit(server, database, 1)
    assert server.psql("SELECT count(*) FROM audit_verify_chain()", database) == "0"


def test_operations_record_who_approved(server, database):
    migrate(server, database, "up")
    seed(server, database)
    error = server.psql("""INSERT INTO kubernetes_operations (requested_by, verb, kind, approval_state)
                           SELECT id, 'scale', 'Deployment', 'approved' FROM users WHERE email = 'ada@example.com'""",
                        database, check=False)
    assert "approval_has_approver" in error
    error = server.psql("""INSERT INTO kubernetes_operations (requested_by, approved_by, approved_at, verb, kind, approval_state)
                           SELECT id, id, now(), 'delete', 'Pod', 'approved' FROM users WHERE email = 'ada@example.com'""",
                        database, check=False)
    assert "no_self_approval" in error


@pytest.mark.parametrize("files, message", [
    (["0001_a.up.sql", "0001_a.down.sql", "0002_b.up.sql"], "0002_b has no .down.sql"),
    (["0001_a.up.sql", "0001_a.down.sql", "0003_c.up.sql", "0003_c.down.sql"], "gap: version 2 is missing"),
    (["0001_a.up.sql", "0001_a.down.sql", "0001_b.up.sql", "0001_b.down.sql"], "version 1 is used twice"),
    (["0001_a.up.sql", "0001_a.down.sql", "notes.sql"], "notes.sql: not NNNN_name.up.sql or .down.sql"),
])
def test_malformed_migration_folders_are_rejected(tmp_path, files, message):
    for name in files:
        (tmp_path / name).write_text("BEGIN;\nCOMMIT;\n")
    with pytest.raises(MigrationError, match=re.escape(message)):
        load_migrations(tmp_path)


def test_dirty_schema_procedure(server, database, tmp_path):
    """docs/data-tier.md "A dirty schema", step by step, on a real server."""
    import shutil

    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    latest = latest_version(MIGRATIONS)
    broken = folder / f"{latest + 1:04d}_broken.up.sql"
    broken.write_text("BEGIN;\nCREATE TABLE half_done (id int);\nSELECT no_such_function();\nCOMMIT;\n")
    (folder / f"{latest + 1:04d}_broken.down.sql").write_text("BEGIN;\nDROP TABLE IF EXISTS half_done;\nCOMMIT;\n")
    run = lambda *args: subprocess.run([str(MIGRATE), "-path", str(folder), "-database", server.url(database), *args],  # noqa: E731
                                       capture_output=True, text=True)
    # GIVEN a migration that fails halfway
    assert run("up").returncode != 0
    # Step 2: the recorded state is the failed version, dirty
    assert version(server, database) == f"{latest + 1}|t"
    # Step 3: nothing of it is left (one transaction)
    assert server.psql("SELECT to_regclass('half_done') IS NULL", database) == "t"
    # Step 4: record the real version and clear the flag
    server.psql(f"UPDATE schema_migrations SET version = {latest}, dirty = false", database)
    # Step 5: the fixed migration applies
    broken.write_text("BEGIN;\nCREATE TABLE IF NOT EXISTS half_done (id int);\nCOMMIT;\n")
    assert run("up").returncode == 0
    assert version(server, database) == f"{latest + 1}|f"


def make_target_sql(target: str) -> list[str]:
    """The SQL a `make dev-db-*` target runs through `kubectl exec ... psql -c` (as make would run it)."""
    import shlex

    printed = subprocess.run(["make", "--no-print-directory", "-n", target], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
    statements = []
    for line in printed.splitlines():
        words = shlex.split(line)
        if "psql" in words and "-c" in words[words.index("psql"):]:
            statements.append(words[words.index("-c", words.index("psql")) + 1])
    return statements


@pytest.mark.parametrize("target", ["dev-db-status", "dev-db-health", "dev-db-integrity"])
def test_the_laptop_database_targets_run_their_sql_against_the_real_schema(server, database, target):
    # GIVEN the schema at the latest version with data in the audit trail
    migrate(server, database, "up")
    seed(server, database)
    statements = make_target_sql(target)
    assert statements, f"make {target} runs no psql -c"
    # WHEN each statement the target sends runs against it THEN it succeeds and says what the docs promise
    outputs = [server.psql(sql, database) for sql in statements]
    if target == "dev-db-status":
        assert outputs == [f"{latest_version(MIGRATIONS)}|f"]
    if target == "dev-db-integrity":
        assert outputs == [""], "an intact audit trail verifies without a row"
    if target == "dev-db-health":
        assert outputs[0].startswith("f|"), "not in recovery on the primary"


# --- the migration hook's script (jobs/migrate_up.sh), with the real CLI and server -------------------

def migrate_up(server, database, target: int | str) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "DATABASE_URL": server.url(database), "SCHEMA_VERSION": str(target),
           "MIGRATIONS_PATH": str(MIGRATIONS), "MIGRATE": str(MIGRATE)}
    return subprocess.run(["sh", str(ROOT / "jobs" / "migrate_up.sh")], env=env, capture_output=True, text=True)


def test_the_hook_migrates_up_to_the_release(server, database):
    latest = latest_version(MIGRATIONS)
    result = migrate_up(server, database, latest - 1)
    assert result.returncode == 0, result.stderr
    assert version(server, database) == f"{latest - 1}|f"
    result = migrate_up(server, database, latest)
    assert result.returncode == 0 and f"{latest - 1} -> {latest}" in result.stdout, result.stderr
    assert version(server, database) == f"{latest}|f"
    assert "nothing to do" in migrate_up(server, database, latest).stdout


def test_the_hook_never_migrates_down_on_a_rollback(server, database):
    """A git-revert rollback lowers SCHEMA_VERSION: the hook keeps the newer schema and its data
    (0005's down would drop the audit log)."""
    latest = latest_version(MIGRATIONS)
    assert migrate_up(server, database, latest).returncode == 0
    seed(server, database)
    tables = server.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database)
    result = migrate_up(server, database, latest - 2)
    assert result.returncode == 0, result.stderr
    assert "never migrated down" in result.stdout
    assert version(server, database) == f"{latest}|f"
    assert server.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database) == tables
    assert server.psql("SELECT count(*) FROM users", database) == "2"


def test_the_hook_refuses_a_dirty_schema_and_a_bad_target(server, database):
    assert migrate_up(server, database, 1).returncode == 0
    server.psql("UPDATE schema_migrations SET dirty = true", database)
    result = migrate_up(server, database, 2)
    assert result.returncode == 1 and "dirty" in result.stderr
    assert version(server, database) == "1|t"
    result = migrate_up(server, database, "five")
    assert result.returncode == 2 and "SCHEMA_VERSION=five" in result.stderr


def test_migrations_expand_and_contract(tmp_path):
    """The previous release runs on the newer schema (a rollback never migrates down): an up migration
    may not drop, rename or retype what exists unless it is a declared contract step."""
    from kubechat_deploy.data.migration_files import check_expand_contract

    check_expand_contract(MIGRATIONS)
    import shutil

    shutil.copytree(MIGRATIONS, tmp_path / "m")
    step = f"{latest_version(MIGRATIONS) + 1:04d}_drop_title"
    (tmp_path / "m" / f"{step}.up.sql").write_text("BEGIN;\nALTER TABLE chat_sessions DROP COLUMN title;\nCOMMIT;\n")
    (tmp_path / "m" / f"{step}.down.sql").write_text("BEGIN;\nALTER TABLE chat_sessions ADD COLUMN title text;\nCOMMIT;\n")
    with pytest.raises(MigrationError, match=rf"{step}.up.sql: '[^']*DROP COLUMN' breaks the previous release"):
        check_expand_contract(tmp_path / "m")
    for statement in ("ALTER TABLE chat_sessions DROP title;", "ALTER TABLE users ALTER email TYPE varchar(80);",
                      "DROP MATERIALIZED VIEW IF EXISTS v;", "DROP SEQUENCE s;",
                      "ALTER TABLE users ADD COLUMN team text NOT NULL;",
                      "ALTER TABLE users ALTER COLUMN display_name DROP DEFAULT;"):
        (tmp_path / "m" / f"{step}.up.sql").write_text(f"BEGIN;\n{statement}\nCOMMIT;\n")
        with pytest.raises(MigrationError, match="breaks the previous release"):
            check_expand_contract(tmp_path / "m")
    for statement in ("ALTER TABLE users ADD COLUMN team text NOT NULL DEFAULT 'none';",
                      "ALTER TABLE users ADD COLUMN nickname text;", "DROP TRIGGER IF EXISTS t ON users;",
                      "ALTER TABLE users DROP CONSTRAINT users_x;"):
        (tmp_path / "m" / f"{step}.up.sql").write_text(f"BEGIN;\n{statement}\nCOMMIT;\n")
        check_expand_contract(tmp_path / "m")
    (tmp_path / "m" / f"{step}.up.sql").write_text("-- contract:\nBEGIN;\nDROP TABLE x;\nCOMMIT;\n")
    with pytest.raises(MigrationError, match="must say which release stopped using"):
        check_expand_contract(tmp_path / "m")
    (tmp_path / "m" / f"{step}.up.sql").write_text(
        "-- contract: 1.4.0 stopped reading chat_sessions.title (expanded in 0005)\nBEGIN;\n"
        "ALTER TABLE chat_sessions DROP COLUMN title;\nCOMMIT;\n")
    check_expand_contract(tmp_path / "m")


@pytest.mark.parametrize("env", ["staging", "production"])
def test_the_migrate_down_job_runs_in_a_pod_the_database_admits_and_goes_down(server, database, env, tmp_path):
    """#27: `scripts/release.py migrate-down` writes the Job an operator applies. Its pod is the migration hook's
    (the rendered NetworkPolicies admit it to the primary, unlike a `kubectl run` pod), its `$(DATABASE_URL)` is
    the kubelet's to expand from the pod's own variables (never the operator's shell), and run as the kubelet
    would run it (golang-migrate's CLI, the image's entrypoint) against a real PostgreSQL it takes the schema
    down to the version asked, keeping the data of what stays."""
    import yaml

    from kubechat_tools.manifests import load_dir
    from kubechat_tools.netpol import Endpoint, allowed, pods_of

    written = tmp_path / "down.yaml"
    command = [sys.executable, str(ROOT / "scripts" / "release.py"), "migrate-down", "--env", env, "--to", "4",
               "--output", str(written)]
    # Below the schema this commit's API needs (its role's privileges), refused unless said so.
    refused = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode == 1 and "below schema version 6 the API's role kubechat_api has no privileges" \
        in refused.stderr and not written.exists(), refused.stderr
    result = subprocess.run([*command, "--below-api-schema"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "nothing was applied" in result.stderr
    job = yaml.safe_load(written.read_text())
    pod = job["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert "command" not in container and container["image"].startswith("docker.io/migrate/migrate:")

    docs = load_dir(ROOT / "dist" / "rendered" / env)
    primary = pods_of(docs)["kubechat-db"]  # the Cluster's instances
    assert primary.labels["cnpg.io/podRole"] == "instance"
    down_pod = Endpoint(name=job["metadata"]["name"], namespace=job["metadata"]["namespace"],
                        labels=pod["metadata"]["labels"])
    assert allowed(docs, down_pod, primary, 5432)
    stray = Endpoint(name="kubectl-run", namespace=job["metadata"]["namespace"], labels={"run": "kubechat-migrate-down"})
    assert not allowed(docs, stray, primary, 5432), "a kubectl run pod is not admitted: the test can fail"

    migrate(server, database, "up")
    seed(server, database)
    # The kubelet's expansion: each $(NAME) from the variables before it; the database address is the test's.
    env_vars: dict[str, str] = {}
    for item in container["env"]:
        if "value" in item:
            env_vars[item["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env_vars.get(m.group(1), m.group(0)),
                                            item["value"])
    env_vars["DATABASE_URL"] = server.url(database)
    args = [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env_vars[m.group(1)], a) for a in container["args"]]
    assert args[:4] == ["-path", "/migrations", "-database", server.url(database)] and args[-2:] == ["goto", "4"]
    run = subprocess.run([str(MIGRATE), "-path", str(MIGRATIONS), *args[2:]], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert version(server, database) == "4|f"
    assert server.psql("SELECT count(*) FROM users", database) == "2"
    assert server.psql("SELECT to_regclass('audit_log') IS NULL", database) == "t"


@pytest.mark.parametrize("to", ["0", str(latest_version(MIGRATIONS))])
def test_migrate_down_refuses_a_version_it_cannot_go_down_to(to):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "release.py"), "migrate-down", "--env", "production",
                             "--to", to, "--below-api-schema"], capture_output=True, text=True)
    assert result.returncode == 1
    assert f"--to {to}: allowed: a schema version from 1 to {latest_version(MIGRATIONS) - 1}" in result.stderr
