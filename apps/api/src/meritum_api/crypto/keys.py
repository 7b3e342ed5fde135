"""Master keys: the one that wraps new files' data keys, and every one old files may name.

Configured keys come from ``MERITUM_MASTER_KEYS`` (JSON ``{"key id": "base64 of 32 bytes"}``).
Development and test may run without them: a key is then generated once under
``<data_dir>/keys/`` and reused on every later start. Production never generates a key.
Error messages name key ids (which are not secret), never key material.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from meritum_api.settings import Settings

MASTER_KEY_BYTES = 32
#: Key ids are stored in every file's header: short, printable, unambiguous.
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_KEY_FILE_SUFFIX = ".key"


class KeyringError(ValueError):
    """The master-key configuration cannot be used; says why without showing any key."""


@dataclass(frozen=True, slots=True)
class Keyring:
    """Master keys by id, and the id of the one that wraps new files."""

    keys: Mapping[str, bytes] = field(repr=False)
    active_id: str

    def __post_init__(self) -> None:
        for key_id, key in self.keys.items():
            if not KEY_ID_PATTERN.fullmatch(key_id):
                raise KeyringError(
                    f"master key id {key_id!r} is not 1-64 letters, digits, '.', '_' or '-'"
                )
            if len(key) != MASTER_KEY_BYTES:
                raise KeyringError(
                    f"master key {key_id!r} must be {MASTER_KEY_BYTES} bytes, not {len(key)}"
                )
        if self.active_id not in self.keys:
            raise KeyringError(f"the active key id {self.active_id!r} is not among the master keys")
        # A private copy, read-only: nobody can swap a key behind the storage's back.
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    def active(self) -> tuple[str, bytes]:
        """The id and key that wrap new files."""
        return self.active_id, self.keys[self.active_id]

    def get(self, key_id: str) -> bytes | None:
        """The key of ``key_id``, or None when this keyring does not hold it."""
        return self.keys.get(key_id)


def load_keyring(settings: Settings) -> Keyring:
    """The keyring of ``settings``; in development or test, a generated local key if none is set."""
    if settings.master_keys:
        keys = {key_id: _decode(key_id, value) for key_id, value in settings.master_keys.items()}
        return Keyring(keys=keys, active_id=_choose_active(keys, settings.active_key_id))
    if settings.environment == "production":
        raise KeyringError(
            "no master keys are configured: set MERITUM_MASTER_KEYS "
            '(JSON {"key id": "base64 of 32 bytes"}); production never generates a key'
        )
    return _local_keyring(settings.data_dir / "keys", settings.active_key_id)


def _decode(key_id: str, value: str) -> bytes:
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"master key {key_id!r} is not valid base64") from None
    if len(key) != MASTER_KEY_BYTES:
        raise KeyringError(
            f"master key {key_id!r} must decode to {MASTER_KEY_BYTES} bytes, not {len(key)}"
        )
    return key


def _choose_active(keys: Mapping[str, bytes], requested: str | None) -> str:
    if requested is not None:
        if requested not in keys:
            raise KeyringError(f"the active key id {requested!r} is not among the master keys")
        return requested
    if len(keys) == 1:
        return next(iter(keys))
    raise KeyringError(
        f"{len(keys)} master keys are configured and none is named active: "
        "set MERITUM_ACTIVE_KEY_ID to the one that wraps new files"
    )


def _local_keyring(directory: Path, requested: str | None) -> Keyring:
    """Keys generated on this machine for development; the newest wraps new files."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    # Several processes (server, workers) may start together: the lock makes exactly
    # one of them generate the key and the others read it.
    with _exclusive_lock(directory / ".lock"):
        keys = _read_key_files(directory)
        if not keys:
            key_id = f"local-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
            keys[key_id] = os.urandom(MASTER_KEY_BYTES)
            _write_key_file(directory, key_id, keys[key_id])
    # Generated ids start with their UTC creation time: the greatest is the newest.
    return Keyring(keys=keys, active_id=_choose_active(keys, requested or max(keys)))


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read_key_files(directory: Path) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for path in sorted(directory.glob(f"*{_KEY_FILE_SUFFIX}")):
        key_id = path.name.removesuffix(_KEY_FILE_SUFFIX)
        if not KEY_ID_PATTERN.fullmatch(key_id):
            raise KeyringError(f"the local key file {path.name!r} does not name a valid key id")
        keys[key_id] = _decode(key_id, path.read_text(encoding="ascii", errors="replace"))
    return keys


def _write_key_file(directory: Path, key_id: str, key: bytes) -> None:
    """Write the key with mode 0600, whole or not at all (temp file, fsync, rename)."""
    final = directory / f"{key_id}{_KEY_FILE_SUFFIX}"
    temp = directory / f".{key_id}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # in case a crashed start left the temp file behind
        os.write(fd, base64.b64encode(key) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, final)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
