"""Small secrets sealed under a master key, for the short time a job needs them.

AES-256-GCM with a key derived from the master key by HKDF-SHA256 for one
purpose (so a master key never encrypts two kinds of thing directly), a
random 96-bit nonce, and associated data naming what the secret belongs to:
a sealed value copied to another owner does not open. Errors never carry
the secret, the key or the ciphertext.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from meritum_api.crypto.keys import Keyring

NONCE_BYTES = 12


class SealBroken(ValueError):
    """A sealed value does not open: unknown key, wrong owner, or tampered."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed secret: the master key's id, the nonce, and ciphertext with its tag."""

    key_id: str
    nonce: bytes
    ciphertext: bytes = field(repr=False)


def _purpose_key(master: bytes, purpose: str) -> AESGCM:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"meritum/seal/{purpose}".encode()
    ).derive(master)
    return AESGCM(derived)


def seal(keyring: Keyring, plaintext: bytes, *, purpose: str, associated: bytes) -> Sealed:
    """Encrypt ``plaintext`` under the active master key for ``purpose`` and its owner."""
    key_id, master = keyring.active()
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = _purpose_key(master, purpose).encrypt(nonce, plaintext, associated)
    return Sealed(key_id=key_id, nonce=nonce, ciphertext=ciphertext)


def unseal(keyring: Keyring, sealed: Sealed, *, purpose: str, associated: bytes) -> bytes:
    """The plaintext of ``sealed``; :class:`SealBroken` if it does not open."""
    master = keyring.get(sealed.key_id)
    if master is None:
        raise SealBroken(f"the master key {sealed.key_id!r} is not configured")
    try:
        return _purpose_key(master, purpose).decrypt(sealed.nonce, sealed.ciphertext, associated)
    except InvalidTag:
        raise SealBroken("a sealed value does not open (wrong key, owner or content)") from None
