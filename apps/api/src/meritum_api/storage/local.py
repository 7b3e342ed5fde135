"""Encrypted report files in a local directory.

A write goes to a temporary file in ``<root>/.partial/`` (same filesystem), is fsynced,
renamed into place and its directory fsynced: a reader sees the whole object or none,
and a crash leaves at most a temporary file for :meth:`LocalStorage.discard_partials`.
Files are created 0600 and directories 0700.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from meritum_api.crypto.keys import Keyring
from meritum_api.crypto.streaming import (
    DEFAULT_SEGMENT_SIZE,
    MAX_HEADER_SIZE,
    TAG_SIZE,
    EncryptingStream,
    Header,
    Layout,
    decrypt_range,
    open_header,
)
from meritum_api.storage.base import (
    KEY_PATTERN,
    ListedObject,
    ObjectNotFound,
    StorageError,
    StoredObject,
    check_range,
    integrity_errors,
    validate_cutoff,
    validate_key,
    validate_prefix,
)

#: Temporary files of unfinished writes; keys cannot contain ``.``, so never a key.
PARTIAL_DIR = ".partial"
_PARTIAL_SUFFIX = ".partial"
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)

#: Bytes of sealed segments moved per system call.
_BATCH_BYTES = 1024 * 1024
#: Pieces per writev call, well under every platform's IOV_MAX.
_IOV_MAX = 64


def _write_all(fd: int, pieces: list[bytes]) -> None:
    """Write ``pieces`` in order, with one system call when the kernel takes them all."""
    pending = [memoryview(piece) for piece in pieces if piece]
    while pending:
        written = os.writev(fd, pending[:_IOV_MAX])
        if written <= 0:
            raise OSError(errno.EIO, "the file accepted no bytes")
        while written:
            if written >= len(pending[0]):
                written -= len(pending.pop(0))
            else:
                pending[0], written = pending[0][written:], 0


class _SealedReader:
    """Reads sealed segments in batches into one reused buffer (one system call per batch)."""

    def __init__(self, fd: int, layout: Layout, span: range) -> None:
        sealed = layout.segment_size + TAG_SIZE
        self._fd = fd
        self._offset = layout.offset(span.start)
        self._end = layout.offset(span.stop - 1) + layout.sealed_size(span.stop - 1)
        # A whole number of segments, so that every batch ends on a segment boundary;
        # no bigger than the range needs.
        batch = max(1, _BATCH_BYTES // sealed) * sealed
        self._view = memoryview(bytearray(min(batch, self._end - self._offset)))
        self._filled = 0
        self._used = 0

    def read(self, size: int) -> memoryview:
        """The next ``size`` stored bytes, fewer if the file ends; valid until the next call."""
        if self._used + size > self._filled:
            leftover = self._filled - self._used
            self._view[:leftover] = self._view[self._used : self._filled]
            room = min(len(self._view), leftover + self._end - self._offset)
            with _os_errors("read the object"):
                got = os.preadv(self._fd, [self._view[leftover:room]], self._offset)
            self._offset += got
            self._filled, self._used = leftover + got, 0
        start = self._used
        self._used = min(start + size, self._filled)
        return self._view[start : self._used]


@contextlib.contextmanager
def _os_errors(action: str) -> Iterator[None]:
    """Turn an OSError into a StorageError without the path (it holds the key)."""
    try:
        yield
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, "unknown error")
        raise StorageError(f"could not {action}: {code} ({exc.strerror})") from None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage:
    """:class:`~meritum_api.storage.base.ReportStorage` on a local directory."""

    def __init__(
        self, root: Path | str, keyring: Keyring, *, segment_size: int = DEFAULT_SEGMENT_SIZE
    ) -> None:
        # Nothing is created here: a bad root shows up as a StorageError on first use.
        self._root = Path(root).absolute()
        self._keyring = keyring
        self._segment_size = segment_size

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*validate_key(key).split("/"))

    def _ensure_dir(self, path: Path) -> None:
        """Create ``path`` and its missing parents (0700), fsyncing each new entry."""
        missing: list[Path] = []
        probe = path
        while not probe.is_dir():
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
        for directory in reversed(missing):
            with contextlib.suppress(FileExistsError):  # a concurrent writer made it
                os.mkdir(directory, 0o700)
            _fsync_dir(directory.parent)

    # --- writing ---

    def write(self, key: str, chunks: Iterable[bytes]) -> StoredObject:
        """Encrypt ``chunks`` into a temporary file, then rename it to ``key``."""
        path = self._path(key)
        stream = EncryptingStream(self._keyring, chunks, segment_size=self._segment_size)
        partial_dir = self._root / PARTIAL_DIR
        with _os_errors("prepare the write"):
            self._ensure_dir(partial_dir)
            fd, temp_name = tempfile.mkstemp(dir=partial_dir, suffix=_PARTIAL_SUFFIX)
        temp, placed = Path(temp_name), False
        try:
            batch: list[bytes] = []
            batched = 0
            # Exceptions of the caller's chunks pass through unchanged; only our own
            # file operations become StorageErrors.
            for piece in stream:
                batch.append(piece)
                batched += len(piece)
                if batched >= _BATCH_BYTES:
                    with _os_errors("write the file"):
                        _write_all(fd, batch)
                    batch, batched = [], 0
            with _os_errors("write the file"):
                _write_all(fd, batch)
            with _os_errors("finish the file"):
                os.fsync(fd)
                os.close(fd)
                fd = -1
                self._ensure_dir(path.parent)
                os.replace(temp, path)
                placed = True
                _fsync_dir(path.parent)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                # If only the directory fsync failed, the object is in place but may not
                # survive a crash: take it away so the caller's retry starts clean.
                os.unlink(path if placed else temp)
            raise
        return StoredObject(size=stream.size, sha256=stream.sha256)

    # --- reading ---

    def _open(self, path: Path) -> int:
        with _os_errors("open the object"):
            try:
                fd = os.open(path, _READ_FLAGS)
            except (FileNotFoundError, NotADirectoryError):
                raise ObjectNotFound("no object under this key") from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # a symlink: never one of our objects
                    raise ObjectNotFound("no object under this key") from None
                raise
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise ObjectNotFound("no object under this key")
        return fd

    def _header(self, fd: int) -> tuple[Header, Layout, os.stat_result]:
        with _os_errors("read the object"):
            info = os.fstat(fd)
            head = os.pread(fd, MAX_HEADER_SIZE, 0)
        with integrity_errors():
            header = open_header(self._keyring, head)
            return header, header.layout(info.st_size), info

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Decrypted bytes ``[start, end)``; missing, damaged or bad ranges fail at the call."""
        path = self._path(key)
        fd = self._open(path)
        try:
            header, layout, info = self._header(fd)
        finally:
            os.close(fd)
        start, stop = check_range(start, end, layout.plaintext_size)
        return self._segments(path, (info.st_dev, info.st_ino), header, layout, start, stop)

    def _segments(
        self,
        path: Path,
        identity: tuple[int, int],
        header: Header,
        layout: Layout,
        start: int,
        stop: int,
    ) -> Iterator[bytes]:
        span = layout.span(start, stop)
        if not span:
            return
        # Opened again only when iteration starts, so an unconsumed iterator holds no file.
        fd = self._open(path)
        try:
            with _os_errors("read the object"):
                info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != identity:
                raise StorageError("the object was replaced while it was being read")
            sealed = _SealedReader(fd, layout, span)
            with integrity_errors():
                yield from decrypt_range(header, layout, start, stop, sealed.read)
        finally:
            os.close(fd)

    def size(self, key: str) -> int:
        """Plaintext size from the authenticated header and the file's length."""
        fd = self._open(self._path(key))
        try:
            return self._header(fd)[1].plaintext_size
        finally:
            os.close(fd)

    # --- housekeeping ---

    def delete(self, key: str) -> bool:
        """Unlink the file; False when it was already missing.

        No directory fsync: a deletion lost in a crash leaves a file whose row is gone or
        expired, which the orphan sweep removes.
        """
        path = self._path(key)
        with _os_errors("delete the object"):
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    return False
                os.unlink(path)
            except (FileNotFoundError, NotADirectoryError):
                return False
        return True

    def exists(self, key: str) -> bool:
        """Whether a finished object is stored under ``key``."""
        path = self._path(key)
        with _os_errors("look up the object"):
            try:
                return stat.S_ISREG(os.lstat(path).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                return False

    def list(self, prefix: str) -> Iterator[ListedObject]:
        """Finished objects whose key starts with ``prefix``; temporary files are never listed."""
        validate_prefix(prefix)
        directory, _, partial = prefix.rpartition("/")
        start = self._root.joinpath(*directory.split("/")) if directory else self._root
        base = f"{directory}/" if directory else ""
        return self._walk(start, base, partial)

    def _walk(self, directory: Path, base: str, name_prefix: str) -> Iterator[ListedObject]:
        try:
            with os.scandir(directory) as scan:
                entries = sorted(
                    (e for e in scan if e.name.startswith(name_prefix)), key=lambda e: e.name
                )
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            key = base + entry.name
            if not KEY_PATTERN.fullmatch(key):
                continue  # ``.partial`` and anything else that is not one of our objects
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from self._walk(Path(entry.path), key + "/", "")
                elif entry.is_file(follow_symlinks=False):
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                    yield ListedObject(key=key, modified_at=datetime.fromtimestamp(mtime, UTC))
            except FileNotFoundError:
                continue  # deleted while we looked

    def discard_partials(self, *, older_than: datetime) -> int:
        """Delete temporary files of unfinished writes last written before ``older_than``.

        A write in progress keeps touching its file, so a cutoff well in the past (the
        orphan grace period) never removes a live one.
        """
        cutoff = validate_cutoff(older_than).timestamp()
        removed = 0
        try:
            with os.scandir(self._root / PARTIAL_DIR) as scan:
                entries = [e for e in scan if e.name.endswith(_PARTIAL_SUFFIX)]
        except (FileNotFoundError, NotADirectoryError):
            return 0
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
