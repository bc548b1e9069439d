"""The settings contract: every key an overlay may put in the API's ConfigMap (`kubechat-api-config`, from
`api-settings.env`) and in the backup jobs' (`kubechat-backup-settings`), with its type, allowed values and
whether it is required. `make render` refuses a value outside it (kubechat_tools/overlay_values.py), and the
settings tables of docs/configuration.md and docs/app-contract.md are generated from it."""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class SettingType(Enum):
    ENUM = "one of the listed values"
    BOOLEAN = "true or false"
    POSITIVE_INTEGER = "a whole number of at least 1"
    URL = "an http:// or https:// URL"
    URL_LIST = "comma-separated http:// or https:// origins"
    BACKUP_URL = "s3://bucket/prefix or file:///path"


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One key of a settings ConfigMap."""

    name: str
    """The environment variable's name."""
    type: SettingType
    """What a value must be."""
    description: str
    """What the program does with it (one line, for the docs)."""
    allowed: tuple[str, ...] = ()
    """For SettingType.ENUM: the allowed values. Default: none."""
    required: bool = True
    """Whether every overlay must set it. Default: True."""
    empty_allowed: bool = False
    """Whether an empty value is allowed (it means: not set). Default: False."""

    def __post_init__(self) -> None:
        if (self.type is SettingType.ENUM) != bool(self.allowed):
            raise ValueError(f"Setting {self.name}: allowed values are given exactly for SettingType.ENUM")

    def problem(self, value: str) -> str | None:
        """Why `value` is not allowed, or None."""
        if value == "":
            return None if self.empty_allowed else f"an empty value is not allowed: expected {self.what()}"
        if self.type is SettingType.ENUM and value not in self.allowed:
            return f"allowed: {', '.join(self.allowed)}"
        if self.type is SettingType.BOOLEAN and value not in ("true", "false"):
            return "allowed: true, false"
        if self.type is SettingType.POSITIVE_INTEGER and not re.fullmatch(r"[1-9][0-9]*", value):
            return f"allowed: {self.type.value}"
        if self.type is SettingType.URL and not _URL.fullmatch(value):
            return f"allowed: {self.type.value}"
        if self.type is SettingType.URL_LIST and not all(_URL.fullmatch(part.strip()) for part in value.split(",")):
            return f"allowed: {self.type.value}"
        if self.type is SettingType.BACKUP_URL and not re.fullmatch(r"s3://[a-z0-9.-]+(/\S*)?|file:///\S*", value):
            return f"allowed: {self.type.value}"
        return None

    def what(self) -> str:
        return f"one of {', '.join(self.allowed)}" if self.type is SettingType.ENUM else self.type.value


_URL = re.compile(r"https?://[^\s,/]+(/\S*)?")

API_SETTINGS = (
    Setting(name="KUBECHAT_ENVIRONMENT", type=SettingType.ENUM, allowed=("dev", "staging", "production"),
            description="the environment's name, in the API's logs and metrics"),
    Setting(name="LOG_LEVEL", type=SettingType.ENUM, allowed=("debug", "info", "warn", "error"),
            description="the API's log level"),
    Setting(name="CORS_ALLOWED_ORIGINS", type=SettingType.URL_LIST,
            description="the browser origins allowed to call the API (the web front end's URL)"),
    Setting(name="FEATURE_WRITE_ACTIONS", type=SettingType.BOOLEAN,
            description="whether chat may change the cluster (create, scale, delete), not only read it"),
    Setting(name="FEATURE_STREAMING", type=SettingType.BOOLEAN,
            description="whether chat answers stream (server-sent events)"),
    Setting(name="PUBLIC_URL", type=SettingType.URL, empty_allowed=True,
            description="the web front end's public URL (empty: not exposed)"),
    Setting(name="PUBLIC_API_URL", type=SettingType.URL, empty_allowed=True,
            description="the API's public URL (empty: not exposed)"),
)
"""The API's ConfigMap, kubechat-api-config (docs/app-contract.md)."""

BACKUP_SETTINGS = (
    Setting(name="BACKUP_TARGET", type=SettingType.BACKUP_URL,
            description="where the nightly logical backups (pg_dump) go and the restore drill reads them"),
    Setting(name="S3_ENDPOINT_URL", type=SettingType.URL, required=False,
            description="the S3 endpoint (unset: the AWS default)"),
    Setting(name="RETENTION_DAYS", type=SettingType.POSITIVE_INTEGER,
            description="logical backups older than this many days are deleted"),
    Setting(name="RETENTION_KEEP_NEWEST", type=SettingType.POSITIVE_INTEGER,
            description="this many newest logical backups are always kept, whatever their age"),
)
"""The backup jobs' ConfigMap, kubechat-backup-settings (jobs/logical_backup.py, jobs/restore_drill.py)."""

CONTRACTS: dict[str, tuple[Setting, ...]] = {
    "kubechat-api-config": API_SETTINGS,
    "kubechat-backup-settings": BACKUP_SETTINGS,
}
"""Generated ConfigMap name (before Kustomize's hash suffix) -> the settings it may carry."""
