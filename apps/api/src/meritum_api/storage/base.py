"""The storage interface callers use, its errors, and key validation.

Report files hold patients' health information: they are stored encrypted
(:mod:`meritum_api.storage.encrypted`), and no error message here ever carries a
storage key or any file content.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

#: Keys are ``/``-separated segments of lowercase letters, digits, ``-`` and ``_``: no
#: empty segment, no ``.`` or ``..``, nothing absolute, nothing a filesystem could
#: read as a path trick.
KEY_PATTERN = re.compile(r"[a-z0-9_-]+(?:/[a-z0-9_-]+)*")
#: A listing prefix: whole segments each followed by ``/``, then an optional partial one.
PREFIX_PATTERN = re.compile(r"(?:[a-z0-9_-]+/)*[a-z0-9_-]*")
MAX_KEY_LENGTH = 256


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What a finished write stored: the plaintext's size and SHA-256 digest."""

    size: int
    sha256: bytes


@dataclass(frozen=True, slots=True)
class ListedObject:
    """A finished object found by :meth:`ReportStorage.list`."""

    key: str
    modified_at: datetime


class StorageError(Exception):
    """A storage operation failed; the message never holds a key or file content."""


class ObjectNotFound(StorageError):
    """No finished object exists under the key."""


class DamagedObject(StorageError):
    """The stored object is tampered with, cut short, extended, reordered or not ours."""


class MasterKeyUnavailable(StorageError):
    """The object's data key is wrapped by a master key that is not configured any more.

    ``key_id`` names that key (ids are not secret); the object itself may be intact.
    """

    def __init__(self, key_id: str) -> None:
        super().__init__(f"the object needs master key {key_id!r}, which is not configured")
        self.key_id = key_id


class InvalidKey(StorageError):
    """The key is not a safe relative storage key."""


class ReportStorage(Protocol):
    """Encrypted, atomic storage of report files under opaque keys.

    Reads fail at the call, before any byte is handed out, when the object is missing
    (:class:`ObjectNotFound`), its header is damaged (:class:`DamagedObject`), its master
    key is gone (:class:`MasterKeyUnavailable`) or the range is outside it (ValueError);
    damage further in shows as :class:`DamagedObject` while iterating.
    """

    def write(self, key: str, chunks: Iterable[bytes]) -> StoredObject:
        """Store the plaintext ``chunks`` under ``key``, all or nothing."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Plaintext bytes ``[start, end)``, decrypting only the segments the range touches."""
        ...

    def size(self, key: str) -> int:
        """Plaintext size, from the header and the stored length (no decryption of content)."""
        ...

    def delete(self, key: str) -> bool:
        """Remove the object; False when it was already missing."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a finished object exists under ``key``."""
        ...

    def list(self, prefix: str) -> Iterator[ListedObject]:
        """Finished objects whose key starts with ``prefix``."""
        ...

    def discard_partials(self, *, older_than: datetime) -> int:
        """Remove unfinished writes last touched before ``older_than``; return how many."""
        ...


def validate_key(key: object) -> str:
    """``key`` itself when it is a safe storage key; InvalidKey otherwise."""
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not KEY_PATTERN.fullmatch(key):
        raise InvalidKey("not a valid storage key")
    return key


def validate_prefix(prefix: object) -> str:
    """``prefix`` itself when it is a safe listing prefix; InvalidKey otherwise."""
    if (
        not isinstance(prefix, str)
        or len(prefix) > MAX_KEY_LENGTH
        or not PREFIX_PATTERN.fullmatch(prefix)
    ):
        raise InvalidKey("not a valid storage key prefix")
    return prefix


def validate_cutoff(older_than: datetime) -> datetime:
    """``older_than`` when it is timezone-aware; naive datetimes are a bug."""
    if older_than.tzinfo is None or older_than.utcoffset() is None:
        raise ValueError("older_than must be timezone-aware")
    return older_than


def check_range(start: int, end: int | None, size: int) -> tuple[int, int]:
    """The half-open range ``[start, end)`` of an object of ``size`` bytes, or ValueError."""
    stop = size if end is None else end
    if not 0 <= start <= stop <= size:
        raise ValueError(f"range [{start}, {stop}) is outside an object of {size} bytes")
    return start, stop
