"""A real Prometheus server (tools/prometheus) on loopback, run by the delivery tier's canary analyses
(canary.py) and the metrics tier (metrics.py): started with a configuration and rule files, queried
through its HTTP API, stopped by `stop()` (exactly its own process)."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from testbed.controlplane import ProcessGroup, free_port


@dataclass
class Prometheus(ProcessGroup):
    """A real Prometheus on loopback with a given configuration; `stop()` ends exactly it."""

    binary: Path
    workdir: Path
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, config: dict, rules: dict[str, str] | None = None) -> "Prometheus":
        rules_dir = self.workdir / "rules"
        rules_dir.mkdir(parents=True, exist_ok=True)
        for name, content in (rules or {}).items():
            (rules_dir / name).write_text(content)
        self.port = free_port()
        (self.workdir / "prometheus.yaml").write_text(yaml.safe_dump(config))
        self.spawn("prometheus", [str(self.binary), f"--config.file={self.workdir / 'prometheus.yaml'}",
                                  f"--storage.tsdb.path={self.workdir / 'data'}",
                                  f"--web.listen-address=127.0.0.1:{self.port}"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check_running()
            try:
                with self._open("/-/ready") as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"prometheus did not become ready:\n{self.log_tail('prometheus')}")

    def _open(self, path: str):
        return urllib.request.build_opener(urllib.request.ProxyHandler({})).open(self.url + path, timeout=10)

    def api(self, path: str, **params) -> dict:
        with self._open(f"/api/v1/{path}?" + urllib.parse.urlencode(params)) as response:
            return json.loads(response.read())["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]
