"""The tiers' programs built ahead, in the background, while the tests run.

On a machine whose Go caches are empty, building the tiers' programs is about half of `make test`. Each tier
asks for its build when its first test starts and waits for it; the tiers themselves spend much of their
time waiting too (for Argo CD to sync, a canary step, a certificate, a scrape), with the CPU idle. So the
session starts one background process, at the lowest CPU priority (nice 19: a test's own work comes first),
that builds every program the collected tests will ask for, in the order they will ask. A tier that asks
for a build the background process is still running waits for it under the build's lock
(controlplane.build); one it has finished is found cached; a background build that failed leaves nothing
behind, and the tier's own build runs and reports the error.

Run as `python -m testbed.prebuild <group>...` by tests/conftest.py, which stops it when the session ends."""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


def _controlplane() -> Path:
    from testbed import controlplane
    return controlplane.binaries()


def _kyverno() -> Path:
    from testbed import kyverno
    return kyverno.binaries()


def _registry() -> Path:
    from testbed import registry
    return registry.binaries()


def _certificates() -> Path:
    from testbed import cert_manager
    return cert_manager.binaries()


def _traefik() -> Path:
    from testbed import traefik
    return traefik.binaries()


def _helm() -> Path:
    from testbed import helm
    return helm.binaries()


def _delivery() -> Path:
    from testbed import argocd
    return argocd.binaries()


def _metrics() -> Path:
    from testbed import prometheus_operator
    return prometheus_operator.binaries()


def _kyverno_cli() -> Path:
    from testbed import controlplane
    return controlplane.kyverno_cli()


GROUPS: dict[str, Callable[[], Path]] = {
    "controlplane": _controlplane, "kyverno": _kyverno, "registry": _registry, "certificates": _certificates,
    "traefik": _traefik, "delivery": _delivery, "helm": _helm, "metrics": _metrics, "kyverno-cli": _kyverno_cli,
}
"""Build group -> the function its tests call (the same one, so the same pins, cache folder and lock)."""

NEEDS: dict[str, tuple[str, ...]] = {
    "admission": ("controlplane", "kyverno", "registry", "certificates", "traefik"),
    "delivery": ("controlplane", "delivery", "traefik", "helm"),
    "integration": ("controlplane",),
    "metrics": ("controlplane", "metrics"),
}
"""Tier marker -> the build groups its tests ask for, in the order they ask."""


def groups_for(items) -> list[str]:
    """The build groups the collected test items will ask for, in the order of the first item asking."""
    order: list[str] = []
    for item in items:
        wanted = [group for marker, groups in NEEDS.items() if item.get_closest_marker(marker) for group in groups]
        if Path(str(item.fspath)).name == "test_kyverno.py":
            wanted.append("kyverno-cli")
        order += [group for group in wanted if group not in order]
    return order


def main(groups: list[str]) -> int:
    unknown = [group for group in groups if group not in GROUPS]
    if unknown:
        print(f"prebuild: unknown build group(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}", file=sys.stderr)
        return 2
    failed = []
    for group in groups:
        try:
            GROUPS[group]()
        except Exception as error:  # the tier's own build will run again and report it
            print(f"prebuild: {group} failed: {error}", file=sys.stderr, flush=True)
            failed.append(group)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
