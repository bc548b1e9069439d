"""The migrations folder (golang-migrate's NNNN_name.up.sql / .down.sql): load and check it. The migration
construct ships the files; the release command and the tests read them through the same functions."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FILE = re.compile(r"^(\d{4,})_([a-z0-9_]+)\.(up|down)\.sql$")
API_ROLE = "kubechat_api"
"""The API's database role, which the Cluster manages (data/database.py) and the migrations grant."""
API_ROLE_SCHEMA = 6
"""The schema version (0006_least_privilege) from which API_ROLE has what the API needs: below it, an API that
connects as API_ROLE cannot work."""


class MigrationError(ValueError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: Path
    down: Path


def load_migrations(folder: Path) -> list[Migration]:
    """Every migration in order; raises MigrationError for a missing pair, a gap, a duplicate or a stray file."""
    found: dict[int, dict] = {}
    for path in sorted(folder.iterdir()):
        if path.is_dir() or path.name.startswith("."):
            continue
        match = FILE.match(path.name)
        if not match:
            raise MigrationError(f"migrations/{path.name}: not NNNN_name.up.sql or .down.sql")
        number, name, direction = int(match.group(1)), match.group(2), match.group(3)
        entry = found.setdefault(number, {"names": set()})
        entry["names"].add(name)
        if len(entry["names"]) > 1:
            raise MigrationError(f"migrations: version {number} is used twice ({', '.join(sorted(entry['names']))})")
        entry[direction] = path
    migrations = []
    for expected, number in enumerate(sorted(found), start=1):
        if number != expected:
            raise MigrationError(f"migrations: gap: version {expected} is missing before {number}")
        entry = found[number]
        name = f"{number:04d}_{next(iter(entry['names']))}"
        for direction in ("up", "down"):
            if direction not in entry:
                raise MigrationError(f"migrations: {name} has no .{direction}.sql")
        migrations.append(Migration(version=number, name=name, up=entry["up"], down=entry["down"]))
    return migrations


CONTRACTING = re.compile(
    r"\b(DROP\s+(TABLE|COLUMN|VIEW|MATERIALIZED\s+VIEW|FUNCTION|TYPE|SCHEMA|SEQUENCE)\b|RENAME\s+(TO|COLUMN)\b|"
    r"ALTER\s+TABLE\s+(IF\s+EXISTS\s+)?(ONLY\s+)?\S+\s+DROP\s+(?!CONSTRAINT\b|DEFAULT\b|TRIGGER\b)\w+|"
    r"ALTER\s+(COLUMN\s+)?\S+\s+(SET\s+DATA\s+)?TYPE\b|ALTER\s+COLUMN\s+\S+\s+SET\s+NOT\s+NULL\b|"
    r"ALTER\s+COLUMN\s+\S+\s+DROP\s+DEFAULT\b)", re.I)
ADDED_COLUMN = re.compile(r"\bADD\s+(COLUMN\s+)?(IF\s+NOT\s+EXISTS\s+)?([^,;]*)", re.I)
CONTRACT_MARK = "-- contract:"
"""First line of an up migration that removes or changes what the previous release uses, followed by
why that is safe now (which release stopped using it). docs/data-tier.md, "Expand and contract"."""


def expand_contract_violations(migration: Migration) -> list[str]:
    """Statements of an up migration that would break the previous release running on the new schema
    (a rollback keeps the newer schema: the migration hook never migrates down). Allowed only in a
    migration marked as a contract step."""
    sql = migration.up.read_text()
    first = sql.lstrip().splitlines()[0] if sql.strip() else ""
    if first.lower().startswith(CONTRACT_MARK):
        if len(first[len(CONTRACT_MARK):].strip()) >= 10:
            return []
        return [f"{migration.up.name}: '{CONTRACT_MARK}' must say which release stopped using what it removes"]
    code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    found = [" ".join(m.group(0).split()) for m in CONTRACTING.finditer(code)]
    for m in ADDED_COLUMN.finditer(code):
        clause = m.group(3).upper()
        if re.search(r"\bNOT\s+NULL\b", clause) and "DEFAULT" not in clause and not clause.lstrip().startswith(
                ("CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK")):
            found.append(" ".join(m.group(0).split()) + " (NOT NULL without DEFAULT: the previous release's inserts fail)")
    return [f"{migration.up.name}: {what!r} breaks the previous release "
            f"(expand/contract: do it in a later release, in a migration whose first line is "
            f"'{CONTRACT_MARK} <which release stopped using it>')" for what in found]


def check_expand_contract(folder: Path) -> None:
    problems = [p for m in load_migrations(folder) for p in expand_contract_violations(m)]
    if problems:
        raise MigrationError("migrations:\n" + "\n".join(problems))


def latest_version(folder: Path) -> int:
    migrations = load_migrations(folder)
    return migrations[-1].version if migrations else 0


def check_target(folder: Path, target: int, where: str) -> None:
    versions = {m.version for m in load_migrations(folder)}
    if target != 0 and target not in versions:
        raise MigrationError(f"{where}: schema version {target} has no migration; allowed: 0 or "
                             f"{min(versions)}..{max(versions)}")
