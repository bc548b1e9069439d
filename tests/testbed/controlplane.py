"""A real Kubernetes control plane for the integration tests (the approach of controller-runtime's envtest):
etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake nodes that run pods).

Binaries come from KUBEBUILDER_ASSETS when it is set (a folder with at least etcd, kube-apiserver and
kubectl); otherwise they are built from the Go module proxy at the versions pinned in tools/controlplane,
tools/etcd and tools/kwok, into .cache/controlplane/<pin hash>/ (git-ignored), so warm runs build nothing.
With KUBECONFIG set (and KUBECHAT_USE_EXISTING_CLUSTER=1) the tests use that cluster instead.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kubechat_tools.paths import CACHE, ROOT

TOOLS = ROOT / "tools"
MODULES = {
    # module folder: (package, binary name)
    "controlplane": [("k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"),
                     ("k8s.io/kubernetes/cmd/kube-controller-manager", "kube-controller-manager"),
                     ("k8s.io/kubernetes/cmd/kube-scheduler", "kube-scheduler"),
                     ("k8s.io/kubernetes/cmd/kubectl", "kubectl")],
    "etcd": [(".", "etcd")],
    "kwok": [("sigs.k8s.io/kwok/cmd/kwok", "kwok")],
}
REQUIRED = ("etcd", "kube-apiserver", "kubectl")
OPTIONAL = ("kube-controller-manager", "kube-scheduler", "kwok")
ADMIN_TOKEN = "kubechat-integration-admin"
FAKE_NODE_LABEL = "kwok.x-k8s.io/fake-node"
POD_CIDR = "10.244.0.0/16"
"""kwok's pod addresses; reachable only inside a tier's own pod network (testbed.netns), never on the host."""
ZONES = ("zone-a", "zone-b", "zone-c")


def log(message: str) -> None:
    print(f"controlplane: {message}", file=sys.stderr, flush=True)


def kubernetes_version() -> str:
    """The k8s.io/kubernetes version tools/controlplane/go.mod requires, e.g. v1.34.3."""
    match = re.search(r"^require k8s\.io/kubernetes (v\d+\.\d+\.\d+)$", (TOOLS / "controlplane" / "go.mod").read_text(), re.M)
    if not match:
        raise RuntimeError("tools/controlplane/go.mod: no 'require k8s.io/kubernetes vX.Y.Z' line")
    return match.group(1)


def version_ldflags() -> str:
    """What Kubernetes' release build stamps in: without it the binaries call themselves v0.0.0-master
    and kubectl refuses to parse the server's version."""
    version = kubernetes_version()
    major, minor = version[1:].split(".")[:2]
    flags = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.gitVersion={version}", f"-X {package}.gitMajor={major}",
                  f"-X {package}.gitMinor={minor}", f"-X {package}.gitTreeState=clean"]
    return " ".join(flags)


KYVERNO = {"kyverno": [("github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno", "kubectl-kyverno")]}
"""Kyverno's CLI (its engine and policy validation), for tests/test_kyverno.py; built and cached the same way."""


def pin_hash(modules: dict = MODULES, ldflags: dict[str, str] | None = None,
             vendored: dict[str, dict[str, str]] | None = None) -> str:
    digest = hashlib.sha256()
    for module, files in sorted((vendored or {}).items()):
        for relative, content in sorted(files.items()):
            digest.update(f"{module} vendored {relative}\n{content}".encode())
    if modules is MODULES:
        digest.update(version_ldflags().encode())
    for module, flags in sorted((ldflags or {}).items()):
        digest.update(f"{module} ldflags {flags}\n".encode())
    for module in sorted(modules):
        for name in ("go.mod", "go.sum", "main.go", "tools.go", "build-tags"):
            path = TOOLS / module / name
            if path.exists():
                digest.update(f"{module}/{name}\n".encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def build_tags(module: str) -> list[str]:
    """`-tags` from tools/<module>/build-tags when the module has one (`#` lines are comments): the Makefile
    builds a module's programs for bin/ with the same file, so a tier's build and make setup's agree."""
    path = TOOLS / module / "build-tags"
    if not path.exists():
        return []
    tags = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return ["-tags", ",".join(tags)]


def build(cache: Path = CACHE / "controlplane", modules: dict = MODULES, ldflags: dict[str, str] | None = None,
          timings: dict[str, float] | None = None, vendored: dict[str, dict[str, str]] | None = None,
          upstream: dict[str, Path] | None = None) -> Path:
    """Build every binary (or reuse the cached build of the same pins); print how long it took.
    `ldflags`: module folder -> -ldflags value; `timings` receives module -> build seconds; `vendored`: module
    folder -> {path under vendor/: content}, files a module's release build generates and its module zip lacks
    (a web UI's compiled assets that a //go:embed needs): that module is built from a vendored copy of its
    tools/ folder with these files added (the module cache itself is read-only, and -overlay may not replace
    files in it); `upstream`: module folder -> the module cache's folder of the program's own module (at the
    version tools/<folder>/go.mod requires, which the pin hash covers), built as the main module from a copy,
    for a program whose go.mod has replace directives that a requiring module would not apply.

    Safe side by side (two pytest workers, two tiers): one build per pin hash, whoever asks first, under an
    exclusive lock on <cache>/<hash>.lock; the others wait and then find it finished. The build goes to
    <hash>.partial/ with its `.complete` stamp written inside, then one rename publishes it, so a killed build
    leaves only a .partial folder (removed by the next build), never a folder that looks finished."""
    target = cache / pin_hash(modules, ldflags, vendored)
    stamp = target / ".complete"
    if stamp.exists():
        log(f"binaries: cached in {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / (target.name + ".lock"), "w") as lock:
        waited = time.monotonic()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another process is building {target.name}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
            log(f"waited {time.monotonic() - waited:.0f} s for the other build")
        if stamp.exists():
            log(f"binaries: built by another process into {target}")
            return target
        _build_locked(target, modules, ldflags, timings, vendored or {}, upstream or {})
    return target


def _build_locked(target: Path, modules: dict, ldflags: dict[str, str] | None,
                  timings: dict[str, float] | None, vendored: dict[str, dict[str, str]],
                  upstream: dict[str, Path]) -> None:
    started = time.monotonic()
    partial = target.parent / (target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    for module, packages in modules.items():
        module_started = time.monotonic()
        log(f"building {', '.join(name for _, name in packages)} (tools/{module}); the first build takes minutes")
        flags = ["-ldflags", version_ldflags()] if module == "controlplane" and modules is MODULES else \
            ["-ldflags", ldflags[module]] if ldflags and module in ldflags else []
        folder, build_env = TOOLS / module, env
        if module in vendored:
            folder = partial.parent / f"{target.name}.{module}-src"
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(TOOLS / module, folder)
            result = subprocess.run(["go", "mod", "vendor", "-e"], cwd=folder, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"go mod vendor in tools/{module} failed:\n{result.stderr[-4000:]}")
            for relative, content in vendored[module].items():
                (folder / "vendor" / relative).parent.mkdir(parents=True, exist_ok=True)
                (folder / "vendor" / relative).write_text(content)
            build_env = {**env, "GOFLAGS": "-mod=vendor"}
        elif module in upstream:
            folder = partial.parent / f"{target.name}.{module}-src"
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(upstream[module], folder)
            subprocess.run(["chmod", "-R", "u+w", str(folder)], check=True)  # the module cache is read-only
        flags += build_tags(module)
        result = subprocess.run(["go", "build", *flags, "-o", str(partial) + "/", *[package for package, _ in packages]],
                                cwd=folder, env=build_env, capture_output=True, text=True)
        if module in vendored or module in upstream:
            shutil.rmtree(folder, ignore_errors=True)
        if result.returncode != 0:
            raise RuntimeError(f"go build in tools/{module} failed:\n{result.stderr[-4000:]}")
        log(f"built tools/{module} in {time.monotonic() - module_started:.0f} s")
        if timings is not None:
            timings[module] = time.monotonic() - module_started
    (partial / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)  # an unfinished folder of an older layout
    partial.rename(target)
    log(f"binaries: built in {time.monotonic() - started:.0f} s into {target}")


def kyverno_cli() -> Path:
    """kubectl-kyverno: from KYVERNO_CLI when set, otherwise built into .cache/kyverno/."""
    given = os.environ.get("KYVERNO_CLI")
    if given:
        if not Path(given).is_file():
            raise RuntimeError(f"KYVERNO_CLI={given}: no such file")
        return Path(given)
    return build(CACHE / "kyverno", KYVERNO) / "kubectl-kyverno"


BUILD_TIMES: dict[str, float] = {}
"""Module folder -> seconds its build took in this process (empty when the cached build was used)."""


def binaries() -> Path:
    """The control plane's binaries: KUBEBUILDER_ASSETS when set, otherwise built (or cached) into
    .cache/controlplane/<hash>/."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        folder = Path(assets)
        missing = [name for name in REQUIRED if not (folder / name).exists()]
        if missing:
            raise RuntimeError(f"KUBEBUILDER_ASSETS={assets}: missing {', '.join(missing)} "
                               f"(needs {', '.join(REQUIRED)}; optional {', '.join(OPTIONAL)})")
        log(f"binaries: KUBEBUILDER_ASSETS={assets}")
        return folder
    return build(timings=BUILD_TIMES)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def serving_certificate(folder: Path, *, ca_subject: str, subject: str, san: str, name: str = "tls") -> None:
    """A CA of the test (<folder>/ca.crt, ca.key, valid a day) and a serving certificate it signed for the
    subjectAltName `san` (<folder>/<name>.crt, <name>.key)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", ca_subject,
            "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.crt"))
    (folder / "san.cnf").write_text(f"subjectAltName={san}\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
            "-keyout", str(folder / f"{name}.key"), "-out", str(folder / f"{name}.csr"))
    openssl("x509", "-req", "-in", str(folder / f"{name}.csr"), "-CA", str(folder / "ca.crt"),
            "-CAkey", str(folder / "ca.key"), "-CAcreateserial", "-days", "1", "-extfile", str(folder / "san.cnf"),
            "-out", str(folder / f"{name}.crt"))


class ProcessGroup:
    """The processes a test started, each logging to <workdir>/<name>.log: `stop()` ends exactly those
    (and removes the workdir). Mixed into ControlPlane and the delivery tier's DeliveryStack."""

    workdir: Path
    processes: list[tuple[str, subprocess.Popen]]

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start `argv` in its own session, in the workdir, logging to <workdir>/<name>.log; `env` is the
        whole environment (None: this process's)."""
        with open(self.workdir / f"{name}.log", "w") as logfile:
            process = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, cwd=self.workdir, env=env,
                                       start_new_session=True)
        self.processes.append((name, process))
        return process

    def check_running(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}):\n{self.log_tail(name)}")

    def wait_http_ok(self, url: str, name: str, timeout: float, interval: float = 0.3) -> None:
        """Wait until `url` answers 200 (no proxy), `name`'s process still running; raise with its log's tail."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            try:
                with opener.open(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(interval)
        raise RuntimeError(f"{name} did not answer {url} in {timeout:.0f} s:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for _, process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class ControlPlane(ProcessGroup):
    """A running control plane; `kubectl()` talks to it as cluster admin."""

    bin: Path
    workdir: Path
    kubeconfig: Path
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    with_controllers: bool = True
    existing: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent getting the binaries (building or finding them) and starting the processes."""
    kwok_config: Path | None = None
    """A kwok configuration (Stage objects) replacing kwok's default pod stages."""
    distinct_pod_addresses: bool = False
    """Give each fake node a range of its own (fake_node), so no two pods share an address."""

    # --- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def existing_cluster(cls, kubeconfig: str) -> "ControlPlane":
        kubectl = shutil.which("kubectl") or str(binaries() / "kubectl")
        plane = cls(bin=Path(kubectl).parent, workdir=Path(tempfile.mkdtemp(prefix="kubechat-it-")),
                    kubeconfig=Path(kubeconfig), existing=True)
        return plane

    @classmethod
    def start(cls, kwok_config: Path | None = None, distinct_pod_addresses: bool = False) -> "ControlPlane":
        found = time.monotonic()
        bin_dir = binaries()
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix="kubechat-controlplane-"))
        plane = cls(bin=bin_dir, workdir=workdir, kubeconfig=workdir / "kubeconfig",
                    with_controllers=all((bin_dir / name).exists() for name in OPTIONAL), kwok_config=kwok_config,
                    distinct_pod_addresses=distinct_pod_addresses)
        try:
            plane._start_all()
        except BaseException:
            plane.stop()
            raise
        plane.timings = {"binaries": started - found, "start": time.monotonic() - started}
        log(f"started in {time.monotonic() - started:.1f} s "
            f"({'with' if plane.with_controllers else 'without'} controller-manager, scheduler and kwok)")
        return plane

    def _spawn(self, name: str, *args: str) -> None:
        self.spawn(name, [str(self.bin / name), *args])

    def _start_all(self) -> None:
        w = self.workdir
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self._spawn("etcd", "--data-dir", str(w / "etcd"), "--name", "integration",
                    "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
                    "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
                    "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                    "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                    "--initial-cluster", f"integration=http://127.0.0.1:{peer_port}",
                    "--unsafe-no-fsync", "--quota-backend-bytes", str(4 * 1024 ** 3), "--log-level", "warn")
        # A CA for the serving certificate (so clients verify the server) and the ServiceAccount signing key.
        serving_certificate(w, ca_subject="/CN=kubechat-integration-ca", subject="/CN=kube-apiserver",
                            san="IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc", name="apiserver")
        openssl("genrsa", "-out", str(w / "sa.key"), "2048")
        openssl("rsa", "-in", str(w / "sa.key"), "-pubout", "-out", str(w / "sa.pub"))
        (w / "tokens.csv").write_text(f'{ADMIN_TOKEN},kubechat-admin,1,"system:masters"\n')
        self._spawn("kube-apiserver",
                    "--etcd-servers", f"http://127.0.0.1:{etcd_port}",
                    "--bind-address", "127.0.0.1", "--secure-port", str(api_port),
                    "--tls-cert-file", str(w / "apiserver.crt"), "--tls-private-key-file", str(w / "apiserver.key"),
                    "--client-ca-file", str(w / "ca.crt"),
                    "--token-auth-file", str(w / "tokens.csv"),
                    "--authorization-mode", "RBAC",
                    "--service-account-issuer", "https://kubernetes.default.svc",
                    "--service-account-key-file", str(w / "sa.pub"),
                    "--service-account-signing-key-file", str(w / "sa.key"),
                    "--service-cluster-ip-range", "10.96.0.0/16",
                    "--allow-privileged=true",
                    # The defaults include PodSecurity and ValidatingAdmissionPolicy; named for the reader.
                    "--enable-admission-plugins", "NamespaceLifecycle,ServiceAccount,PodSecurity,ResourceQuota,"
                                                  "LimitRanger,ValidatingAdmissionPolicy")
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "integration",
            "clusters": [{"name": "integration", "cluster": {"server": f"https://127.0.0.1:{api_port}",
                                                             "certificate-authority": str(w / "ca.crt")}}],
            "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
            "contexts": [{"name": "integration", "context": {"cluster": "integration", "user": "admin"}}],
        }))
        self._wait_ready()
        if not self.with_controllers:
            return
        self._spawn("kube-controller-manager", "--kubeconfig", str(self.kubeconfig),
                    "--authentication-kubeconfig", str(self.kubeconfig),
                    "--authorization-kubeconfig", str(self.kubeconfig),
                    "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", str(free_port()),
                    "--service-account-private-key-file", str(w / "sa.key"), "--root-ca-file", str(w / "ca.crt"),
                    "--use-service-account-credentials=false",
                    # kwok's heartbeats lag on a busy two-core machine; the node lifecycle controller would
                    # then mark the fake nodes NotReady and their pods unready. Node failure is not tested here.
                    "--node-monitor-grace-period", "1h", "--controllers", "*")
        self._spawn("kube-scheduler", "--kubeconfig", str(self.kubeconfig),
                    "--authentication-kubeconfig", str(self.kubeconfig),
                    "--authorization-kubeconfig", str(self.kubeconfig),
                    "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", str(free_port()))
        self._spawn("kwok", "--kubeconfig", str(self.kubeconfig),
                    "--manage-nodes-with-label-selector", f"{FAKE_NODE_LABEL}=true",
                    "--node-ip", "10.0.0.1", "--cidr", POD_CIDR,
                    *(["--config", str(self.kwok_config)] if self.kwok_config else []))
        for index, zone in enumerate(ZONES):
            self.apply_docs([fake_node(f"fake-node-{index}", zone, index if self.distinct_pod_addresses else None)])

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            result = self.kubectl("get", "--raw", "/readyz", check=False)
            if result.returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError(f"kube-apiserver not ready after {timeout:.0f} s:\n{self.log_tail('kube-apiserver')}")

    # --- client ------------------------------------------------------------------------------------

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(self.bin / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
                                input=input, capture_output=True, text=True, timeout=300)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def install_crds(self, crds: list[dict]) -> None:
        """Apply CustomResourceDefinitions and wait until the API server serves every one."""
        self.apply_docs(crds)
        self.wait_established([crd["metadata"]["name"] for crd in crds])

    def wait_established(self, names: list[str], timeout: float = 120) -> None:
        """Wait until each named CRD is Established. Polls instead of `kubectl wait --for condition=...`,
        which fails at once on a CRD the API server has not yet given any status condition."""
        deadline = time.monotonic() + timeout
        pending = sorted(names)
        while pending:
            listed = json.loads(self.kubectl("get", "crd", "-o", "json").stdout)["items"]
            established = {crd["metadata"]["name"] for crd in listed if crd_established(crd)}
            pending = [name for name in pending if name not in established]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"CRDs not Established after {timeout:.0f} s: {', '.join(pending)}")
            time.sleep(0.2)

    def apply_docs(self, docs: list[dict], *, dry_run: bool = False, check: bool = True,
                   field_manager: str = "kubechat-integration") -> subprocess.CompletedProcess:
        args = ["apply", "--server-side", "--force-conflicts", "--field-manager", field_manager, "-f", "-"]
        if dry_run:
            args.append("--dry-run=server")
        return self.kubectl(*args, input=yaml.safe_dump_all(docs), check=check)


def crd_established(crd: dict) -> bool:
    """True when a CustomResourceDefinition's status says Established=True; a CRD with no status or no
    conditions yet (just created) is not."""
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def fake_node(name: str, zone: str, index: int | None = None) -> dict:
    """A kwok node. With `index`, its pods take addresses from 10.244.<64 * index>.0/18 of POD_CIDR: kwok hands out
    addresses per node from the node's podCIDR, else from --cidr, so without one two nodes' pods can share an
    address (kwok v0.7.0 pkg/kwok/controllers/pod_controller.go), which matters only where a test reaches pods
    by address (ControlPlane.start(distinct_pod_addresses=True))."""
    capacity = {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "500Gi"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
                         "labels": {FAKE_NODE_LABEL: "true", "kubernetes.io/hostname": name,
                                    "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                                    "topology.kubernetes.io/zone": zone, "type": "kwok"}},
            **({"spec": {"podCIDR": f"10.244.{64 * index}.0/18"}} if index is not None else {}),
            "status": {"allocatable": capacity, "capacity": capacity}}


def main() -> int:
    """`python -m testbed.controlplane build`: build (or find) the binaries and print where."""
    if sys.argv[1:] != ["build"]:
        print("usage: controlplane.py build", file=sys.stderr)
        return 2
    print(binaries())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
