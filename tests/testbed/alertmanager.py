"""A real Alertmanager (tools/alertmanager, the version kube-prometheus-stack 88.3.0 runs) on loopback, for the
metrics tier: started with the routing the platform renders (kube-prometheus-stack's alertmanager.config in
dist/platform/prerequisites), its receivers' address files pointing at a webhook on loopback, fed by the
tier's Prometheus; stopped by `stop()` (exactly its own process). Built with the tier's other programs
(prometheus_operator.binaries())."""
from __future__ import annotations

import copy
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from testbed.controlplane import ProcessGroup, free_port
from kubechat_tools.paths import DIST


def rendered_config() -> dict:
    """kube-prometheus-stack's alertmanager.config as the platform renders it (the Application's values). The
    chart's defaults that Helm would merge in (global.resolve_timeout, inhibit_rules, templates) are not here:
    the route and the receivers, which decide where an alert goes, are entirely the project's."""
    app = yaml.safe_load((DIST / "platform" / "prerequisites" / "application-platform-kube-prometheus-stack.yaml").read_text())
    return copy.deepcopy(app["spec"]["source"]["helm"]["valuesObject"]["alertmanager"]["config"])


def with_local_secrets(config: dict, secrets: Path, urls: dict[str, str]) -> dict:
    """The rendered config with each receiver's url_file read from `secrets` instead of the Secret's mount
    (/etc/alertmanager/secrets/<secret>/<key>): `urls` maps each key to the address written there."""
    secrets.mkdir(parents=True, exist_ok=True)
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            key = Path(hook["url_file"]).name
            (secrets / key).write_text(urls[key])
            hook["url_file"] = str(secrets / key)
    return config


@dataclass
class Alertmanager(ProcessGroup):
    """A real Alertmanager on loopback, without clustering (no gossip port)."""

    binary: Path
    workdir: Path
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, config: dict) -> "Alertmanager":
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "alertmanager.yaml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.spawn("alertmanager", [str(self.binary), f"--config.file={self.workdir / 'alertmanager.yaml'}",
                                    f"--storage.path={self.workdir / 'data'}",
                                    f"--web.listen-address={self.address}", "--cluster.listen-address="])
        self.wait_http_ok(f"http://{self.address}/-/ready", "alertmanager", 60, interval=0.5)
        return self
