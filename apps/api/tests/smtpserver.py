"""A real SMTP server on loopback for tests (aiosmtpd), keeping every message it accepts."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Inbox:
    """What the server accepted: one (recipients, message) per DATA."""

    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 Message accepted for delivery"  # aiosmtpd's hook name, above

    def messages(self) -> list[EmailMessage]:
        """Every accepted message, parsed."""
        with self.lock:
            raw = [content for _, content in self.received]
        parsed = [message_from_bytes(content, policy=policy.default) for content in raw]
        return [m for m in parsed if isinstance(m, EmailMessage)]

    def count(self) -> int:
        with self.lock:
            return len(self.received)


def free_port() -> int:
    """A loopback port nobody listens on (for an SMTP server that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def smtp_server(inbox: Inbox, port: int | None = None) -> Iterator[int]:
    """Serve SMTP on 127.0.0.1 (``port`` or a free one) until the block ends; yields the port."""
    chosen = port if port is not None else free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=chosen)
    controller.start()
    try:
        yield chosen
    finally:
        controller.stop()
