"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile)."""

from __future__ import annotations

import contextlib
import secrets
from functools import cache
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: Shortest password accepted when an account is created.
MIN_PASSWORD_LENGTH: Final = 12
#: Longest password hashed: hashing cost must not be the client's to choose.
MAX_PASSWORD_LENGTH: Final = 1024

_hasher: Final = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string, salted) of ``password``."""
    return _hasher.hash(password)


@cache
def _dummy_hash() -> str:
    # A hash of a random password with the current parameters, made once.
    return _hasher.hash(secrets.token_urlsafe(32))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``.

    With no stored hash (an unknown email) a dummy hash is verified instead,
    so that both failures cost one argon2 verification: the response time
    does not tell whether an account exists.
    """
    if stored_hash is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_dummy_hash(), password)
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
