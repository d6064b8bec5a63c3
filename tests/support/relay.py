"""A small TCP relay on loopback in front of an engine's unix socket, that can pass traffic or
black-hole it (accept and read, never answer): what a remote host that vanishes behind a
firewall looks like to a client.

    with Relay("/var/run/docker.sock") as relay:
        url = relay.url            # tcp://127.0.0.1:PORT (loopback: no TLS needed)
        relay.blackhole()          # open connections and new ones stop answering
        relay.passthrough()
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self

__all__ = ["Relay"]


class Relay:
    """Forwards 127.0.0.1:PORT to a unix socket while :attr:`passing` is set."""

    def __init__(self, unix_path: str, port: int = 0) -> None:
        self.unix_path = unix_path
        self._server = socket.create_server(("127.0.0.1", port))
        self.port = self._server.getsockname()[1]
        self._passing = threading.Event()
        self._passing.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="relay-accept").start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def blackhole(self) -> None:
        """From now on, bytes either way are swallowed: every call waits for its timeout."""
        self._passing.clear()

    def passthrough(self) -> None:
        self._passing.set()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(self.unix_path)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True,
                                 name="relay-pump").start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if self._passing.is_set():
                    dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._server.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
