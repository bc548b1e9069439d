"""How the backup jobs grow with the database they work on: their scratch volumes and deadlines, from the
Cluster's storage size. The constructs size the jobs with it; the render checks an overlay's values with it
(kubechat_tools.release.check_scratch). Plain Python: the render tooling imports it without the typed
libraries."""
from __future__ import annotations

from kubechat_deploy import validation as v

DRILL_SCRATCH_FACTOR = 2
"""The drill holds the dump and the database restored from it at once."""


def gib(size: str) -> int:
    """A storage quantity in whole GiB, rounded up."""
    return -(-int(v.bytes_of(size)) // 2**30)


def backup_deadline_seconds(database_size: str) -> int:
    """The logical backup's activeDeadlineSeconds: half an hour, plus a minute per GiB of the database (a dump
    and its upload at no less than about 17 MiB/s)."""
    return 1800 + 60 * gib(database_size)


def drill_deadline_seconds(database_size: str) -> int:
    """The restore drill's activeDeadlineSeconds: an hour, plus two minutes per GiB of the database (download,
    pg_restore with its index builds, the checks, at no less than about 8 MiB/s). A fixed 7200 s failed every
    drill of a database past some 25 to 120 GB."""
    return 3600 + 120 * gib(database_size)


def scaled(size: str, factor: int) -> str:
    """`size` times `factor`, written in Gi or Mi."""
    total = v.bytes_of(size) * factor
    return f"{int(total // 2**30)}Gi" if total % 2**30 == 0 else f"{-(-int(total) // 2**20)}Mi"
