"""Servers the tests run inside their own process on a loopback port (stand-in exporters, the ingress
stand-in, the registry's CONNECT proxy): served from a daemon thread, stopped by `stop()`."""
from __future__ import annotations

import socketserver
import threading


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
