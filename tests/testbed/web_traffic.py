"""The web front end's traffic through the real front door, for the delivery tier's canaries: users' requests
sent to the web host through Traefik (testbed.traefik), and the web pods' answers.

- `WebPods`: the web pods' port in the tier's pod network (testbed.pod_network: kwok runs no containers), reached
  from Traefik only through the rendered NetworkPolicies. A pod answers 200, except a pod of a release whose image
  tag ends in `-web-errors`, which answers its first request and every ERROR_EVERY-th after it with 503 (about
  3 %: below the web analysis's 99 % success condition, a small error rate; from the first request because
  Prometheus's rate() counts a series' growth only from its second sample, so a canary's failures are measured
  well within its pause). Requests are counted per pod-template hash, the side
  of the canary split the pod belongs to.
- `WebLoad`: a steady stream of requests to https://<web host>/ through Traefik's HTTPS entry point (SNI and Host:
  the web host), so Traefik counts each side of the split in its own series
  (`traefik_service_requests_total{service=...}`), which the rendered web analysis queries.

Stopped by `stop()` (exactly their own servers and thread)."""
from __future__ import annotations

import collections
import http.client
import socket
import ssl
import threading

from testbed.cert_manager import TRAEFIK
from testbed.controlplane import ControlPlane
from testbed.netns import PodNetwork
from testbed.pod_network import PodPorts

ERROR_EVERY = 30
SELECTOR = "app.kubernetes.io/name=kubechat,app.kubernetes.io/component=web"
HASH = "rollouts-pod-template-hash"


class WebPods(PodPorts):
    """The web pods' answers (module docstring); `by_hash`: pod-template hash -> requests answered."""

    def __init__(self, plane: ControlPlane, network: PodNetwork) -> None:
        self.by_hash: collections.Counter = collections.Counter()
        self.per_pod: collections.Counter = collections.Counter()
        self.count_lock = threading.Lock()
        super().__init__(plane, network, TRAEFIK, SELECTOR, self._answer)

    def _answer(self, pod: dict, port: int, request) -> tuple[int, dict[str, str], bytes]:
        with self.count_lock:
            self.per_pod[pod["metadata"]["uid"]] += 1
            self.by_hash[pod["metadata"]["labels"].get(HASH, "")] += 1
            count = self.per_pod[pod["metadata"]["uid"]]
        tag = pod["spec"]["containers"][0]["image"].rsplit("/", 1)[-1].partition(":")[2]
        if tag.endswith("-web-errors") and count % ERROR_EVERY == 1:
            return 503, {"Content-Type": "text/plain"}, b"unavailable\n"
        return 200, {"Content-Type": "text/html; charset=utf-8"}, b"<!doctype html><title>KubeChat</title>\n"

    def counts(self) -> collections.Counter:
        with self.count_lock:
            return collections.Counter(self.by_hash)


class WebLoad:
    """`rate` requests per second to https://<host>/ through Traefik's HTTPS entry point (the stand-in
    certificate is self-signed: not verified here; the admission tier verifies the issued one)."""

    def __init__(self, address: tuple[str, int], host: str, rate: float = 10.0) -> None:
        self.address, self.host, self.interval = address, host, 1.0 / rate
        self.statuses: collections.Counter = collections.Counter()
        self.stopping = threading.Event()
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _get(self) -> int:
        with socket.create_connection(self.address, timeout=5) as raw, \
                self.context.wrap_socket(raw, server_hostname=self.host) as tls:
            connection = http.client.HTTPConnection(self.host, timeout=5)
            connection.sock = tls
            connection.request("GET", "/", headers={"Host": self.host})
            response = connection.getresponse()
            response.read()
            return response.status

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                status = self._get()
            except (OSError, http.client.HTTPException):
                status = 0  # no route yet, or Traefik reloading: counted as not answered
            self.statuses[status] += 1

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
