"""A real PostgreSQL server for tests: initdb into a temporary folder, listen on a free loopback
port, stop and remove everything afterwards. Uses Debian's server binaries (make test installs the
`postgresql` package when they are missing); the server runs as the `postgres` user when the tests
run as root, because initdb refuses root."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def server_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
                           "run `make test` (it installs Debian's postgresql package) or apt-get install postgresql")
    return Path(candidates[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        self.bin = server_bin()
        self.root = Path(tempfile.mkdtemp(prefix="kubechat-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.process: subprocess.Popen | None = None

    def _run_as_owner(self, command: list[str], **kwargs) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        return subprocess.run(prefix + command, check=True, capture_output=True, text=True, **kwargs)

    def start(self, extra_conf: str = "", hba_first: str = "") -> "PostgresServer":
        """hba_first: pg_hba.conf lines checked before initdb's (which trust every local connection)."""
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
            for path in self.root.rglob("*"):  # files a test put there first (certificates)
                shutil.chown(path, "postgres", "postgres")
        self._run_as_owner([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                            "--encoding=UTF8", "--locale=C"])
        if hba_first:
            hba = self.data / "pg_hba.conf"
            hba.write_text(hba_first.rstrip("\n") + "\n" + hba.read_text())
        conf = (f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.root}'\n"
                f"fsync = off\n{extra_conf}\n")
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(conf)
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        self.process = subprocess.Popen(prefix + [str(self.bin / "postgres"), "-D", str(self.data)],
                                        stdout=subprocess.DEVNULL, stderr=open(self.root / "server.log", "w"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                              capture_output=True).returncode == 0:
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"PostgreSQL did not start: {(self.root / 'server.log').read_text()[-2000:]}")

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{database}?sslmode=disable"

    def psql(self, sql: str, database: str = "postgres", user: str = "postgres", check: bool = True) -> str:
        result = subprocess.run([str(self.bin / "psql") if (self.bin / "psql").exists() else "psql",
                                 "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                                 "-U", user, "-d", database, "-c", sql], capture_output=True, text=True)
        if check and result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip() if result.returncode == 0 else result.stderr.strip()

    def fresh_database(self, test_name: str, prefix: str = "t", owner: str = "postgres") -> str:
        """An empty database for one test, named after it (dropped first if an earlier run left it)."""
        import re

        name = f"{prefix}_" + re.sub(r"[^a-z0-9]", "_", test_name.lower())[:40]
        self.psql(f"DROP DATABASE IF EXISTS {name}")
        self.psql(f"CREATE DATABASE {name} OWNER {owner}")
        return name

    def rechain_audit_log(self, database: str, before: str = "") -> None:
        """As the superuser only a test is: with the audit triggers off, run `before` (a test's own edit of the
        rows), then recompute every row's hashes so the chain starts intact again."""
        self.psql(f"""
            ALTER TABLE audit_log DISABLE TRIGGER USER;
            {before}
            DO $$ DECLARE r audit_log; prev bytea := '\\x'; BEGIN
              FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
                UPDATE audit_log SET prev_hash = prev, row_hash = audit_row_digest(prev, r) WHERE id = r.id;
                SELECT row_hash INTO prev FROM audit_log WHERE id = r.id;
              END LOOP; END $$;
            ALTER TABLE audit_log ENABLE TRIGGER USER;""", database)

    def create_managed_roles(self, password: str = "test") -> list[str]:
        """Create the roles the rendered Cluster declares under spec.managed.roles, as CloudNativePG's instance
        manager does (its name, LOGIN, INHERIT and inRoles as declared, a password), and return their names."""
        import yaml

        from conftest import ROOT

        cluster = yaml.safe_load((ROOT / "dist" / "base" / "cluster-kubechat-db.yaml").read_text())
        names = []
        for role in cluster["spec"].get("managed", {}).get("roles", []):
            options = ("LOGIN" if role.get("login") else "NOLOGIN",
                       "INHERIT" if role.get("inherit", True) else "NOINHERIT")
            self.psql(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role['name']}') THEN "
                      f"CREATE ROLE {role['name']} {' '.join(options)} PASSWORD '{password}'; END IF; END $$")
            for member_of in role.get("inRoles", []):
                self.psql(f"GRANT {member_of} TO {role['name']}")
            names.append(role["name"])
        return names

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)
