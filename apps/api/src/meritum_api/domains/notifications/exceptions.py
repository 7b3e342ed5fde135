"""What the notifications domain raises; mapped to HTTP in ``errors.py``."""

from __future__ import annotations


class NotificationNotFound(Exception):
    """No such notification of this user (another user's id looks the same)."""


class MailNotConfigured(RuntimeError):
    """An email is due but the process has no way to send mail (set MERITUM_SMTP_URL)."""
