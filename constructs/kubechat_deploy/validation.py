"""Input checks shared by every construct's props: each raises SettingsError naming the field, the
value and what is allowed, so a bad setting stops the render before anything is written."""
from __future__ import annotations

import re

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Kubernetes resource.Quantity: a signed decimal number with an optional binary or decimal suffix.
QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$|^[A-Za-z]{3}(-[A-Za-z]{3})?$")
CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]  # minute hour day-of-month month day-of-week
CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
IMAGE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._/-][a-z0-9]+)*)*$")


class SettingsError(ValueError):
    """A construct was given a value it cannot render."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        super().__init__(f"{field}: invalid value {value!r}; allowed: {allowed}")
        self.field = field
        self.value = value


def dns_label(field: str, value: str) -> str:
    if not isinstance(value, str) or not DNS_LABEL.match(value):
        raise SettingsError(field, value, "a DNS-1123 label: at most 63 lowercase letters, digits and '-', "
                                          "starting and ending with a letter or digit")
    return value


def dns_subdomain(field: str, value: str) -> str:
    if not isinstance(value, str) or not DNS_SUBDOMAIN.match(value):
        raise SettingsError(field, value, "a DNS-1123 subdomain: lowercase labels separated by '.', "
                                          "at most 253 characters")
    return value


def port(field: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise SettingsError(field, value, "an integer port from 1 to 65535")
    return value


def at_least(field: str, value: int, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SettingsError(field, value, f"an integer >= {minimum}")
    return value


def quantity(field: str, value: str) -> str:
    if not isinstance(value, str) or not QUANTITY.match(value):
        raise SettingsError(field, value, "a Kubernetes quantity such as '250m', '0.5', '512Mi' or '2Gi'")
    return value


_SUFFIXES = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
             "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "m": 10**-3}


def bytes_of(value: str) -> float:
    """A memory or storage quantity ('512Mi', '1G', '0.5Gi') as a number, to compare two of them."""
    number = value.rstrip("kMGTPEimn")
    suffix = value[len(number):]
    if suffix not in _SUFFIXES:
        raise ValueError(f"not a quantity this compares: {value!r}")
    return float(number) * _SUFFIXES[suffix]


def cron(field: str, value: str, *, seconds: bool = False) -> str:
    """A Kubernetes CronJob schedule (5 fields), or CloudNativePG's 6-field form (seconds first)."""
    expected = 6 if seconds else 5
    allowed = (f"a cron expression of {expected} space-separated fields"
               + (" (seconds first, as CloudNativePG expects)" if seconds else "")
               + ("" if seconds else " or one of " + ", ".join(sorted(CRON_MACROS))))
    if not isinstance(value, str):
        raise SettingsError(field, value, allowed)
    if not seconds and value in CRON_MACROS:
        return value
    fields = value.split()
    if len(fields) != expected or not all(CRON_FIELD.match(f) for f in fields):
        raise SettingsError(field, value, allowed)
    ranges = ([(0, 59)] if seconds else []) + CRON_RANGES
    for text, (low, high) in zip(fields, ranges):
        for number in re.findall(r"(?<![/\d])\d+", text):  # values and range ends, not step sizes
            if not low <= int(number) <= high:
                raise SettingsError(field, value, f"{allowed}; {number} is outside {low}-{high}")
    return value


def image(field: str, value: str) -> str:
    """An image name without tag or digest: overlays set those with Kustomize `images:`."""
    if not isinstance(value, str) or not IMAGE.match(value):
        raise SettingsError(field, value, "an image name such as 'ghcr.io/kubechat/kubechat-api', "
                                          "without tag or digest (overlays pin those)")
    return value


def http_path(field: str, value: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or " " in value:
        raise SettingsError(field, value, "an absolute HTTP path starting with '/' and without spaces")
    return value
