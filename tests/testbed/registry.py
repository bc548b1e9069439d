"""Signed images end to end for the admission tier (tests/admission): a real OCI registry (CNCF distribution,
tools/registry) on loopback serving as ghcr.io, images pushed with go-containerregistry's crane, signed and
given vulnerability attestations with cosign using key pairs the test creates, verified by Kyverno's
admission controller (testbed.kyverno) against the rendered verify-images ClusterPolicy.

How ghcr.io stays on loopback: the registry serves TLS with a certificate for ghcr.io from a CA of this test.
Every client that talks to it (Kyverno, crane, cosign) gets HTTPS_PROXY pointing at `ConnectProxy`, which
tunnels CONNECT ghcr.io:443 to the registry's loopback port and refuses every other host, and SSL_CERT_FILE
with the test CA. The rendered image references (ghcr.io/kubechat/...) are thus what Kyverno resolves.
"""
from __future__ import annotations

import json
import os
import select
import socket
import socketserver
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from testbed.controlplane import ProcessGroup, build, free_port, serving_certificate
from testbed.argocd import go_module_version
from testbed.loopback import LoopbackServer
from kubechat_tools.paths import CACHE

MODULES = {"registry": [("github.com/distribution/distribution/v3/cmd/registry", "registry")]}
REGISTRY_HOST = "ghcr.io"
BUILD_TIMES: dict[str, float] = {}
LEGACY_OFFLINE = ("--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false")
"""cosign v3 flags for a key pair without the transparency log, in the signature format the rendered
policy's verifier type (`Cosign`, Kyverno's default) reads: the `sha256-<digest>.sig`/`.att` tags. Bundles
are read only by `type: SigstoreBundle` (Kyverno v1.19.0 pkg/image/verifiers/cpol/cosign). cosign v3.1.2
allows the classic format only without its signing config (cmd/cosign/cli/signcommon/common.go), which in
turn is what allows --tlog-upload=false."""


def binaries() -> Path:
    """The registry, built (or cached) into .cache/registry/<hash>/."""
    return build(CACHE / "registry", MODULES, None, BUILD_TIMES)


def registry_version() -> str:
    return go_module_version("registry", "github.com/distribution/distribution/v3")


class ConnectProxy(LoopbackServer):
    """An HTTPS proxy on loopback that tunnels CONNECT <host>:443 to a loopback port for the hosts it is
    given and refuses every other request (recorded in `refused`), plain HTTP included: nothing it is asked
    for leaves the machine. With no routes it refuses everything."""

    def __init__(self, routes: dict[str, int]) -> None:
        self.routes = routes
        self.refused: list[str] = []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = self.rfile.readline().decode("latin-1").split()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                host, _, port = (request[1] if len(request) > 1 else "").rpartition(":")
                if len(request) < 2 or request[0] != "CONNECT" or port != "443" or host not in proxy.routes:
                    proxy.refused.append(" ".join(request[:2]))
                    self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    return
                upstream = socket.create_connection(("127.0.0.1", proxy.routes[host]))
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                client = self.connection
                try:
                    while True:
                        readable, _, _ = select.select([client, upstream], [], [], 60)
                        if not readable:
                            return
                        for source in readable:
                            data = source.recv(65536)
                            if not data:
                                return
                            (upstream if source is client else client).sendall(data)
                finally:
                    upstream.close()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._serve_in_background(Server(("127.0.0.1", 0), Handler))


@dataclass
class Registry(ProcessGroup):
    """distribution's registry on 127.0.0.1, serving TLS as ghcr.io; `client_env` is what a client needs."""

    binary: Path
    workdir: Path
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    port: int = 0
    proxy: ConnectProxy | None = None

    @property
    def ca_file(self) -> Path:
        return self.workdir / "ca.crt"

    def client_env(self) -> dict[str, str]:
        assert self.proxy is not None
        return {"HTTPS_PROXY": self.proxy.url, "https_proxy": self.proxy.url, "HTTP_PROXY": self.proxy.url,
                "http_proxy": self.proxy.url, "NO_PROXY": "", "no_proxy": "", "SSL_CERT_FILE": str(self.ca_file)}

    def start(self, timeout: float = 30) -> "Registry":
        w = self.workdir
        w.mkdir(parents=True, exist_ok=True)
        serving_certificate(w, ca_subject="/CN=kubechat-registry-test-ca", subject=f"/CN={REGISTRY_HOST}",
                            san=f"DNS:{REGISTRY_HOST}")
        self.port = free_port()
        (w / "config.yml").write_text(json.dumps({
            "version": 0.1, "log": {"level": "info"},
            "storage": {"filesystem": {"rootdirectory": str(w / "data")}},
            "http": {"addr": f"127.0.0.1:{self.port}", "tls": {"certificate": str(w / "tls.crt"), "key": str(w / "tls.key")},
                     "debug": {"addr": ""}}}))
        self.spawn("registry", [str(self.binary), "serve", str(w / "config.yml")],
                   {"PATH": os.environ.get("PATH", ""), "OTEL_TRACES_EXPORTER": "none"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"the registry did not listen in {timeout:.0f} s:\n{self.log_tail('registry')}")
        self.proxy = ConnectProxy({REGISTRY_HOST: self.port})
        return self

    def stop(self) -> None:
        if self.proxy:
            self.proxy.stop()
            self.proxy = None
        super().stop()


@dataclass
class Signer:
    """crane and cosign as the release pipeline would run them, against the loopback registry."""

    folder: Path
    workdir: Path
    registry: Registry

    def _run(self, tool: str, *args: str, extra_env: dict[str, str] | None = None) -> str:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.workdir), "TUF_ROOT": str(self.workdir / "tuf"),
               "COSIGN_PASSWORD": "", **self.registry.client_env(), **(extra_env or {})}
        result = subprocess.run([str(self.folder / tool), *args], capture_output=True, text=True, env=env,
                                cwd=self.workdir, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result.stdout.strip()

    def key_pair(self, name: str) -> tuple[Path, str]:
        """A cosign key pair (cosign generate-key-pair): the private key's path and the PEM public key."""
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.workdir), "COSIGN_PASSWORD": ""}
        subprocess.run([str(self.folder / "cosign"), "generate-key-pair"], cwd=folder, env=env, check=True,
                       capture_output=True, timeout=60)
        return folder / "cosign.key", (folder / "cosign.pub").read_text()

    def push(self, repository: str, tag: str, content: str) -> str:
        """A one-layer image pushed with crane; returns repository@sha256:digest."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        layer = self.workdir / f"layer-{tag}.tar"
        source = self.workdir / f"content-{tag}"
        source.mkdir(exist_ok=True)
        (source / "release.txt").write_text(content)
        subprocess.run(["tar", "-C", str(source), "-cf", str(layer), "release.txt"], check=True)
        self._run("crane", "append", "--new_layer", str(layer), "--new_tag", f"{repository}:{tag}",
                  "--platform", "linux/amd64")
        digest = self._run("crane", "digest", f"{repository}:{tag}")
        return f"{repository}@{digest}"

    def tags(self, repository: str) -> list[str]:
        return self._run("crane", "ls", repository).split()

    def sign(self, reference: str, key: Path, *, bundle_format: bool = False) -> None:
        """`bundle_format`: cosign v3's default format (a Sigstore bundle attached as an OCI referrer; a
        registry without the referrers API gets it under the tag sha256-<digest>) instead of `.sig`."""
        flags = [f for f in LEGACY_OFFLINE if not (bundle_format and f.startswith("--new-bundle-format"))]
        self._run("cosign", "sign", "--key", str(key), *flags, "--yes", reference)

    def attest_scan(self, reference: str, key: Path, predicate: dict) -> None:
        path = self.workdir / f"predicate-{abs(hash(json.dumps(predicate, sort_keys=True)))}.json"
        path.write_text(json.dumps(predicate))
        self._run("cosign", "attest", "--key", str(key), *LEGACY_OFFLINE, "--yes", "--type", "vuln",
                  "--predicate", str(path), reference)


def vulnerability_predicate(finished: str, severities: list[str]) -> dict:
    """A cosign-vuln predicate as `trivy image --format cosign-vuln` writes it (trivy pkg/report/predicate/
    vuln.go: invocation, scanner{uri, version, db, result: Trivy's JSON report}, metadata{scanStartedOn,
    scanFinishedOn}), with one finding per severity given."""
    vulnerabilities = [{"VulnerabilityID": f"CVE-2026-{1000 + i}", "PkgName": "openssl", "InstalledVersion": "3.0.0",
                        "FixedVersion": "3.0.1", "Severity": severity} for i, severity in enumerate(severities)]
    return {"invocation": {"parameters": None, "uri": "", "event_id": "", "builder.id": ""},
            "scanner": {"uri": "pkg:github/aquasecurity/trivy@v0.70.0", "version": "0.70.0",
                        "db": {"uri": "", "version": ""},
                        "result": {"SchemaVersion": 2, "ArtifactType": "container_image",
                                   "Results": [{"Target": "kubechat (debian 12)", "Class": "os-pkgs", "Type": "debian",
                                                "Vulnerabilities": vulnerabilities}]}},
            "metadata": {"scanStartedOn": finished, "scanFinishedOn": finished}}
