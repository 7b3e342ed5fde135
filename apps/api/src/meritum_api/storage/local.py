"""Stored bytes in a local directory: the local blob store.

A write goes to a temporary file in ``<root>/.partial/`` (same filesystem), is fsynced,
renamed into place and its directory fsynced: a reader sees the whole object or none,
and a crash leaves at most a temporary file for :meth:`LocalBlobStore.discard_partials`.
Writeback to the disk starts while the file is still being written, so that the final
fsync has little left to wait for. Files are created 0600 and directories 0700;
symlinks are never followed.
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

from meritum_api.storage.base import (
    KEY_PATTERN,
    ListedObject,
    ObjectNotFound,
    StorageError,
    validate_key,
)

#: Temporary files of unfinished writes; keys cannot contain ``.``, so never a key.
PARTIAL_DIR = ".partial"
_PARTIAL_SUFFIX = ".partial"
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)

#: Bytes of sealed segments moved per system call.
_BATCH_BYTES = 1024 * 1024
#: Pieces per writev call, well under every platform's IOV_MAX.
_IOV_MAX = 64
#: Bytes written between two requests to start writeback.
WRITEBACK_BYTES = 8 * 1024 * 1024


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``[offset, offset + length)`` to the disk now.

    On Linux, POSIX_FADV_DONTNEED starts writeback of the range's dirty pages without
    waiting for it (and drops pages already clean; the writer never reads them back).
    The disk then works while the writer is still hashing and sealing, instead of all
    at the final fsync, which stays the durability point. PostgreSQL's ``*_flush_after``
    settings do the same. Only a hint: where it is missing or refused, nothing changes.
    """
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        with contextlib.suppress(OSError):
            advise(fd, offset, length, os.POSIX_FADV_DONTNEED)


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


class _FileReader:
    """Reads ``[start, end)`` of an open file in batches into one reused buffer.

    The buffer is sized on the first request to a whole number of such requests (the
    storage asks for one sealed segment at a time), so batches end on segment bounds.
    """

    def __init__(self, fd: int, start: int, end: int) -> None:
        self._fd = fd
        self._offset = start
        self._end = end
        self._view = memoryview(b"")
        self._filled = 0
        self._used = 0

    def read(self, size: int) -> memoryview:
        if self._used + size > self._filled:
            leftover = self._filled - self._used
            remaining = leftover + self._end - self._offset
            if len(self._view) < leftover + size:
                batch = max(1, _BATCH_BYTES // size) * size
                grown = memoryview(bytearray(min(max(batch, leftover + size), remaining)))
                grown[:leftover] = self._view[self._used : self._filled]
                self._view = grown
            else:
                self._view[:leftover] = self._view[self._used : self._filled]
            self._filled, self._used = leftover, 0
            room = min(len(self._view), remaining)
            with _os_errors("read the object"):
                while self._filled < room:
                    got = os.preadv(self._fd, [self._view[self._filled : room]], self._offset)
                    if not got:
                        break  # the file is shorter than it was: the caller sees a short read
                    self._offset += got
                    self._filled += got
        start = self._used
        self._used = min(start + size, self._filled)
        return self._view[start : self._used]

    def close(self) -> None:
        os.close(self._fd)


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


def _open_regular(path: Path) -> int:
    """A read-only descriptor of the regular file at ``path``; ObjectNotFound otherwise."""
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


class _LocalBlob:
    """A file opened by :meth:`LocalBlobStore.open`: its length, first bytes and identity."""

    def __init__(self, path: Path, info: os.stat_result, head: bytes) -> None:
        self._path = path
        self._identity = (info.st_dev, info.st_ino)
        self.size = info.st_size
        self.head = head

    def reader(self, start: int, end: int) -> _FileReader:
        fd = _open_regular(self._path)
        try:
            with _os_errors("read the object"):
                info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != self._identity:
                raise StorageError("the object was replaced while it was being read")
        except BaseException:
            os.close(fd)
            raise
        return _FileReader(fd, start, end)


class LocalBlobStore:
    """:class:`~meritum_api.storage.blobs.BlobStore` on a local directory."""

    def __init__(self, root: Path | str) -> None:
        # Nothing is created here: a bad root shows up as a StorageError on first use.
        self.root = Path(root).absolute()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

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

    def put(self, key: str, pieces: Iterable[bytes]) -> None:
        """Write ``pieces`` into a temporary file, fsync it, then rename it to ``key``."""
        path = self._path(key)
        partial_dir = self.root / PARTIAL_DIR
        with _os_errors("prepare the write"):
            self._ensure_dir(partial_dir)
            fd, temp_name = tempfile.mkstemp(dir=partial_dir, suffix=_PARTIAL_SUFFIX)
        temp, placed = Path(temp_name), False
        try:
            batch: list[bytes] = []
            batched = written = flushed = 0
            # Exceptions of the caller's pieces pass through unchanged; only our own
            # file operations become StorageErrors.
            for piece in pieces:
                batch.append(piece)
                batched += len(piece)
                if batched >= _BATCH_BYTES:
                    with _os_errors("write the file"):
                        _write_all(fd, batch)
                    batch, written, batched = [], written + batched, 0
                    if written - flushed >= WRITEBACK_BYTES:
                        start_writeback(fd, flushed, written - flushed)
                        flushed = written
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

    # --- reading ---

    def open(self, key: str, head: int) -> _LocalBlob:
        """The file's length, identity and first ``head`` bytes; the file is closed again."""
        path = self._path(key)
        fd = _open_regular(path)
        try:
            with _os_errors("read the object"):
                info = os.fstat(fd)
                first = os.pread(fd, head, 0)
        finally:
            os.close(fd)
        return _LocalBlob(path, info, first)

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
        directory, _, partial = prefix.rpartition("/")
        start = self.root.joinpath(*directory.split("/")) if directory else self.root
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
        cutoff = older_than.timestamp()
        removed = 0
        try:
            with os.scandir(self.root / PARTIAL_DIR) as scan:
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
