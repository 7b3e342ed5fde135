"""A TCP proxy that drops the connection in the middle of the first full download."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class CuttingProxy:
    """Forwards to ``upstream``; the first download asked without ``Range`` is cut short.

    Browsers send HTTP/1.1 requests one at a time on a connection, so once a
    download request has gone upstream, every byte coming back on that
    connection belongs to its answer: after ``cut_after`` of them the proxy
    holds on until the test sets :attr:`cut_now` (the page has read that
    part), then closes both sides, as a dropped network would leave them.
    """

    def __init__(self, upstream: tuple[str, int], *, cut_after: int) -> None:
        self.upstream = upstream
        self.cut_after = cut_after
        self.cuts = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        #: Set by the test once the page has received the first part: then the cut comes.
        self.cut_now = threading.Event()

    def serve(self) -> None:
        """Accept connections until the listener closes."""
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self._open += [client, upstream]
            armed = threading.Event()
            threading.Thread(
                target=self._requests, args=(client, upstream, armed), daemon=True
            ).start()
            threading.Thread(
                target=self._answers, args=(upstream, client, armed), daemon=True
            ).start()

    def _requests(
        self, client: socket.socket, upstream: socket.socket, armed: threading.Event
    ) -> None:
        with suppress(OSError):
            while data := client.recv(65536):
                head = data.lower()
                if (
                    b"get /api/v1/reports/" in head
                    and b"/download" in head
                    and b"\r\nrange:" not in head
                ):
                    with self._lock:
                        if self.cuts == 0:
                            armed.set()
                upstream.sendall(data)
        with suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _answers(
        self, upstream: socket.socket, client: socket.socket, armed: threading.Event
    ) -> None:
        sent = 0
        with suppress(OSError):
            while data := upstream.recv(65536):
                if armed.is_set():
                    if sent + len(data) >= self.cut_after:
                        client.sendall(data[: self.cut_after - sent])
                        self.cut_now.wait(timeout=60)
                        with self._lock:
                            self.cuts += 1
                        break
                    sent += len(data)
                client.sendall(data)
        for end in (client, upstream):
            # shutdown() first: close() alone would wait for the other thread's recv().
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                end.close()

    def close(self) -> None:
        """Stop accepting and drop every connection."""
        self._listener.close()
        for end in self._open:
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                end.close()


@contextmanager
def cutting_proxy(base_url: str, *, cut_after: int) -> Iterator[CuttingProxy]:
    """A :class:`CuttingProxy` in front of ``base_url`` (``http://127.0.0.1:PORT``)."""
    host, port = base_url.removeprefix("http://").split(":")
    proxy = CuttingProxy((host, int(port)), cut_after=cut_after)
    thread = threading.Thread(target=proxy.serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.close()
        thread.join(timeout=10)
