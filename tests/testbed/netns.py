"""A network namespace of the test's own where the pods' addresses are local: the tier's pod network.

Kubernetes refuses loopback addresses in EndpointSlices (k8s.io/apimachinery validation IsEndpointIP), so pods
whose Services a proxy must reach cannot have loopback addresses; and a test sends traffic only to loopback
or to network namespaces it creates. So the pods keep kwok's addresses (ControlPlane's pod CIDR) and those
addresses are made local inside a namespace of this test (`ip route add local <cidr> dev lo`, in that
namespace only): whatever runs inside (Traefik) reaches a pod's address on that namespace's loopback, where
the test serves the pod's ports (testbed.pod_network), and nothing leaves the machine.

Between the two namespaces: `forward()` relays TCP connections from a listening address in one to an address
in the other (the API server into the namespace, Traefik's entry points out of it). Sockets are created in
the namespace they belong to by switching the calling thread only (setns(2) with CLONE_NEWNET is per thread),
so the rest of the test process stays where it is. Stopped by `stop()` (the namespace's holder process, the
relays)."""
from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
import time
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_switching = threading.Lock()


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


class PodNetwork:
    def __init__(self, cidr: str) -> None:
        self.cidr = cidr
        self.relays: list[socket.socket] = []
        self.stopping = threading.Event()
        # setpriv --pdeathsig: the holder (and, through enter(), what runs inside) ends with the test process
        # even when that is killed and never calls stop().
        self.holder = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "unshare", "--net", "--", "sleep", "infinity"],
                                       start_new_session=True)
        try:
            own = os.stat("/proc/self/ns/net").st_ino
            deadline = time.monotonic() + 10
            while os.stat(self.path).st_ino == own:  # unshare has not switched yet
                if time.monotonic() > deadline or self.holder.poll() is not None:
                    raise RuntimeError("unshare --net did not start a network namespace")
                time.sleep(0.05)
            for command in (["ip", "link", "set", "lo", "up"], ["ip", "route", "add", "local", cidr, "dev", "lo"]):
                result = subprocess.run(self.enter() + command, capture_output=True, text=True)
                if result.returncode != 0:
                    raise RuntimeError(f"{' '.join(command)} in the pod network failed: {result.stderr}")
        except BaseException:
            self.stop()
            raise

    @property
    def path(self) -> str:
        return f"/proc/{self.holder.pid}/ns/net"

    def enter(self) -> list[str]:
        """The argv prefix that runs a program inside the namespace (setpriv and nsenter exec it: same process;
        it is killed if the test process dies)."""
        return ["setpriv", "--pdeathsig", "KILL", "nsenter", f"--net={self.path}", "--"]

    @contextmanager
    def inside(self):
        """Sockets created in this block belong to the namespace (only the calling thread switches)."""
        with _switching:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            target = os.open(self.path, os.O_RDONLY)
            try:
                _setns(target)
                try:
                    yield
                finally:
                    _setns(own)
            finally:
                os.close(own)
                os.close(target)

    def socket(self, *, inside: bool) -> socket.socket:
        if not inside:
            return socket.socket()
        with self.inside():
            return socket.socket()

    def forward(self, listen: tuple[str, int], listen_inside: bool, to: tuple[str, int], to_inside: bool) -> tuple[str, int]:
        """Relay each connection to `listen` (port 0: any free one) to `to`; returns the listening address."""
        server = self.socket(inside=listen_inside)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(listen)
        server.listen(64)
        self.relays.append(server)

        def pump(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                for s in (sink, source):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()

        def accept() -> None:
            while not self.stopping.is_set():
                try:
                    client, _ = server.accept()
                except OSError:
                    return
                upstream = self.socket(inside=to_inside)
                try:
                    upstream.connect(to)
                except OSError:
                    client.close()
                    upstream.close()
                    continue
                threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
                threading.Thread(target=pump, args=(upstream, client), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return server.getsockname()[:2]

    def stop(self) -> None:
        self.stopping.set()
        for server in self.relays:
            try:
                server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            server.close()
        if self.holder.poll() is None:
            self.holder.terminate()
            self.holder.wait(timeout=10)
