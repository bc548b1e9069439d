"""The delivery tier (tests/delivery, `make delivery-test`): the real Argo CD and Argo Rollouts, run as
processes against the integration tier's control plane (controlplane.py), syncing this repository's
overlays from a local bare git repository.

- Argo CD at the version the platform pins (kubechat_deploy.versions.ARGOCD): application-controller,
  repo-server and applicationset-controller from one multi-call binary built from the Go module proxy
  (tools/argocd), with Debian's redis-server on loopback as its cache. The repo-server renders the
  overlays with the project's own pinned kustomize (bin/kustomize).
- Argo Rollouts' controller at ARGO_ROLLOUTS (tools/rollouts); Prometheus (tools/prometheus) for the
  canary analyses.
- Operators that cannot be built here are replaced by stand-ins (standins.py), listed by name.
Binaries are cached in .cache/delivery/<pin hash>/ like the control plane's.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kubechat_deploy.platform.props import DeliveryProps
from kubechat_deploy.versions import ARGO_ROLLOUTS, ARGOCD

from testbed.controlplane import ADMIN_TOKEN, ControlPlane, ProcessGroup, build, free_port
from kubechat_tools.paths import BIN, CACHE, DIST, ROOT

TOOLS = ROOT / "tools"
MODULES = {
    "argocd": [(f"{ARGOCD.module}/cmd", "argocd")],
    "rollouts": [(f"{ARGO_ROLLOUTS.module}/cmd/rollouts-controller", "rollouts-controller"),
                 # Argo Rollouts' own condition evaluation, for tests/delivery/test_analysis_conditions.py
                 ("./evaluate", "evaluate")],
    "prometheus": [("github.com/prometheus/prometheus/cmd/prometheus", "prometheus")],
}
ARGOCD_NAMESPACE = "argocd"
REPO_URL_PLACEHOLDER = "https://github.com/kubechat/kubechat-deploy.git"
"""DeliveryProps.repo_url as rendered; the tier points it at the local bare repository."""


def log(message: str) -> None:
    print(f"delivery: {message}", file=sys.stderr, flush=True)


def _go(module_folder: str, *args: str) -> str:
    result = subprocess.run(["go", *args], cwd=TOOLS / module_folder, capture_output=True, text=True,
                            env={**os.environ, "GOFLAGS": "-mod=mod"})
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"go {' '.join(args)} in tools/{module_folder} failed "
                           f"(exit {result.returncode}):\n{result.stderr or '(printed nothing)'}")
    return result.stdout.strip()


def go_module_dir(module_folder: str, module: str) -> Path:
    """Where the Go module cache holds `module` at the version tools/<module_folder> pins, downloaded
    first if it is not there yet (`go list -m -f {{.Dir}}` prints nothing for a module not in the cache)."""
    info = json.loads(_go(module_folder, "mod", "download", "-json", module))
    if info.get("Error") or not info.get("Dir"):
        raise RuntimeError(f"go mod download {module} in tools/{module_folder}: {info.get('Error') or 'no Dir'}")
    return Path(info["Dir"])


def go_module_version(module_folder: str, module: str) -> str:
    """The version of `module` tools/<module_folder> builds."""
    return _go(module_folder, "list", "-m", "-f", "{{.Version}}", module)


def argocd_ldflags() -> str:
    """What Argo CD's release build stamps in (its Makefile's LDFLAGS); `argocd version` and the
    controller's logs then name the pinned release."""
    package = f"{ARGOCD.module}/common"
    return " ".join([f"-X {package}.version={ARGOCD.version.lstrip('v')}", f"-X {package}.gitTag={ARGOCD.version}",
                     f"-X {package}.gitTreeState=clean", f"-X {package}.buildDate=1970-01-01T00:00:00Z"])


BUILD_TIMES: dict[str, float] = {}


def rollouts_platform_args() -> list[str]:
    """The Rollouts controller's arguments the platform sets (dist/platform/prerequisites, the chart's
    controller.extraArgs), as the chart passes them to the controller's container."""
    app = yaml.safe_load((DIST / "platform" / "prerequisites" / "application-platform-argo-rollouts.yaml").read_text())
    sources = app["spec"].get("sources") or [app["spec"]["source"]]
    return list(sources[0]["helm"]["valuesObject"]["controller"]["extraArgs"])


def binaries() -> Path:
    """Argo CD, the Rollouts controller and Prometheus, built (or cached) into .cache/delivery/<hash>/,
    with Argo CD's git-verify-wrapper.sh (shipped in its module; the repo-server runs it) beside them."""
    target = build(CACHE / "delivery", MODULES, {"argocd": argocd_ldflags()}, BUILD_TIMES)
    multicall = target / "argocd"  # `go build .../cmd` names the binary cmd; ARGOCD_BINARY_NAME picks the component
    if not multicall.exists():
        multicall.symlink_to("cmd")
    wrapper = target / "git-verify-wrapper.sh"
    if not wrapper.exists():
        shutil.copy(go_module_dir("argocd", ARGOCD.module) / "hack" / "git-verify-wrapper.sh", wrapper)
        wrapper.chmod(0o755)
    return target


def ensure_redis() -> str:
    path = shutil.which("redis-server")
    if not path:
        raise RuntimeError("redis-server is missing: `make setup` installs Debian's redis-server package")
    return path


FAIL_LABEL = "kubechat.io/test-fail"
"""A pod carrying this label (true) fails instead of completing: how a test makes a hook fail."""


def kwok_stages(path: Path) -> Path:
    """kwok's own default pod stages (pod-ready, pod-complete, pod-delete from its module), with pods
    labelled FAIL_LABEL=true failing instead of completing; written to `path` for `kwok --config`."""
    folder = go_module_dir("kwok", "sigs.k8s.io/kwok") / "kustomize" / "stage" / "pod" / "fast"
    stages = [yaml.safe_load((folder / f"pod-{name}.yaml").read_text()) for name in ("ready", "complete", "delete")]
    complete = stages[1]
    key = f'.metadata.labels["{FAIL_LABEL}"]'
    complete["spec"]["selector"]["matchExpressions"].append({"key": key, "operator": "DoesNotExist"})
    failed = yaml.safe_load(yaml.safe_dump(complete))
    failed["metadata"]["name"] = "pod-fail"
    failed["spec"]["selector"]["matchExpressions"][-1] = {"key": key, "operator": "In", "values": ["true"]}
    template = failed["spec"]["next"]["statusTemplate"]
    failed["spec"]["next"]["statusTemplate"] = (template.replace("exitCode: 0", "exitCode: 1")
                                                .replace("reason: Completed", "reason: Error")
                                                .replace("phase: Succeeded", "phase: Failed"))
    assert failed["spec"]["next"]["statusTemplate"] != template, "kwok's pod-complete stage changed shape"
    path.write_text(yaml.safe_dump_all([*stages, failed]))
    return path


# --- the git remote ----------------------------------------------------------------------------------

DELIVERED_PATHS = ("overlays", "dist")
"""What Argo CD reads from the repository: the overlays and what they build on."""


PROMOTION_PREFIX = DeliveryProps().promotion_branch_prefix
PROMOTED = tuple(e for e in DeliveryProps().environments if e != DeliveryProps().first_environment)
"""The environments that follow a promotion branch (the ApplicationSet's targetRevision)."""


@dataclass
class GitRemote:
    """A bare repository on disk (file://) holding the commits under test, and a clone to commit from."""

    root: Path

    @property
    def bare(self) -> Path:
        return self.root / "kubechat-deploy.git"

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    @property
    def work(self) -> Path:
        return self.root / "work"

    def git(self, *args: str, cwd: Path | None = None) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "delivery-test", "GIT_AUTHOR_EMAIL": "delivery-test@localhost",
               "GIT_COMMITTER_NAME": "delivery-test", "GIT_COMMITTER_EMAIL": "delivery-test@localhost"}
        result = subprocess.run(["git", *args], cwd=cwd or self.work, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch", "main", str(self.bare)], check=True)
        self.work.mkdir()
        self.git("init", "--quiet", "--initial-branch", "main")
        self.git("remote", "add", "origin", str(self.bare))

    def stage_tree(self, source: Path) -> None:
        """Put the delivered paths as they are in `source` (a working tree) into the work tree, uncommitted."""
        for name in DELIVERED_PATHS:
            shutil.rmtree(self.work / name, ignore_errors=True)
            shutil.copytree(source / name, self.work / name,
                            ignore=shutil.ignore_patterns(".render-*", "__pycache__"))

    def publish_tree(self, source: Path, message: str) -> str:
        """Commit the delivered paths as they are in `source` (a working tree) and push; returns the SHA."""
        self.stage_tree(source)
        return self._commit(message)

    def stage_commit(self, commit: str) -> None:
        """Put the delivered paths as they were at `commit` of this project's history into the work tree."""
        for name in DELIVERED_PATHS:
            shutil.rmtree(self.work / name, ignore_errors=True)
        archive = subprocess.run(["git", "archive", commit, *DELIVERED_PATHS], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(self.work)], input=archive.stdout, check=True)

    def publish_commit(self, commit: str, message: str) -> str:
        """Commit the delivered paths as they were at `commit` of this project's history; returns the SHA."""
        self.stage_commit(commit)
        return self._commit(message)

    def _commit(self, message: str, promote: bool = True) -> str:
        """Commit and push to main. With `promote` (what most tests want: the commit under test everywhere)
        the promotion branches move along, as if `scripts/release.py promote` had promoted it at once;
        tests/delivery/test_promotion.py commits without and promotes with the real command."""
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        self.git("push", "--quiet", "origin", "HEAD:main",
                 *([f"+HEAD:refs/heads/{PROMOTION_PREFIX}{env}" for env in PROMOTED] if promote else []))
        return self.git("rev-parse", "HEAD").strip()


# --- Argo CD and friends -----------------------------------------------------------------------------

def platform_docs(name: str, repo_url: str) -> list[dict]:
    """dist/platform/<name>/ as committed, with the repository URL pointed at the local remote, after the
    Namespaces its objects live in besides Argo CD's: on a cluster the prerequisites' Applications create them
    before this piece syncs (CreateNamespace=true; e.g. `monitoring`, where the delivery piece writes
    Alertmanager's receivers Secret), here nothing else would."""
    folder = DIST / "platform" / name
    docs = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        text = path.read_text().replace(REPO_URL_PLACEHOLDER, repo_url)
        docs += [d for d in yaml.safe_load_all(text) if d]
    namespaces = sorted({d["metadata"].get("namespace") for d in docs} - {None, ARGOCD_NAMESPACE})
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in namespaces] + docs


def argocd_base_objects() -> list[dict]:
    """What Argo CD's upstream install creates and the controllers read at start, besides argocd-cm
    (which comes from this project's render): the namespace, the other ConfigMaps, the Secret and the
    `default` project (argocd-server creates it; no server runs here)."""
    meta = lambda name: {"name": name, "namespace": ARGOCD_NAMESPACE,  # noqa: E731
                         "labels": {"app.kubernetes.io/part-of": "argocd"}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ARGOCD_NAMESPACE}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("argocd-cmd-params-cm")},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("argocd-rbac-cm")},
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta("argocd-secret"), "type": "Opaque",
         "stringData": {"server.secretkey": base64.b64encode(os.urandom(24)).decode()}},
        # The install's empty notifications Secret (manifests/install.yaml), which External Secrets merges into.
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta("argocd-notifications-secret"), "type": "Opaque"},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "default",
                                                                                   "namespace": ARGOCD_NAMESPACE},
         "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                  "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}},
    ]


def cluster_secret(name: str, server: str, labels: dict[str, str], plane: ControlPlane | None = None) -> dict:
    """An Argo CD cluster Secret (docs/install.md: how a cluster is registered). The in-cluster address
    needs no credentials (Argo CD uses its own service account; here ARGOCD_FAKE_IN_CLUSTER's kubeconfig)."""
    data = {"name": name, "server": server}
    if plane is not None:
        ca = Path(plane.workdir / "ca.crt").read_bytes()
        data["config"] = json.dumps({"bearerToken": ADMIN_TOKEN,
                                     "tlsClientConfig": {"caData": base64.b64encode(ca).decode()}})
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": f"cluster-{name}", "namespace": ARGOCD_NAMESPACE,
                         "labels": {"argocd.argoproj.io/secret-type": "cluster", **labels}},
            "stringData": data}


@dataclass
class DeliveryStack(ProcessGroup):
    """Running: redis, Argo CD's three controllers, the Rollouts controller; `stop()` ends exactly those."""

    plane: ControlPlane
    bin: Path
    workdir: Path
    remote: GitRemote
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def start(cls, plane: ControlPlane) -> "DeliveryStack":
        found = time.monotonic()
        bin_dir = binaries()
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix="kubechat-delivery-"))
        stack = cls(plane=plane, bin=bin_dir, workdir=workdir, remote=GitRemote(workdir / "git"))
        try:
            stack.remote.init()
            stack._start_all()
        except BaseException:
            stack.stop()
            raise
        stack.timings = {"binaries": started - found, "start": time.monotonic() - started}
        return stack

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        return self.spawn(name, argv, {**os.environ, **(env or {})})

    def argocd_env(self, component: str) -> dict[str, str]:
        w = self.workdir
        for folder in ("tls", "ssh", "gnupg", "tmp", "home"):
            (w / folder).mkdir(exist_ok=True)
        return {"ARGOCD_BINARY_NAME": component, "ARGOCD_FAKE_IN_CLUSTER": "true",
                "KUBECONFIG": str(self.plane.kubeconfig), "ARGOCD_TLS_DATA_PATH": str(w / "tls"),
                "ARGOCD_SSH_DATA_PATH": str(w / "ssh"), "ARGOCD_GNUPGHOME": str(w / "gnupg"),
                "ARGOCD_GPG_ENABLED": "false", "ARGOCD_SYNC_WAVE_DELAY": "0", "TMPDIR": str(w / "tmp"),
                "HOME": str(w / "home"),
                # git, the project's kustomize and git-verify-wrapper.sh for the repo-server; `tools/` for the
                # programs a test provides later (provide_tool: Helm, for the tests that render a chart).
                "PATH": os.pathsep.join([str(self.bin), str(BIN), str(w / "tools"), os.environ.get("PATH", "")])}

    def provide_tool(self, program: Path) -> None:
        """Put `program` on the Argo CD components' PATH (the repo-server looks a program up at each use)."""
        folder = self.workdir / "tools"
        folder.mkdir(exist_ok=True)
        link = folder / program.name
        link.unlink(missing_ok=True)
        link.symlink_to(program)

    def _start_all(self) -> None:
        plane = self.plane
        plane.apply_docs(argocd_base_objects())
        # The install's argocd-cm, with the keys this project renders (an older commit has none).
        plane.apply_docs(platform_docs("argocd", self.remote.url) if (DIST / "platform" / "argocd").is_dir() else
                         [{"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "argocd-cm", "namespace": ARGOCD_NAMESPACE,
                                        "labels": {"app.kubernetes.io/part-of": "argocd"}}}])
        redis_port, repo_port = free_port(), free_port()
        self.redis_port, self.repo_port = redis_port, repo_port
        self._spawn("redis", [ensure_redis(), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--protected-mode", "yes"])
        argocd = str(self.bin / "argocd")
        self._spawn("argocd-repo-server", [argocd, "--address", "127.0.0.1", "--port", str(repo_port),
                                           "--metrics-address", "127.0.0.1", "--metrics-port", str(free_port()),
                                           "--redis", f"127.0.0.1:{redis_port}", "--disable-tls", "--client-ca-path", "",
                                           "--loglevel", "info"], self.argocd_env("argocd-repo-server"))
        self._spawn("argocd-application-controller",
                    [argocd, "--namespace", ARGOCD_NAMESPACE, "--repo-server", f"127.0.0.1:{repo_port}",
                     "--repo-server-plaintext", "--redis", f"127.0.0.1:{redis_port}",
                     "--metrics-port", str(free_port()), "--app-resync", "10", "--app-resync-jitter", "0",
                     "--self-heal-timeout-seconds", "1", "--loglevel", "info"],
                    self.argocd_env("argocd-application-controller"))
        self._spawn("argocd-applicationset-controller",
                    [argocd, "--namespace", ARGOCD_NAMESPACE, "--argocd-repo-server", f"127.0.0.1:{repo_port}",
                     "--repo-server-plaintext", "--metrics-addr", f"127.0.0.1:{free_port()}",
                     "--probe-addr", f"127.0.0.1:{free_port()}", "--webhook-addr", f"127.0.0.1:{free_port()}",
                     "--loglevel", "info"], self.argocd_env("argocd-applicationset-controller"))
        # The notifications controller (the same multi-call binary), as the install runs it: it reads
        # argocd-notifications-cm (this project's render) and argocd-notifications-secret.
        self._spawn("argocd-notifications",
                    [argocd, "--namespace", ARGOCD_NAMESPACE,  # its ConfigMap and Secret, and the Applications
                     "--argocd-repo-server", f"127.0.0.1:{repo_port}", "--argocd-repo-server-plaintext",
                     "--metrics-port", str(free_port()), "--loglevel", "info", "--logformat", "text"],
                    self.argocd_env("argocd-notifications"))
        # With the platform's own extra arguments (the argo-rollouts Application's controller.extraArgs: the
        # Traefik API group of the canaries' traffic split).
        self._spawn("rollouts-controller",
                    [str(self.bin / "rollouts-controller"), "--kubeconfig", str(plane.kubeconfig),
                     "--metricsport", str(free_port()), "--healthzPort", str(free_port()),
                     "--leader-elect=false", "--loglevel", "info", *rollouts_platform_args()])
        self._spawn("standins", [sys.executable, "-m", "testbed.standins", str(plane.kubeconfig), str(self.workdir)],
                    {"PYTHONPATH": f"{ROOT / 'scripts'}:{ROOT / 'tests'}"})
        time.sleep(1)
        self.check_running()

    def start_api_server(self) -> str:
        """argocd-server on loopback (plaintext, authentication off: only this test's CLI reaches it), for
        the commands that go through Argo CD's API (`argocd app rollback`); returns its address."""
        if getattr(self, "api_address", None):
            return self.api_address
        self.api_address = self._start_server("argocd-server", "--disable-auth")
        return self.api_address

    def start_authenticated_api_server(self) -> str:
        """A second argocd-server on loopback (plaintext) that authenticates and enforces argocd-rbac-cm as a
        real install does; returns its address (log in with `argocd login <address> --plaintext`)."""
        if getattr(self, "auth_api_address", None):
            return self.auth_api_address
        self.auth_api_address = self._start_server("argocd-server-auth")
        return self.auth_api_address

    def _start_server(self, name: str, *flags: str) -> str:
        port = free_port()
        (self.workdir / "static").mkdir(exist_ok=True)
        self._spawn(name, [str(self.bin / "argocd"), "--insecure", *flags, "--address", "127.0.0.1",
                           "--port", str(port), "--metrics-address", "127.0.0.1", "--metrics-port", str(free_port()),
                           "--namespace", ARGOCD_NAMESPACE, "--repo-server", f"127.0.0.1:{self.repo_port}",
                           "--repo-server-plaintext", "--redis", f"127.0.0.1:{self.redis_port}",
                           "--staticassets", str(self.workdir / "static"), "--loglevel", "info"],
                    self.argocd_env("argocd-server"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check_running()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return f"127.0.0.1:{port}"
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"{name} did not listen within 60 s:\n{self.log_tail(name)}")

    def cli_env(self) -> dict[str, str]:
        """Environment in which `argocd` (on PATH) talks to start_api_server(), as after `argocd login`."""
        return {**self.argocd_env("argocd"), "ARGOCD_SERVER": self.start_api_server(), "ARGOCD_AUTH_TOKEN": "unused",
                "ARGOCD_OPTS": "--plaintext"}

    def argocd_cli(self, *args: str, timeout: float = 360) -> subprocess.CompletedProcess:
        """The argocd CLI as an operator runs it, against start_api_server()."""
        return subprocess.run([str(self.bin / "argocd"), *args], capture_output=True, text=True, timeout=timeout,
                              env=self.cli_env())

    # --- reading Argo CD's state -------------------------------------------------------------------

    def get(self, kind: str, name: str, namespace: str = ARGOCD_NAMESPACE) -> dict | None:
        scope = ["-n", namespace] if namespace else []
        result = self.plane.kubectl("get", kind, name, *scope, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def applications(self) -> list[dict]:
        return json.loads(self.plane.kubectl("get", "applications.argoproj.io", "-n", ARGOCD_NAMESPACE,
                                             "-o", "json").stdout)["items"]

    def refresh(self, app: str) -> None:
        """What a git webhook does: make Argo CD re-read the branch now (the repo-server caches it)."""
        self.plane.kubectl("annotate", "applications.argoproj.io", app, "-n", ARGOCD_NAMESPACE,
                           "argocd.argoproj.io/refresh=hard", "--overwrite")

    def sync(self, app: str, revision: str, user: str = "delivery-test", prune: bool = False,
             retry: dict | None = None) -> None:
        """A manual sync, as `argocd app sync [--prune]` requests one: an operation on the Application.

        `retry` (default none): Argo CD writes a new operation's state with a JSON merge patch of a struct whose
        zero fields are omitted (argo-cd v3.5.1 controller/appcontroller.go setOperationState), so a manual
        operation without retries keeps the retry strategy of the operation before it: after an auto-sync,
        its five retries. Give a non-zero retry to override it.

        The sync options are the Application's own, as argocd-server copies them into the operation of a sync
        request that names none (argo-cd v3.5.1 server/application/application.go Sync): the controller reads
        only the operation's (controller/sync.go). Without ServerSideApply=true an RBAC object is applied
        through `kubectl auth reconcile`, whose create names no object, so a deployer allowed to escalate
        only named ClusterRoles could not create them."""
        options = ((self.get("applications.argoproj.io", app) or {}).get("spec", {}).get("syncPolicy") or {}).get("syncOptions")
        patch = {"operation": {"initiatedBy": {"username": user},
                               "sync": {"revision": revision, "syncStrategy": {"hook": {}},
                                        **({"syncOptions": options} if options else {}),
                                        **({"prune": True} if prune else {})},
                               "retry": retry or {"limit": 0}}}
        # The whole operation, replaced (a JSON patch `add`), never merged into one the controller may have set.
        self.plane.kubectl("patch", "applications.argoproj.io", app, "-n", ARGOCD_NAMESPACE, "--type", "json",
                           "-p", json.dumps([{"op": "add", "path": "/operation", "value": patch["operation"]}]))

    def wait_app(self, app: str, predicate, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self.check_running()
            last = self.get("applications.argoproj.io", app)
            if last and predicate(last):
                return last
            time.sleep(1)
        status = (last or {}).get("status", {})
        op = status.get("operationState") or {}
        result = op.get("syncResult") or {}
        # What an operator reads first: the operation's phase and message, then only the resources (hooks
        # included) that did not end well; the whole list would push these out of the message.
        unfinished = [{k: r.get(k) for k in ("kind", "name", "hookType", "hookPhase", "status", "message", "syncPhase")
                       if r.get(k)} for r in result.get("resources") or []
                      if r.get("hookPhase") not in (None, "Succeeded") or r.get("status") not in (None, "Synced")]
        summary = {"operation": {"phase": op.get("phase"), "message": op.get("message"),
                                 "revision": result.get("revision")},
                   "resources not done": unfinished, "sync": status.get("sync"), "health": status.get("health"),
                   "conditions": status.get("conditions")}
        raise AssertionError(f"{app}: not {what} after {timeout:.0f} s:\n{yaml.safe_dump(summary, sort_keys=False)[:6000]}\n"
                             f"application-controller log:\n{self.log_tail('argocd-application-controller', 15)}")


def synced_healthy(revision: str):
    def check(app: dict) -> bool:
        status = app.get("status", {})
        op = status.get("operationState") or {}
        return (status.get("sync", {}).get("status") == "Synced"
                and status.get("sync", {}).get("revision") == revision
                and status.get("health", {}).get("status") == "Healthy"
                and op.get("phase") == "Succeeded" and op.get("syncResult", {}).get("revision") == revision)
    return check


def at_revision(revision: str):
    """Compared with `revision`, Synced and Healthy, and no operation running, whether or not it took a sync: a
    commit that changes nothing of an environment's render is Synced without one (auto-sync starts none)."""
    def check(app: dict) -> bool:
        status = app.get("status", {})
        return (status.get("sync", {}).get("status") == "Synced" and status.get("sync", {}).get("revision") == revision
                and status.get("health", {}).get("status") == "Healthy"
                and (status.get("operationState") or {}).get("phase") != "Running")
    return check


def operation_phase(revision: str, phases: tuple[str, ...]):
    def check(app: dict) -> bool:
        op = app.get("status", {}).get("operationState") or {}
        return op.get("phase") in phases and op.get("operation", {}).get("sync", {}).get("revision") == revision
    return check
