"""Keeping secrets and PHI out of every log line.

:class:`RedactingFilter` masks session cookies, ``Authorization`` headers,
passwords, tokens (by key, and any long random-looking run of URL-safe
characters) and nine-digit PHN-like numbers, in the message, its arguments,
the exception text and the stack. :func:`install_log_redaction` applies it
to *every* record the process creates (through the record factory), so it
holds whichever handlers uvicorn, procrastinate or a test install later.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

MASK: Final = "[REDACTED]"

#: The current request's id, added to log records as ``request_id``.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "meritum_request_id", default=None
)

_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    # Whole header values: a cookie or credential header, however it is quoted
    # (atomic groups and the look-ahead keep a second pass from re-masking).
    (
        re.compile(
            r"(?i)((?:set-)?cookie|authorization|x-csrf-token)"
            r"((?>['\"]?\s*[:=,]\s*\(?\s*(?:b?['\"])?))(?!\[REDACTED\])[^'\"\n\r)]*"
        ),
        rf"\1\2{MASK}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {MASK}"),
    (re.compile(r"(?i)(meritum_session=)[^;,\s'\"]*"), rf"\1{MASK}"),
    # key=value, key: value and "key": "value" for secret-bearing keys.
    # A value may hold spaces: a quoted one is masked up to its closing quote,
    # a bare one up to the next separator or the end of the line.
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|token|csrf_token|api_key|session)"
            r"(?>['\"]?\s*[:=]\s*))(?!\[REDACTED\])(?:'[^']*'|\"[^\"]*\"|[^'\"&,;}\r\n]*)"
        ),
        rf"\1{MASK}",
    ),
    # A long run of URL-safe characters: what session and CSRF tokens look like.
    # Lower-case hex (a SHA-256 digest) is left readable: a random token is
    # practically never all hex.
    (
        re.compile(
            r"(?<![A-Za-z0-9_-])(?![0-9a-f]+(?![A-Za-z0-9_-]))[A-Za-z0-9_-]{40,}(?![A-Za-z0-9_-])"
        ),
        MASK,
    ),
    # Nine digits on their own: an Alberta PHN, or something that could be one.
    # Hex digits around them mean a UUID or a digest (the last group of a
    # report id can hold nine decimal digits), which must stay readable.
    (re.compile(r"(?<![0-9A-Fa-f])\d{9}(?![0-9A-Fa-f])"), "[PHN]"),
)


def redact(text: str) -> str:
    """``text`` with secrets and PHN-like numbers masked (idempotent)."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_arg(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | float) or value is None:
        return value
    if isinstance(value, int):
        return value if redact(str(value)) == str(value) else "[PHN]"
    rendered = str(value)
    redacted = redact(rendered)
    return value if redacted == rendered else redacted


class RedactingFilter(logging.Filter):
    """Masks secrets and PHI in a record, in place; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_meritum_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what can be shown
            message = str(record.msg)
            record.args = None
        redacted = redact(message)
        if redacted != message:
            # Prefer redacting the arguments one by one: formatters such as
            # uvicorn's access log read ``record.args`` as a tuple.
            args = record.args
            if isinstance(args, tuple):
                record.args = tuple(_redact_arg(a) for a in args)
            elif isinstance(args, Mapping):
                record.args = {k: _redact_arg(v) for k, v in args.items()}
            if isinstance(record.msg, str):
                record.msg = redact(record.msg)
            try:
                clean = record.getMessage() == redact(record.getMessage())
            except Exception:
                clean = False
            if not clean:
                record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        if not hasattr(record, "request_id"):
            setattr(record, "request_id", request_id_var.get())  # noqa: B010
        setattr(record, "_meritum_redacted", True)  # noqa: B010
        return True


_install_lock = threading.Lock()
_installed = False


def install_log_redaction() -> None:
    """Redact every log record of this process as it is created (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
        redacting = RedactingFilter()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            redacting.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
