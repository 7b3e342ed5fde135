"""The encrypted file format: AES-256-GCM over fixed-size segments, readable by range.

This is the construction of Tink's AES-GCM-HKDF streaming AEAD, except that each file's
data key is random and wrapped by a master key instead of derived from it. A stored
object is::

    header | segment 0 | segment 1 | ... | segment n-1

    header = magic "MRPT" (4) | format version (1) | segment size (4, big-endian)
             | key id length (1) | key id | nonce prefix (7) | wrap nonce (12)
             | data key wrapped by the master key (32 + 16-byte tag)

Every segment but the last holds exactly ``segment size`` plaintext bytes; the last holds
1 to ``segment size`` bytes, or none when the whole plaintext is empty. Each segment is
stored as its ciphertext followed by a 16-byte GCM tag, so the plaintext size and the
offset of every segment follow from the object's length: ``size()`` and a ranged read
need only the header and the segments the range touches.

Authentication: unwrapping the data key authenticates every header field (they are the
wrap's associated data, or the wrap itself); every segment's associated data is the whole
header. Nothing decrypted is ever returned before its segment's tag has been checked.
"""

from __future__ import annotations

import hashlib
import os
import queue
import struct
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from meritum_api.crypto.keys import KEY_ID_PATTERN, Keyring

MAGIC = b"MRPT"
FORMAT_VERSION = 1
TAG_SIZE = 16
NONCE_PREFIX_SIZE = 7
WRAP_NONCE_SIZE = 12
DATA_KEY_SIZE = 32
DEFAULT_SEGMENT_SIZE = 64 * 1024
MIN_SEGMENT_SIZE = 16
MAX_SEGMENT_SIZE = 8 * 1024 * 1024
MAX_KEY_ID_SIZE = 64
#: magic, format version, segment size, key id length
_PREAMBLE = struct.Struct(">4sBIB")
_FIXED_HEADER_SIZE = _PREAMBLE.size + NONCE_PREFIX_SIZE + WRAP_NONCE_SIZE + DATA_KEY_SIZE + TAG_SIZE
#: Reading this many bytes from the start of an object always yields its whole header.
MAX_HEADER_SIZE = _FIXED_HEADER_SIZE + MAX_KEY_ID_SIZE
#: The segment index is 32 bits wide in the nonce.
MAX_SEGMENTS = 2**32
#: Plaintext hashed per hand-over to the hashing thread (rounded to whole segments).
HASH_BATCH_SIZE = 1024 * 1024
#: Batches of plaintext a write holds at once: filling, sealing, queued or being hashed.
HASH_BATCHES = 3
#: Below this, a plaintext that fits one batch is hashed on the caller's thread.
INLINE_HASH_SIZE = 256 * 1024


class CiphertextError(Exception):
    """The bytes are damaged, cut short, extended, reordered, or under a key we do not hold."""


class UnknownMasterKey(CiphertextError):
    """The header names a well-formed master key id that the keyring does not hold."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"the object is wrapped by master key {key_id!r}, which is not configured")
        self.key_id = key_id


def _segment_nonce(prefix: bytes, index: int, *, last: bool) -> bytes:
    # The 96-bit GCM nonce is: random 7-byte prefix || segment index (32-bit big-endian)
    # || last-segment flag (1 byte). The index binds each segment to its position, so
    # swapping, dropping or duplicating segments fails authentication. The flag marks the
    # final segment: cutting the file at a segment boundary leaves a final segment that was
    # sealed as "not last", and appending after the real end follows one sealed as "last";
    # both fail. The data key is fresh per file, so no nonce repeats under a key; the random
    # prefix keeps nonces apart even if a data key were ever reused. (Tink's layout.)
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each segment of one stored object lies, from its header and total length."""

    header_size: int
    segment_size: int
    segment_count: int
    plaintext_size: int

    def offset(self, index: int) -> int:
        """Byte offset of segment ``index`` in the stored object."""
        return self.header_size + index * (self.segment_size + TAG_SIZE)

    def sealed_size(self, index: int) -> int:
        """Stored size (ciphertext and tag) of segment ``index``."""
        if index < self.segment_count - 1:
            return self.segment_size + TAG_SIZE
        return self.plaintext_size - index * self.segment_size + TAG_SIZE

    def span(self, start: int, end: int) -> range:
        """Segments to decrypt for plaintext ``[start, end)``.

        A range that reaches the end of the plaintext always includes the last segment,
        even when it contributes no byte: so every read that reaches the end, and every
        full read, proves the object was neither cut short nor extended.
        """
        if end == self.plaintext_size:
            last = self.segment_count - 1
        elif end > start:
            last = (end - 1) // self.segment_size
        else:
            return range(0)
        return range(min(start // self.segment_size, last), last + 1)


@dataclass(frozen=True, slots=True, eq=False)
class Header:
    """An authenticated header: which segment size, and the data key to open segments with."""

    raw: bytes = field(repr=False)
    key_id: str
    segment_size: int
    nonce_prefix: bytes = field(repr=False)
    aead: AESGCM = field(repr=False)

    @property
    def size(self) -> int:
        """Length of the header in bytes."""
        return len(self.raw)

    def layout(self, stored_size: int) -> Layout:
        """The segment layout of an object of ``stored_size`` bytes with this header."""
        body = stored_size - self.size
        sealed = self.segment_size + TAG_SIZE
        if body < TAG_SIZE:
            raise CiphertextError("the object is shorter than its header and one segment")
        count = -(-body // sealed)
        last = body - (count - 1) * sealed
        if last < TAG_SIZE or (count > 1 and last == TAG_SIZE) or count > MAX_SEGMENTS:
            # A writer never produces these lengths: the object was cut or extended.
            raise CiphertextError("the object's length does not match whole segments")
        return Layout(
            header_size=self.size,
            segment_size=self.segment_size,
            segment_count=count,
            plaintext_size=body - count * TAG_SIZE,
        )

    def open_segment(self, index: int, sealed: bytes | memoryview, *, last: bool) -> bytes:
        """The plaintext of one segment, or CiphertextError: never unauthenticated bytes."""
        nonce = _segment_nonce(self.nonce_prefix, index, last=last)
        try:
            return self.aead.decrypt(nonce, sealed, self.raw)
        except InvalidTag:
            raise CiphertextError("a segment failed authentication") from None


def open_header(keyring: Keyring, data: bytes) -> Header:
    """Parse and authenticate the header at the start of ``data``.

    ``data`` is the object's first :data:`MAX_HEADER_SIZE` bytes (all of it when shorter).
    """
    if len(data) < _PREAMBLE.size:
        raise CiphertextError("the object is too short to hold a header")
    magic, version, segment_size, id_size = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise CiphertextError("the object is not in the encrypted report format")
    if version != FORMAT_VERSION:
        raise CiphertextError("the object's format version is not supported")
    size = _FIXED_HEADER_SIZE + id_size
    if (
        not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE
        or not 1 <= id_size <= MAX_KEY_ID_SIZE
        or len(data) < size
    ):
        raise CiphertextError("the object's header is malformed")
    raw = bytes(data[:size])
    at = _PREAMBLE.size
    key_id = raw[at : at + id_size].decode("ascii", errors="replace")
    if not KEY_ID_PATTERN.fullmatch(key_id):
        # No keyring holds such an id, so no writer wrote it: the header is damaged. Only
        # well-formed ids ever reach an error message or a log line.
        raise CiphertextError("the object's header is malformed")
    at += id_size
    nonce_prefix = raw[at : at + NONCE_PREFIX_SIZE]
    bound = raw[: at + NONCE_PREFIX_SIZE]
    at += NONCE_PREFIX_SIZE
    wrap_nonce, wrapped = raw[at : at + WRAP_NONCE_SIZE], raw[at + WRAP_NONCE_SIZE :]
    master = keyring.get(key_id)
    if master is None:
        raise UnknownMasterKey(key_id)
    try:
        data_key = AESGCM(master).decrypt(wrap_nonce, wrapped, bound)
    except InvalidTag:
        raise CiphertextError("the object's header failed authentication") from None
    return Header(
        raw=raw,
        key_id=key_id,
        segment_size=segment_size,
        nonce_prefix=nonce_prefix,
        aead=AESGCM(data_key),
    )


class _BackgroundHash:
    """SHA-256 of plaintext batches on a thread of its own, over a bounded pool of buffers.

    hashlib releases the GIL while it hashes a large buffer, so the digest (the costliest
    step of a write, several times slower than AES-GCM) runs on a second core while the
    caller's thread seals and stores, and goes on while the store makes the file durable:
    only :meth:`digest` waits for it. A buffer returns to the pool once hashed and the
    writer waits for a free one, so memory stays at ``count`` buffers whatever the size
    of the plaintext. Buffers and the thread are made only when needed; a small report
    is hashed on the caller's thread.
    """

    def __init__(self, *, count: int, size: int) -> None:
        self._size = size
        self._unmade = count
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._work: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        self._hash = hashlib.sha256()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._ended = False

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            buffer, length = item
            if self._failure is None:
                try:
                    self._hash.update(memoryview(buffer)[:length])
                except BaseException as exc:  # kept for digest(): the writer must not hang
                    self._failure = exc
            self._free.put(buffer)

    def buffer(self) -> bytearray:
        """A buffer to fill: a new one while the pool has room, else the next one hashed."""
        if self._unmade:
            self._unmade -= 1
            return bytearray(self._size)
        return self._free.get()

    def submit(self, buffer: bytearray, length: int) -> None:
        """Hash the first ``length`` bytes of ``buffer``, after everything submitted before."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
            self._thread.start()
        self._work.put((buffer, length))

    def end(self, buffer: bytearray, length: int) -> None:
        """Hash the last batch too and let the thread end once done; returns at once."""
        if self._thread is None and length < INLINE_HASH_SIZE:
            self._hash.update(memoryview(buffer)[:length])  # cheaper than starting a thread
        else:
            self.submit(buffer, length)
        self.stop(wait=False)

    def stop(self, *, wait: bool = True) -> None:
        """Let the thread finish what it was given and end; safe to call again."""
        if self._thread is None:
            return
        if not self._ended:
            self._ended = True
            self._work.put(None)
        if wait:
            self._thread.join()

    def digest(self) -> bytes:
        """The digest of everything submitted, once the thread has hashed it all."""
        self.stop()
        if self._failure is not None:
            raise self._failure
        return self._hash.digest()


class EncryptingStream:
    """Encrypts a stream of plaintext chunks: iterating yields the header, then each segment.

    Plaintext is copied into batches of whole segments (:data:`HASH_BATCH_SIZE`); each
    batch is hashed on a second thread while this one seals it, and at most
    :data:`HASH_BATCHES` batches are held at once, whatever the chunk sizes. Once iteration
    has finished, :attr:`size` and :attr:`sha256` describe the plaintext.
    """

    def __init__(
        self,
        keyring: Keyring,
        chunks: Iterable[bytes | bytearray | memoryview],
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
    ) -> None:
        if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
            raise ValueError(f"segment size must be {MIN_SEGMENT_SIZE}..{MAX_SEGMENT_SIZE} bytes")
        key_id, master = keyring.active()
        encoded_id = key_id.encode("ascii")
        data_key = AESGCM.generate_key(bit_length=256)
        self._nonce_prefix = os.urandom(NONCE_PREFIX_SIZE)
        bound = (
            _PREAMBLE.pack(MAGIC, FORMAT_VERSION, segment_size, len(encoded_id))
            + encoded_id
            + self._nonce_prefix
        )
        # Wrapping the data key with everything before it as associated data binds the
        # key id, format version, segment size and nonce prefix to the key: a reader who
        # unwraps it has authenticated the whole header. A random 96-bit nonce per file
        # is safe under one master key far beyond any plausible number of reports.
        wrap_nonce = os.urandom(WRAP_NONCE_SIZE)
        wrapped = AESGCM(master).encrypt(wrap_nonce, data_key, bound)
        self.header = bound + wrap_nonce + wrapped
        self._aead = AESGCM(data_key)
        self._chunks = chunks
        self._segment_size = segment_size
        self._size = 0
        self._hasher: _BackgroundHash | None = None
        self._started = False
        self._finished = False

    @property
    def size(self) -> int:
        """Plaintext bytes encrypted; only once the stream is exhausted."""
        self._check_finished()
        return self._size

    @property
    def sha256(self) -> bytes:
        """SHA-256 digest of the plaintext; only once the stream is exhausted.

        Waits for the hashing thread, which may still be at the last batches.
        """
        self._check_finished()
        assert self._hasher is not None
        return self._hasher.digest()

    def _check_finished(self) -> None:
        if not self._finished:
            raise RuntimeError("the stream has not been encrypted to its end")

    def __iter__(self) -> Generator[bytes, None, None]:
        if self._started:
            raise RuntimeError("an encrypting stream can be iterated only once")
        self._started = True
        return self._seal_all()

    def _seal(self, batch: memoryview, first: int, *, last: bool) -> list[bytes]:
        """The sealed segments of ``batch``, whose first is segment ``first``.

        ``last``: the batch ends the plaintext, so its final segment is sealed as the last.
        """
        size = self._segment_size
        count = max(1, -(-len(batch) // size))
        if first + count > MAX_SEGMENTS:
            raise ValueError("the plaintext is too large for this format")
        return [
            self._aead.encrypt(
                _segment_nonce(self._nonce_prefix, first + n, last=last and n == count - 1),
                batch[n * size : (n + 1) * size],
                self.header,
            )
            for n in range(count)
        ]

    def _seal_all(self) -> Generator[bytes, None, None]:
        yield self.header
        batch_size = max(1, HASH_BATCH_SIZE // self._segment_size) * self._segment_size
        hasher = self._hasher = _BackgroundHash(count=HASH_BATCHES, size=batch_size)
        completed = False
        try:
            index = 0
            buffer, filled = hasher.buffer(), 0
            # The plaintext is copied: a caller may refill its chunk's buffer as soon as
            # the next chunk is asked for, while the copy may not be hashed yet. A full
            # batch is held back until more plaintext arrives: only the end of the input
            # tells whether its final segment is the last one.
            for chunk in self._chunks:
                view = memoryview(chunk).cast("B")
                self._size += len(view)
                while view:
                    if filled == batch_size:
                        hasher.submit(buffer, filled)
                        yield from self._seal(memoryview(buffer), index, last=False)
                        index += filled // self._segment_size
                        buffer, filled = hasher.buffer(), 0
                    taken = min(batch_size - filled, len(view))
                    buffer[filled : filled + taken] = view[:taken]
                    filled += taken
                    view = view[taken:]
            tail = self._seal(memoryview(buffer)[:filled], index, last=True)
            hasher.end(buffer, filled)
            self._finished = completed = True
            yield from tail
        finally:
            if not completed:
                hasher.stop()


def decrypt_range(
    header: Header,
    layout: Layout,
    start: int,
    end: int,
    read_sealed: Callable[[int], bytes | memoryview],
) -> Iterator[bytes]:
    """Plaintext ``[start, end)``, one segment at a time.

    ``read_sealed(n)`` returns the next ``n`` stored bytes, starting at the first segment
    of ``layout.span(start, end)``; fewer bytes than asked means the object was cut short.
    """
    span = layout.span(start, end)
    size = layout.segment_size
    for index in span:
        wanted = layout.sealed_size(index)
        sealed = read_sealed(wanted)
        if len(sealed) != wanted:
            raise CiphertextError("the object ended in the middle of a segment")
        plaintext = header.open_segment(index, sealed, last=index == layout.segment_count - 1)
        base = index * size
        low, high = max(start - base, 0), min(end - base, len(plaintext))
        if low == 0 and high == len(plaintext):
            if plaintext:
                yield plaintext
        elif high > low:
            yield plaintext[low:high]
