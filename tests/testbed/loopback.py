"""Servers the tests run inside their own process on a loopback port (stand-in exporters, the ingress
stand-in, the registry's CONNECT proxy): served from a daemon thread, stopped by `stop()`."""
from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    """Mixed into a stand-in: `_serve_in_background(server)` serves a socketserver bound to 127.0.0.1 from a daemon thread."""

    server: socketserver.BaseServer

    def _serve_in_background(self, server: socketserver.BaseServer) -> None:
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WebhookReceiver(LoopbackServer):
    """An HTTP endpoint on loopback that records every POST it receives (path, headers, JSON body): where a
    test points a notification service (Argo CD notifications, Alertmanager) instead of a chat service."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                with receiver.lock:
                    receiver.received.append({"path": self.path, "headers": dict(self.headers), "raw": body,
                                              "json": parsed})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._serve_in_background(ThreadingHTTPServer(("127.0.0.1", 0), Handler))

    def messages(self) -> list[dict]:
        with self.lock:
            return list(self.received)
