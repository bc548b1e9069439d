"""`make dev-open`: reach dev's web front end, API and tools from the laptop, on 127.0.0.1 only.

dev's Services are ClusterIP: a NodePort would listen on every address of the laptop's node, and dev runs
with a committed JWT signing key. This runs one `kubectl port-forward --address 127.0.0.1` per Service of
overlays/dev annotated `kubechat.io/local-port` (that port on the laptop -> the Service's http port), prints
the addresses and keeps them open until Ctrl-C (or until one forward ends, which it reports)."""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

from kubechat_tools.dev_deploy import NAMESPACE, DeployError, render
from kubechat_tools.paths import ROOT

LOCAL_PORT = "kubechat.io/local-port"


def forwards(docs: list[dict]) -> list[tuple[str, int, int]]:
    """(Service, local port, Service port) for every annotated Service, in name order."""
    found = []
    for doc in docs:
        local = (doc["metadata"].get("annotations") or {}).get(LOCAL_PORT)
        if doc["kind"] != "Service" or local is None:
            continue
        http = [p["port"] for p in doc["spec"]["ports"] if p.get("name") == "http"]
        if not http or not local.isdigit():
            raise DeployError(f"Service {doc['metadata']['name']}: {LOCAL_PORT}={local!r} needs a port number and an "
                              "http port")
        if doc["spec"].get("type", "ClusterIP") != "ClusterIP":
            raise DeployError(f"Service {doc['metadata']['name']} is {doc['spec']['type']}: dev exposes nothing "
                              "beyond 127.0.0.1 (make it ClusterIP)")
        found.append((doc["metadata"]["name"], int(local), http[0]))
    return sorted(found)


def commands(docs: list[dict]) -> list[list[str]]:
    return [["kubectl", "port-forward", "--address", "127.0.0.1", "-n", NAMESPACE, f"svc/{name}", f"{local}:{port}"]
            for name, local, port in forwards(docs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make dev-open", description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the port-forwards, run nothing")
    args = parser.parse_args(argv)
    try:
        planned = commands(render(ROOT / "overlays" / "dev"))
    except DeployError as error:
        print(f"dev-open: {error}", file=sys.stderr)
        return 1
    for command in planned:
        print("+ " + " ".join(command), flush=True)
        print(f"dev-open: http://localhost:{command[-1].split(':')[0]} -> {command[-2]}", flush=True)
    if args.dry_run:
        print("dev-open: dry run: nothing started", flush=True)
        return 0
    running = [subprocess.Popen(command) for command in planned]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(p.poll() is None for p in running):
            time.sleep(0.5)
        ended = [c for c, p in zip(planned, running) if p.poll() is not None]
        print("dev-open: a forward ended (is dev deployed? `make dev-status`): " +
              "; ".join(" ".join(c) for c in ended), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in running:
            if process.poll() is None:
                process.terminate()
        for process in running:
            process.wait(timeout=10)

