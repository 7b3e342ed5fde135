"""What a backend does: move opaque bytes, atomically, under validated keys.

:class:`~meritum_api.storage.encrypted.EncryptedStorage` encrypts, decrypts and
validates; a :class:`BlobStore` only stores what it is given and hands back stored
bytes. Keys reach it already validated. Its errors are :class:`StorageError` and
:class:`ObjectNotFound` and never name a key or a path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Protocol

from meritum_api.storage.base import ListedObject


class BlobReader(Protocol):
    """Sequential reads of one range of one stored version."""

    def read(self, size: int) -> bytes | memoryview:
        """The next ``size`` bytes (fewer only where the object ends); valid until the next call."""
        ...

    def close(self) -> None:
        """Release what the reader holds (a file, a connection)."""
        ...


class Blob(Protocol):
    """One stored version of an object, opened: its length and its first bytes."""

    @property
    def size(self) -> int:
        """Stored length in bytes."""
        ...

    @property
    def head(self) -> bytes:
        """The first bytes, as many as :meth:`BlobStore.open` asked for (fewer if shorter)."""
        ...

    def reader(self, start: int, end: int) -> BlobReader:
        """Bytes ``[start, end)`` of this same version; StorageError if it was replaced."""
        ...


class BlobStore(Protocol):
    """Atomic storage of opaque bytes: a reader sees a whole object or none."""

    def put(self, key: str, pieces: Iterable[bytes]) -> None:
        """Store the concatenation of ``pieces`` under ``key``, replacing any object there.

        All or nothing: when iterating ``pieces`` raises, that exception passes through
        unchanged and nothing new is visible under ``key``.
        """
        ...

    def open(self, key: str, head: int) -> Blob:
        """The finished object under ``key`` with its first ``head`` bytes; ObjectNotFound."""
        ...

    def delete(self, key: str) -> bool:
        """Remove the object; False when it was already missing."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a finished object exists under ``key``."""
        ...

    def list(self, prefix: str) -> Iterator[ListedObject]:
        """Finished objects whose key starts with ``prefix`` (never unfinished writes)."""
        ...

    def discard_partials(self, *, older_than: datetime) -> int:
        """Remove unfinished writes last touched before ``older_than``; return how many."""
        ...
