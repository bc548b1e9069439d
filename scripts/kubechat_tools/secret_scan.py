"""Plaintext secret scan of the repository (every file git tracks) and the rendered output.

Looks for what leaks in practice: private keys, cloud and SaaS tokens, credentials in URLs, and values
assigned to password/secret/token-like keys. dev's generated secrets are allowed only when every value
says `dev-only`; Kubernetes Secret objects are allowed only in dev's render. A finding names the file,
the line and the rule, never the value."""
from __future__ import annotations

import base64
import math
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from .paths import DIST, ROOT

RULES: dict[str, re.Pattern] = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{60,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "credentials in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?!\$|\{|<|\*)[^/\s:@'\"]{6,}@"),
}
ASSIGNMENT = re.compile(r"(?i)\b([A-Za-z_.-]*(?:password|passwd|secret|token|api[_-]?key|private[_-]?key|signing[_-]?key|access[_-]?key)"
                        r"[A-Za-z_.-]*)\s*[=:]\s*[\"']?([A-Za-z0-9+/=_\-.~!@#$%^&*]{16,})[\"']?\s*$")
BINARY_SUFFIXES = {".png", ".jpg", ".gz", ".tgz", ".zip", ".ico", ".woff", ".woff2"}
DEV_SECRET_FILES = ("overlays/dev/dev-secrets.env", "overlays/dev/dev-redis.env", "overlays/dev/dev-tools.env",
                    "overlays/dev/dev-db-api.env", "overlays/dev/dev-db-backup.env")
NOT_SECRET_KEYS = ("email", "username")
"""Keys of dev's Secrets that name someone (a login e-mail, a database role), not a credential."""


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}"


def entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def looks_like_a_value(value: str) -> bool:
    """A literal that could be a credential: long, mixed, random-looking, and not a reference or a name."""
    if re.fullmatch(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*", value):  # kebab/snake/dotted names: secret names, keys
        return False
    if re.fullmatch(r"[A-Z0-9_]+", value) or value.startswith(("$(", "${")):  # variable names, references
        return False
    return entropy(value) >= 3.5


def scan_text(path: str, text: str) -> list[Finding]:
    findings = []
    dev_secret_file = path in DEV_SECRET_FILES
    for number, line in enumerate(text.splitlines(), 1):
        for rule, pattern in RULES.items():
            if pattern.search(line):
                findings.append(Finding(path, number, rule))
        match = ASSIGNMENT.search(line)
        if match and looks_like_a_value(match.group(2)):
            if dev_secret_file and "dev-only" in match.group(2):
                continue
            findings.append(Finding(path, number, f"a literal value for {match.group(1)}"))
    if dev_secret_file:
        for number, line in enumerate(text.splitlines(), 1):
            key, _, value = line.partition("=")
            if (value and not line.lstrip().startswith("#") and "dev-only" not in value and "@" not in value
                    and key.strip() not in NOT_SECRET_KEYS):
                findings.append(Finding(path, number, f"dev secret {key.strip()} without the dev-only marker"))
    return findings


def is_fake_dev_secret(path: str, text: str) -> bool:
    """dev's rendered Secrets (from the .env files above): every value but a name says dev-only."""
    if not path.startswith("dist/rendered/dev/"):
        return False
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or doc.get("kind") != "Secret":
        return False
    values = {k: base64.b64decode(v).decode(errors="replace") for k, v in (doc.get("data") or {}).items()}
    values.update(doc.get("stringData") or {})
    return all("dev-only" in value or key in NOT_SECRET_KEYS for key, value in values.items())


def tracked_files(root: Path = ROOT) -> list[str]:
    result = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True)
    return [name for name in result.stdout.split("\0") if name]


def scan_repository(root: Path = ROOT) -> list[Finding]:
    findings = []
    for name in tracked_files(root):
        path = root / name
        if path.suffix in BINARY_SUFFIXES or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if not is_fake_dev_secret(name, text):
            findings += scan_text(name, text)
    return findings


def scan_render(dist: Path = DIST, environments: tuple[str, ...] = ("staging", "production")) -> list[Finding]:
    """The rendered staging and production output and the platform pieces: no Secret object at all."""
    findings = []
    folders = [dist / "rendered" / env for env in environments] + sorted((dist / "platform").glob("*"))
    for folder in folders:
        for path in sorted(folder.glob("*.yaml")):
            text = path.read_text()
            name = str(path.relative_to(dist.parent)) if path.is_relative_to(dist.parent) else str(path)
            findings += scan_text(name, text)
            for doc in yaml.safe_load_all(text):
                if isinstance(doc, dict) and doc.get("kind") == "Secret":
                    findings.append(Finding(name, 1, "a Kubernetes Secret (staging and production take secrets "
                                                     "from External Secrets)"))
    return findings
