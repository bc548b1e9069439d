"""Where logical backups live: an S3-compatible bucket (s3://bucket/prefix, staging and production)
or a mounted volume (file:///path, dev). Shared by logical_backup.py and restore_drill.py, which the
CronJobs run from a ConfigMap; stdlib plus boto3 (present in the job image)."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

DUMP_NAME = re.compile(r"^kubechat-(\d{8}T\d{6}Z)\.dump$")


class BackupError(RuntimeError):
    """A step failed; the message says which and what to check."""


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """The file's sha256, read a chunk at a time: a dump can be far larger than the job's memory limit."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def dump_name(at: datetime) -> str:
    return f"kubechat-{at.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}.dump"


def dump_time(name: str) -> datetime | None:
    match = DUMP_NAME.match(name)
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc) if match else None


def expired(names: list[str], now: datetime, max_age_days: int, keep_newest: int) -> list[str]:
    """Dumps to delete: older than max_age_days, but never one of the newest keep_newest.
    Decided from the timestamps in the names and the given `now`, so it is the same on every clock."""
    if max_age_days < 1 or keep_newest < 1:
        raise BackupError(f"retention: max_age_days={max_age_days}, keep_newest={keep_newest}; both must be >= 1")
    dated = sorted(((dump_time(n), n) for n in names if dump_time(n)), reverse=True)
    protected = {n for _, n in dated[:keep_newest]}
    cutoff = now - timedelta(days=max_age_days)
    return sorted(n for t, n in dated if t < cutoff and n not in protected)


@dataclass
class Store:
    url: str

    def __post_init__(self) -> None:
        parsed = urlparse(self.url)
        if parsed.scheme not in ("s3", "file"):
            raise BackupError(f"BACKUP_TARGET={self.url!r}: allowed: s3://bucket/prefix or file:///path")
        self.scheme, self.bucket, self.prefix = parsed.scheme, parsed.netloc, parsed.path.strip("/")
        if self.scheme == "file":
            self.root = Path(parsed.path)
        else:
            import boto3  # only where the target is S3

            self.s3 = boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def list(self) -> list[str]:
        try:
            if self.scheme == "file":
                return sorted(p.name for p in self.root.iterdir() if p.is_file()) if self.root.is_dir() else []
            names, token = [], None
            while True:
                kwargs = {"Bucket": self.bucket, "Prefix": self._key("")}
                if token:
                    kwargs["ContinuationToken"] = token
                page = self.s3.list_objects_v2(**kwargs)
                names += [o["Key"].rsplit("/", 1)[-1] for o in page.get("Contents", [])]
                if not page.get("IsTruncated"):
                    return sorted(names)
                token = page["NextContinuationToken"]
        except Exception as error:  # noqa: BLE001 - reported with the target named
            raise BackupError(f"cannot list {self.url}: {error}") from error

    def put(self, local: Path, name: str) -> None:
        try:
            if self.scheme == "file":
                self.root.mkdir(parents=True, exist_ok=True)
                partial = self.root / f".{name}.partial"
                shutil.copyfile(local, partial)
                os.replace(partial, self.root / name)
            else:
                self.s3.upload_file(str(local), self.bucket, self._key(name))
        except Exception as error:  # noqa: BLE001
            if self.scheme == "file":
                (self.root / f".{name}.partial").unlink(missing_ok=True)
            raise BackupError(f"cannot write {name} to {self.url}: {error}") from error

    def get(self, name: str, local: Path) -> None:
        try:
            if self.scheme == "file":
                shutil.copyfile(self.root / name, local)
            else:
                self.s3.download_file(self.bucket, self._key(name), str(local))
        except Exception as error:  # noqa: BLE001
            raise BackupError(f"cannot read {name} from {self.url}: {error}") from error

    def delete(self, name: str) -> None:
        try:
            if self.scheme == "file":
                (self.root / name).unlink()
            else:
                self.s3.delete_object(Bucket=self.bucket, Key=self._key(name))
        except Exception as error:  # noqa: BLE001
            raise BackupError(f"cannot delete {name} from {self.url}: {error}") from error
