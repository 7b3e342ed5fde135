"""Encrypted report storage over any blob store: the one place that encrypts and decrypts.

Writes stream through :class:`~meritum_api.crypto.streaming.EncryptingStream` into the
blob store. Reads open the stored version once, authenticate its header, and decrypt
only the segments a range touches, from the bytes already fetched with the header when
the range lies within them (a small report: one request), else from one ranged read of
that same version.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime

from meritum_api.crypto.keys import Keyring
from meritum_api.crypto.streaming import (
    DEFAULT_SEGMENT_SIZE,
    MAX_HEADER_SIZE,
    TAG_SIZE,
    CiphertextError,
    EncryptingStream,
    Header,
    Layout,
    UnknownMasterKey,
    decrypt_range,
    open_header,
)
from meritum_api.storage.base import (
    DamagedObject,
    ListedObject,
    MasterKeyUnavailable,
    StoredObject,
    check_range,
    validate_cutoff,
    validate_key,
    validate_prefix,
)
from meritum_api.storage.blobs import Blob, BlobReader, BlobStore


@contextlib.contextmanager
def _decryption_errors() -> Iterator[None]:
    """Say why a stored object cannot be decrypted, without the details of the format."""
    try:
        yield
    except UnknownMasterKey as exc:
        raise MasterKeyUnavailable(exc.key_id) from None
    except CiphertextError as exc:
        raise DamagedObject(str(exc)) from None


class _HeadReader:
    """Reads from the bytes fetched with the header, from ``start`` on."""

    def __init__(self, head: bytes, start: int) -> None:
        self._view = memoryview(head)
        self._at = start

    def read(self, size: int) -> memoryview:
        self._at += size
        return self._view[self._at - size : self._at]

    def close(self) -> None:
        """Nothing to release: the bytes belong to the opened blob."""


class EncryptedStorage:
    """:class:`~meritum_api.storage.base.ReportStorage`: AES-256-GCM segments in a blob store."""

    def __init__(
        self, blobs: BlobStore, keyring: Keyring, *, segment_size: int = DEFAULT_SEGMENT_SIZE
    ) -> None:
        self.blobs = blobs
        self._keyring = keyring
        self._segment_size = segment_size

    def write(self, key: str, chunks: Iterable[bytes]) -> StoredObject:
        """Encrypt ``chunks`` into the blob store under ``key``, all or nothing."""
        validate_key(key)
        stream = EncryptingStream(self._keyring, chunks, segment_size=self._segment_size)
        # Closing the stream ends its hashing thread even when the store gives up early.
        with contextlib.closing(iter(stream)) as pieces:
            self.blobs.put(key, pieces)
        return StoredObject(size=stream.size, sha256=stream.sha256)

    def _open(self, key: str, head: int) -> tuple[Blob, Header, Layout]:
        blob = self.blobs.open(validate_key(key), head)
        with _decryption_errors():
            header = open_header(self._keyring, blob.head[:MAX_HEADER_SIZE])
            return blob, header, header.layout(blob.size)

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Decrypted bytes ``[start, end)``; a missing, unreadable or damaged object fails here."""
        # The header and, in the same request, the first segment (all of a small report).
        blob, header, layout = self._open(key, MAX_HEADER_SIZE + self._segment_size + TAG_SIZE)
        start, stop = check_range(start, end, layout.plaintext_size)
        return self._plaintext(blob, header, layout, start, stop)

    def _plaintext(
        self, blob: Blob, header: Header, layout: Layout, start: int, stop: int
    ) -> Iterator[bytes]:
        span = layout.span(start, stop)
        if not span:
            return
        first = layout.offset(span.start)
        last = layout.offset(span.stop - 1) + layout.sealed_size(span.stop - 1)
        # Opened only when iteration starts, so an unconsumed iterator holds nothing.
        reader: BlobReader = (
            _HeadReader(blob.head, first) if last <= len(blob.head) else blob.reader(first, last)
        )
        try:
            with _decryption_errors():
                yield from decrypt_range(header, layout, start, stop, reader.read)
        finally:
            reader.close()

    def size(self, key: str) -> int:
        """Plaintext size from the authenticated header and the stored length."""
        return self._open(key, MAX_HEADER_SIZE)[2].plaintext_size

    def delete(self, key: str) -> bool:
        """Remove the object; False when it was already missing."""
        return self.blobs.delete(validate_key(key))

    def exists(self, key: str) -> bool:
        """Whether a finished object is stored under ``key``."""
        return self.blobs.exists(validate_key(key))

    def list(self, prefix: str) -> Iterator[ListedObject]:
        """Finished objects whose key starts with ``prefix``."""
        return self.blobs.list(validate_prefix(prefix))

    def discard_partials(self, *, older_than: datetime) -> int:
        """Remove unfinished writes last touched before ``older_than``; return how many."""
        return self.blobs.discard_partials(older_than=validate_cutoff(older_than))
