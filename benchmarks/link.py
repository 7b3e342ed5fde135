"""A network link of a given speed for benchmarks: a TCP proxy that paces what the server sends.

Over loopback a download is as fast as the machine's cores, so whatever a
client does besides receiving (checking a digest, handing a file over)
weighs as much as the transfer itself. Between a physician and the
service there is a real link; this proxy gives the server-to-client
direction a fixed rate (a token bucket with one chunk of burst), and passes
the requests unchanged.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import suppress
from types import TracebackType

CHUNK = 64 * 1024


class Link:
    """Forwards 127.0.0.1:``port`` to ``upstream``; answers flow at ``bits_per_second``."""

    def __init__(self, upstream: tuple[str, int], *, bits_per_second: float) -> None:
        self.upstream = upstream
        self.rate = bits_per_second / 8
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []

    def __enter__(self) -> Link:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._listener.close()
        for sock in self._open:
            with suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._open += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._paced, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(CHUNK):
                target.sendall(data)
        with suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def _paced(self, source: socket.socket, target: socket.socket) -> None:
        tokens, last = float(CHUNK), time.monotonic()
        with suppress(OSError):
            while data := source.recv(CHUNK):
                now = time.monotonic()
                tokens = min(float(CHUNK), tokens + (now - last) * self.rate)
                last = now
                if tokens < len(data):
                    time.sleep((len(data) - tokens) / self.rate)
                    tokens, last = 0.0, time.monotonic()
                else:
                    tokens -= len(data)
                target.sendall(data)
        with suppress(OSError):
            target.shutdown(socket.SHUT_WR)
