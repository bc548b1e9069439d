"""Pods' ports in the tier's pod network (testbed.netns): what stands in for the containers kwok does not run, and
for the network between one client (Traefik) and them. For each ready pod a label selector picks, an HTTP server
of the test is bound to the pod's address (local inside the pod network) on each of its first container's
ports, and answers as `respond` says. A request the NetworkPolicies on the cluster
would drop between the client and that pod and port (as the project's NetworkPolicy model evaluates them,
kubechat_tools.netpol: no CNI runs here) gets no answer: the connection is closed. Every request is recorded.
Stopped by `stop()` (its servers and its watcher thread)."""
from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kubechat_tools import netpol
from testbed.controlplane import ControlPlane
from testbed.netns import PodNetwork


@dataclass(frozen=True)
class Request:
    pod: str
    namespace: str
    port: int
    host: str
    path: str
    status: int
    """0: no answer (dropped by the NetworkPolicies, or nothing listens on that port)."""


Respond = Callable[[dict, int, BaseHTTPRequestHandler], "tuple[int, dict[str, str], bytes] | None"]
"""(pod as the API server stores it, port, the request) -> (status, headers, body), or None: no process
listens on that port (the connection is closed unanswered)."""


class PodServer(ThreadingHTTPServer):
    """A pod's port: `close()` also ends the connections it accepted, as the pod's end would (a proxy keeps
    connections to a backend address open and would otherwise reach a deleted pod's handler through one after
    kwok gave that address to another pod)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args, **kwargs) -> None:
        self.connections: set = set()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        self.connections.discard(request)
        super().shutdown_request(request)

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        for connection in list(self.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def ready(pod: dict) -> bool:
    return bool(pod.get("status", {}).get("podIP")) and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


class PodPorts:
    def __init__(self, plane: ControlPlane, network: PodNetwork, client: netpol.Endpoint, selector: str,
                 respond: Respond) -> None:
        self.plane, self.network, self.client, self.selector, self.respond = plane, network, client, selector, respond
        self.requests: list[Request] = []
        self.servers: dict[tuple[str, int], tuple[str, PodServer]] = {}
        """(pod address, port) -> (the pod's uid, its server)."""
        self.names: dict[str, tuple[str, str]] = {}
        """A served pod's uid -> (namespace, name)."""
        self.policies: list[dict] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sync()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.stopping.wait(1.0):
            try:
                self.sync()
            except Exception:  # the API server is busy: try again
                continue

    def sync(self) -> None:
        """Serve every ready pod the selector picks, and stop serving pods that are gone (kwok hands a deleted
        pod's address to the next pod); refresh the NetworkPolicies."""
        self.policies = json.loads(self.plane.kubectl("get", "networkpolicy", "--all-namespaces", "-o", "json").stdout)["items"]
        pods = json.loads(self.plane.kubectl("get", "pods", "--all-namespaces", "-l", self.selector, "-o", "json").stdout)["items"]
        wanted = {(pod["status"]["podIP"], p["containerPort"]): pod for pod in filter(ready, pods)
                  for p in pod["spec"]["containers"][0].get("ports", [])}
        with self.lock:
            if self.stopping.is_set():  # stop() has closed every server: serve nothing more
                return
            for key, (uid, server) in list(self.servers.items()):
                if key not in wanted or wanted[key]["metadata"]["uid"] != uid:
                    server.close()
                    del self.servers[key]
            for key, pod in wanted.items():
                if key not in self.servers:
                    self.servers[key] = (pod["metadata"]["uid"], self._serve(pod, key[1]))
                    self.names[pod["metadata"]["uid"]] = (pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _serve(self, pod: dict, port: int) -> PodServer:
        ports = self
        container = pod["spec"]["containers"][0]
        destination = netpol.Endpoint(pod["metadata"]["name"], pod["metadata"]["namespace"],
                                      labels=pod["metadata"].get("labels", {}),
                                      ports={p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p})

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                record = dict(pod=pod["metadata"]["name"], namespace=pod["metadata"]["namespace"], port=port,
                              host=self.headers.get("Host", ""), path=self.path)
                if not netpol.allowed(ports.policies, ports.client, destination, port):
                    with ports.lock:
                        ports.requests.append(Request(**record, status=0))
                    self.close_connection = True
                    return
                answer = ports.respond(pod, port, self)
                with ports.lock:
                    ports.requests.append(Request(**record, status=answer[0] if answer else 0))
                if answer is None:
                    self.close_connection = True
                    return
                status, headers, body = answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815 (http.server's names)

            def log_message(self, *args) -> None:
                pass

        with self.network.inside():
            server = PodServer((pod["status"]["podIP"], port), Handler, bind_and_activate=False)
        server.server_bind()
        server.server_activate()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def pod_of(self, key: tuple[str, int]) -> tuple[str, str]:
        """(namespace, name) of the pod whose port `key` (address, port) serves; call with `lock` held."""
        return self.names[self.servers[key][0]]

    def served(self) -> list[Request]:
        with self.lock:
            return list(self.requests)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=120)
        with self.lock:
            for _, server in self.servers.values():
                server.close()
            self.servers.clear()
