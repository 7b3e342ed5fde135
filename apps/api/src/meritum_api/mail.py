"""Sending email: through an SMTP server, or into ``.eml`` files in development.

Both implement ``deps.Mailer``; :func:`make_mailer` picks one from the
settings. Messages are built by the notifications domain; this module only
delivers them.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from urllib.parse import unquote, urlsplit

from meritum_api.settings import Settings


class SmtpMailer:
    """Delivers each message over a fresh SMTP connection (``smtp://`` or ``smtps://``)."""

    def __init__(self, url: str, *, starttls: bool, timeout: float) -> None:
        parsed = urlsplit(url)
        if parsed.hostname is None:
            raise ValueError("the SMTP URL has no host")
        self._implicit_tls = parsed.scheme == "smtps"
        self._host = parsed.hostname
        self._port = parsed.port or (465 if self._implicit_tls else 25)
        self._username = unquote(parsed.username) if parsed.username else None
        self._password = unquote(parsed.password) if parsed.password else None
        self._starttls = starttls
        self._timeout = timeout

    def __repr__(self) -> str:
        # Never the credentials.
        return f"SmtpMailer(host={self._host!r}, port={self._port})"

    def send(self, message: EmailMessage) -> None:
        """Deliver ``message``; raises on any refusal or connection failure."""
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self._implicit_tls:
            client = smtplib.SMTP_SSL(
                self._host, self._port, timeout=self._timeout, context=context
            )
        else:
            client = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        with client:
            if self._starttls:
                client.starttls(context=context)
            if self._username is not None:
                client.login(self._username, self._password or "")
            client.send_message(message)


class FileMailer:
    """Writes each message as ``<Message-ID>.eml`` in a directory (development)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        """Write ``message`` atomically; the same Message-ID overwrites its file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        message_id = str(message["Message-ID"] or "").strip("<>") or os.urandom(8).hex()
        name = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in message_id)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".eml")
        with os.fdopen(fd, "wb") as out:
            out.write(message.as_bytes(policy=SMTP))
        os.replace(tmp, self.directory / f"{name}.eml")


def make_mailer(settings: Settings) -> SmtpMailer | FileMailer | None:
    """SMTP when configured; ``.eml`` files outside production; otherwise none."""
    if settings.smtp_url is not None:
        return SmtpMailer(
            settings.smtp_url,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )
    if settings.environment == "production":
        return None
    return FileMailer(settings.data_dir / "mail")
