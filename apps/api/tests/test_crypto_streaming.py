"""The encrypted format refuses every damaged object, and never hands out damaged plaintext."""

from __future__ import annotations

import base64
import hashlib
import itertools
import stat
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from meritum_api.crypto.keys import KEY_ID_PATTERN, Keyring, KeyringError, load_keyring
from meritum_api.crypto.streaming import (
    DEFAULT_SEGMENT_SIZE,
    HASH_BATCH_SIZE,
    MAX_HEADER_SIZE,
    TAG_SIZE,
    EncryptingStream,
    Layout,
    decrypt_range,
    open_header,
)
from meritum_api.settings import Settings
from meritum_api.storage.base import DamagedObject, MasterKeyUnavailable, ObjectNotFound
from meritum_api.storage.encrypted import EncryptedStorage
from meritum_api.storage.local import LocalBlobStore
from polling import wait_until

SEGMENT = DEFAULT_SEGMENT_SIZE
K1 = Keyring(keys={"k1": bytes(range(32))}, active_id="k1")
K2_KEY = bytes(range(100, 132))
#: Five full segments and a short last one: room for a damaged middle with intact sides.
PLAINTEXT = b"".join(b"%08d,4567890123,SMITH,JANE,03.03A,37.85\r\n" % n for n in range(9000))[
    : 5 * SEGMENT + 777
]


def local_storage(root: Path, keyring: Keyring) -> EncryptedStorage:
    return EncryptedStorage(LocalBlobStore(root), keyring)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def storage(root: Path) -> EncryptedStorage:
    return local_storage(root, K1)


@pytest.fixture
def stored(storage: EncryptedStorage, root: Path) -> tuple[str, Path]:
    """A multi-segment object and the file that holds it."""
    key = "reports/p/r"
    storage.write(key, [PLAINTEXT])
    return key, root / "reports" / "p" / "r"


def layout_of(path: Path, keyring: Keyring = K1) -> Layout:
    data = path.read_bytes()
    return open_header(keyring, data[:MAX_HEADER_SIZE]).layout(len(data))


def read_until_failure(storage: EncryptedStorage, key: str, start: int = 0) -> tuple[bytes, bool]:
    """What a read yielded before it failed (if it did), and whether it failed."""
    got = bytearray()
    try:
        for piece in storage.read(key, start):
            got += piece
    except DamagedObject:
        return bytes(got), True
    return bytes(got), False


def assert_refused_with_only_genuine_plaintext(
    storage: EncryptedStorage, key: str, *, damaged_from: int
) -> None:
    """A full read fails, and what it yielded first is exactly the undamaged prefix."""
    got, failed = read_until_failure(storage, key)
    assert failed, "the damaged object was read to its end"
    assert got == PLAINTEXT[:damaged_from]


def edit(path: Path, change: Callable[[bytes], bytes]) -> None:
    path.write_bytes(change(path.read_bytes()))


def flip(path: Path, at: int) -> None:
    """Flip one bit of the byte at ``at`` (negative counts from the end)."""
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(data)


# --- tampering ---


def test_every_header_byte_is_authenticated(
    storage: EncryptedStorage, stored: tuple[str, Path]
) -> None:
    key, path = stored
    original = path.read_bytes()
    header_size = layout_of(path).header_size
    for at in range(header_size):
        path.write_bytes(original)
        flip(path, at)
        # A flip in the key id, or in its length (the id then takes in a random nonce
        # byte), may name another well-formed id, which no keyring here holds: refused
        # as an unavailable key, since nothing can be authenticated before the key
        # unwraps. Every other flip is damage.
        damaged = path.read_bytes()
        named = damaged[10 : 10 + damaged[9]].decode("ascii", errors="replace")
        expected: type[Exception] = (
            MasterKeyUnavailable
            if named != "k1" and KEY_ID_PATTERN.fullmatch(named)
            else DamagedObject
        )
        with pytest.raises(expected):
            storage.size(key)
        with pytest.raises(expected):
            storage.read(key, SEGMENT, SEGMENT + 10)  # even a range in an intact segment
    path.write_bytes(original)
    assert b"".join(storage.read(key)) == PLAINTEXT


def test_tampered_middle_segment(storage: EncryptedStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    layout = layout_of(path)
    flip(path, layout.offset(2) + 100)
    assert_refused_with_only_genuine_plaintext(storage, key, damaged_from=2 * SEGMENT)
    with pytest.raises(DamagedObject):
        b"".join(storage.read(key, 2 * SEGMENT + 5, 2 * SEGMENT + 6))
    # A range inside intact segments is still served, and is genuine.
    assert b"".join(storage.read(key, 10, SEGMENT + 10)) == PLAINTEXT[10 : SEGMENT + 10]
    assert (
        b"".join(storage.read(key, 3 * SEGMENT, 4 * SEGMENT))
        == PLAINTEXT[3 * SEGMENT : 4 * SEGMENT]
    )


def test_tampered_last_tag(storage: EncryptedStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    flip(path, -1)
    assert_refused_with_only_genuine_plaintext(storage, key, damaged_from=5 * SEGMENT)
    with pytest.raises(DamagedObject):
        b"".join(storage.read(key, len(PLAINTEXT) - 1))
    assert b"".join(storage.read(key, 0, 100)) == PLAINTEXT[:100]


def test_truncated_by_one_segment(storage: EncryptedStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    layout = layout_of(path)
    edit(path, lambda b: b[: layout.offset(layout.segment_count - 1)])
    # The size follows from the length; any read that reaches the (new) end fails.
    assert storage.size(key) == 5 * SEGMENT
    assert_refused_with_only_genuine_plaintext(storage, key, damaged_from=4 * SEGMENT)
    with pytest.raises(DamagedObject):
        b"".join(storage.read(key, 5 * SEGMENT, 5 * SEGMENT))


def test_truncated_by_one_byte(storage: EncryptedStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    edit(path, lambda b: b[:-1])
    assert_refused_with_only_genuine_plaintext(storage, key, damaged_from=5 * SEGMENT)


@pytest.mark.parametrize("keep", [0, 1, TAG_SIZE - 1, TAG_SIZE, TAG_SIZE + 1])
def test_truncated_to_the_header(
    storage: EncryptedStorage, stored: tuple[str, Path], keep: int
) -> None:
    """Even cut to a header and one tag's worth, which would look like an empty file."""
    key, path = stored
    header_size = layout_of(path).header_size
    edit(path, lambda b: b[: header_size + keep])
    got, failed = read_until_failure(storage, key)
    assert failed
    assert got == b""


@pytest.mark.parametrize("size", [0, 1, 5, 10])
def test_cut_inside_the_header_or_emptied(
    storage: EncryptedStorage, stored: tuple[str, Path], size: int
) -> None:
    key, path = stored
    edit(path, lambda b: b[:size])
    with pytest.raises(DamagedObject):
        storage.size(key)
    with pytest.raises(DamagedObject):
        storage.read(key)


def test_swapped_segments(storage: EncryptedStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    layout = layout_of(path)
    one, two, three = layout.offset(1), layout.offset(2), layout.offset(3)
    edit(path, lambda b: b[:one] + b[two:three] + b[one:two] + b[three:])
    assert_refused_with_only_genuine_plaintext(storage, key, damaged_from=SEGMENT)
    assert b"".join(storage.read(key, 0, SEGMENT)) == PLAINTEXT[:SEGMENT]


def test_appended_segment(storage: EncryptedStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    layout = layout_of(path)
    first = slice(layout.offset(0), layout.offset(1))
    edit(path, lambda b: b + b[first])
    got, failed = read_until_failure(storage, key)
    assert failed
    assert PLAINTEXT.startswith(got)
    assert len(got) <= 5 * SEGMENT, "the real last segment must not pass as a middle one"


def test_appended_bytes(storage: EncryptedStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    edit(path, lambda b: b + b"extra")
    got, failed = read_until_failure(storage, key)
    assert failed
    assert PLAINTEXT.startswith(got)


def test_empty_plaintext_is_one_authenticated_segment(
    storage: EncryptedStorage, root: Path
) -> None:
    storage.write("reports/p/empty", [])
    path = root / "reports" / "p" / "empty"
    layout = layout_of(path)
    assert layout.segment_count == 1
    assert path.stat().st_size == layout.header_size + TAG_SIZE
    assert b"".join(storage.read("reports/p/empty")) == b""
    flip(path, -1)
    with pytest.raises(DamagedObject):
        b"".join(storage.read("reports/p/empty"))


# --- keys ---


def test_wrong_master_key(stored: tuple[str, Path], root: Path) -> None:
    key, _ = stored
    impostor = local_storage(root, Keyring(keys={"k1": bytes(32)}, active_id="k1"))
    with pytest.raises(DamagedObject):
        impostor.read(key)
    with pytest.raises(DamagedObject):
        impostor.size(key)


def test_unknown_key_id(stored: tuple[str, Path], root: Path) -> None:
    key, _ = stored
    stranger = local_storage(root, Keyring(keys={"k9": bytes(range(32))}, active_id="k9"))
    with pytest.raises(MasterKeyUnavailable, match="not configured") as raised:
        stranger.read(key)
    assert raised.value.key_id == "k1"
    assert key not in str(raised.value)
    with pytest.raises(MasterKeyUnavailable):
        stranger.size(key)


@pytest.mark.parametrize("bad_id", [b"k\n", b"k\x00", b"-k", b"k\xff"])
def test_a_malformed_key_id_is_damage_not_a_missing_key(
    storage: EncryptedStorage, stored: tuple[str, Path], bad_id: bytes
) -> None:
    """Only ids a keyring could hold ever reach an error message (and so a log line)."""
    key, path = stored
    edit(path, lambda b: b[:10] + bad_id + b[12:])
    with pytest.raises(DamagedObject, match="malformed"):
        storage.read(key)


def test_key_rotation(storage: EncryptedStorage, stored: tuple[str, Path], root: Path) -> None:
    old_key, old_path = stored
    # A second key added and made active; the first still reads its files.
    rotated = Keyring(keys={**K1.keys, "k2": K2_KEY}, active_id="k2")
    after = local_storage(root, rotated)
    assert b"".join(after.read(old_key)) == PLAINTEXT, "files under the old key still read"
    after.write("reports/p/new", [b"new,file\r\n"])
    new_path = root / "reports" / "p" / "new"
    header = open_header(rotated, new_path.read_bytes()[:MAX_HEADER_SIZE])
    assert header.key_id == "k2"
    assert open_header(rotated, old_path.read_bytes()[:MAX_HEADER_SIZE]).key_id == "k1"
    with pytest.raises(MasterKeyUnavailable) as k2_missing:
        storage.read("reports/p/new")  # k1 alone cannot open k2's files
    assert k2_missing.value.key_id == "k2"
    only_k2 = local_storage(root, Keyring(keys={"k2": K2_KEY}, active_id="k2"))
    assert b"".join(only_k2.read("reports/p/new")) == b"new,file\r\n"
    with pytest.raises(MasterKeyUnavailable) as k1_missing:
        only_k2.read(old_key)  # retiring k1 retires its files
    assert k1_missing.value.key_id == "k1"


def test_same_plaintext_never_gives_the_same_bytes(storage: EncryptedStorage, root: Path) -> None:
    storage.write("reports/p/a", [PLAINTEXT])
    storage.write("reports/p/b", [PLAINTEXT])
    a = (root / "reports/p/a").read_bytes()
    b = (root / "reports/p/b").read_bytes()
    assert a != b
    assert a[4:9] == b[4:9]  # same version and segment size...
    assert a[-1000:] != b[-1000:]  # ...but fresh keys and nonces
    assert b"SMITH" not in a


def test_errors_carry_no_key(storage: EncryptedStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    edit(path, lambda b: b[:-1])
    with pytest.raises(DamagedObject) as raised:
        b"".join(storage.read(key))
    assert key not in str(raised.value)
    with pytest.raises(ObjectNotFound) as missing:
        storage.read("reports/p/missing")
    assert "missing" not in str(missing.value)


# --- the stream itself, in memory ---


def _ciphertext(keyring: Keyring, chunks: list[bytes], segment_size: int) -> tuple[bytes, int]:
    stream = EncryptingStream(keyring, chunks, segment_size=segment_size)
    data = b"".join(stream)
    return data, stream.size


@settings(max_examples=300, deadline=None)
@given(
    plaintext=st.binary(max_size=700),
    cuts=st.lists(st.integers(0, 700), max_size=8),
    segment_size=st.integers(16, 80),
    data=st.data(),
)
def test_any_chunking_and_any_range_round_trip(
    plaintext: bytes,
    cuts: list[int],
    segment_size: int,
    data: st.DataObject,
) -> None:
    bounds = sorted({0, len(plaintext), *(c for c in cuts if c <= len(plaintext))})
    chunks = [plaintext[a:b] for a, b in itertools.pairwise(bounds)]
    stream = EncryptingStream(K1, chunks, segment_size=segment_size)
    ciphertext = b"".join(stream)
    assert stream.size == len(plaintext)
    assert stream.sha256 == hashlib.sha256(plaintext).digest()

    header = open_header(K1, ciphertext[:MAX_HEADER_SIZE])
    layout = header.layout(len(ciphertext))
    assert layout.plaintext_size == len(plaintext)
    assert layout.segment_count == max(1, -(-len(plaintext) // segment_size))
    start = data.draw(st.integers(0, len(plaintext)), label="start")
    end = data.draw(st.integers(start, len(plaintext)), label="end")
    span = layout.span(start, end)
    position = layout.offset(span.start) if span else 0
    touched: list[int] = []

    def read_sealed(size: int) -> bytes:
        nonlocal position
        touched.append(position)
        position += size
        return ciphertext[position - size : position]

    pieces = list(decrypt_range(header, layout, start, end, read_sealed))
    assert b"".join(pieces) == plaintext[start:end]
    assert all(pieces), "no empty pieces"
    assert len(touched) == len(span)
    if end == len(plaintext):
        assert layout.segment_count - 1 in span, "a read to the end checks the last segment"
    elif end > start:
        assert len(span) == (end - 1) // segment_size - start // segment_size + 1


def test_reused_chunk_buffers_are_safe() -> None:
    """A caller may refill its buffer as soon as the next chunk is asked for."""
    buffer = bytearray(100_000)
    expected = hashlib.sha256()

    def refilled() -> Iterator[bytearray]:
        for n in range(40):
            buffer[:] = bytes([n]) * len(buffer)
            expected.update(buffer)
            yield buffer

    stream = EncryptingStream(K1, refilled())
    ciphertext = b"".join(stream)
    assert stream.sha256 == expected.digest()
    header = open_header(K1, ciphertext[:MAX_HEADER_SIZE])
    layout = header.layout(len(ciphertext))
    position = layout.offset(0)

    def read_sealed(size: int) -> bytes:
        nonlocal position
        position += size
        return ciphertext[position - size : position]

    plain = b"".join(decrypt_range(header, layout, 0, layout.plaintext_size, read_sealed))
    assert plain == b"".join(bytes([n]) * len(buffer) for n in range(40))


# --- the format, pinned ---

#: Written by the single-threaded writer this format started with: 300 bytes in 64-byte
#: segments under K1 (four full segments and a short last one). Every later writer's
#: reader must still open it.
GOLDEN_PLAINTEXT = b"".join(b"%04d,SMITH,JANE,03.03A,37.85\r\n" % n for n in range(10))
GOLDEN = bytes.fromhex(
    "4d5250540100000040026b31ad15bbaa61e12143d9ed5debec06dd30aff3241f0cc4a7c96f905b150cdc0726"
    "8977bc7c8e863b30d7893096585200f0009e933fcfaeb1359b25d974abc77484b5649584e589bf42293b3882"
    "1cc825048bfb50751e0c4d7b99fa604ff3e98780748e6bb4875ecd2ebce9f302fe282f9dfd5a9a2da2a433ee"
    "cc691cf6ba46edfb04c63bd96c08a98d508e64e76c334f4e521632d68bb5209a1f04a354853668e0b12f45d2"
    "adee8d622330a7f3d0248a0b23161730e343dd63fc48e205086fccb1a4bfb300d6e15c54c86621a67bdcd059"
    "dab79c0b1c5408b441434955f1da8c0cfa3c3c55141ed99d0e1e8551bc31659e5e95dcc7c7f4ee98fd6a9638"
    "68bfb05c03f6eab2eaba2b98fd8cedcf55837977c339566fe66e6b2d5ffd42b764359fcff78d31c97ad15900"
    "6e13cb9b4e67dd69ad804a5b0bfd8b008f4b59302426c9ccaa9f05ed80b74bb58c267b9d35c6d9b11c041017"
    "e473ee92320a7be261a1f93e205939abb1f5941e20cc6e80289d7c7198bdb77a987a16e9657ea47ea2331d60"
    "2066df42031b50eb549cc3925e9d529c0b82f624947a64d5ce56d764ebf6d05370b23d1aa6c72ed83f3a5094"
    "c0a6f2fc9cf3d1cbdfbe96bb3d2cd7b8108340"
)


def reference_decrypt(keyring: Keyring, data: bytes) -> tuple[int, bytes]:
    """Segment size and plaintext, read as the module docstring states the format.

    Independent of the module's reader: if the writer drifted from the format, this
    fails even where the module's own reader would agree with its writer.
    """
    magic, version, segment_size, id_size = struct.unpack_from(">4sBIB", data)
    assert (magic, version) == (b"MRPT", 1)
    at = struct.calcsize(">4sBIB")
    key_id = data[at : at + id_size].decode("ascii")
    prefix = data[at + id_size : at + id_size + 7]
    bound_end = at + id_size + 7
    wrap_nonce, wrapped = data[bound_end : bound_end + 12], data[bound_end + 12 : bound_end + 60]
    header, body = data[: bound_end + 60], data[bound_end + 60 :]
    aead = AESGCM(AESGCM(keyring.keys[key_id]).decrypt(wrap_nonce, wrapped, data[:bound_end]))
    sealed = segment_size + TAG_SIZE
    segments = [body[n : n + sealed] for n in range(0, len(body), sealed)]
    plaintext = b"".join(
        aead.decrypt(prefix + n.to_bytes(4, "big") + bytes([n == len(segments) - 1]), seg, header)
        for n, seg in enumerate(segments)
    )
    return segment_size, plaintext


def test_a_file_of_the_first_writer_still_decrypts(root: Path) -> None:
    assert reference_decrypt(K1, GOLDEN) == (64, GOLDEN_PLAINTEXT)
    path = root / "reports" / "p" / "old"
    path.parent.mkdir(parents=True)
    path.write_bytes(GOLDEN)
    storage = local_storage(root, K1)
    assert storage.size("reports/p/old") == 300
    assert b"".join(storage.read("reports/p/old")) == GOLDEN_PLAINTEXT
    assert b"".join(storage.read("reports/p/old", 60, 130)) == GOLDEN_PLAINTEXT[60:130]
    assert b"".join(storage.read("reports/p/old", 299)) == GOLDEN_PLAINTEXT[299:]


def _pattern(size: int) -> bytes:
    """Position-dependent bytes: a segment sealed out of place would show."""
    block = b"".join(hashlib.sha256(n.to_bytes(4, "big")).digest() for n in range(2048))
    return (block * (size // len(block) + 1))[:size]


@pytest.mark.parametrize(
    ("size", "segment_size"),
    [
        (0, SEGMENT),
        (1, SEGMENT),
        (HASH_BATCH_SIZE - 1, SEGMENT),
        (HASH_BATCH_SIZE, SEGMENT),
        (HASH_BATCH_SIZE + 1, SEGMENT),
        (4 * HASH_BATCH_SIZE + 12_345, SEGMENT),  # more batches than the pool holds
        (3 * HASH_BATCH_SIZE + 7, 1000),  # batches of 1,048 segments of 1,000 bytes
        (5 * 1024 * 1024 + 3, 2 * 1024 * 1024),  # segments larger than a batch
    ],
    ids=lambda v: str(v),
)
def test_the_writer_follows_the_format_across_hash_batches(size: int, segment_size: int) -> None:
    plaintext = _pattern(size)
    stream = EncryptingStream(K1, chunk_irregularly(plaintext), segment_size=segment_size)
    data = b"".join(stream)
    assert reference_decrypt(K1, data) == (segment_size, plaintext)
    assert stream.size == size
    assert stream.sha256 == hashlib.sha256(plaintext).digest()
    segments = max(1, -(-size // segment_size))
    assert len(data) == open_header(K1, data[:MAX_HEADER_SIZE]).size + size + segments * TAG_SIZE


def chunk_irregularly(data: bytes) -> Iterator[bytes]:
    """``data`` in chunks of changing sizes, some larger than a batch, some empty."""
    sizes = itertools.cycle([1, 0, 7, 65_535, 65_537, HASH_BATCH_SIZE + 3, 300_000])
    at = 0
    while at < len(data):
        size = next(sizes)
        yield data[at : at + size]
        at += size


def hashing_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sha256"]


def test_the_hashing_thread_ends_with_the_stream() -> None:
    big = [bytes(HASH_BATCH_SIZE)] * 5
    assert hashing_threads() == []
    finished = EncryptingStream(K1, big)
    list(finished)  # the last batches may still be hashing while the store finishes
    assert finished.sha256 == hashlib.sha256(b"".join(big)).digest()
    assert hashing_threads() == []
    unasked = EncryptingStream(K1, big)
    list(unasked)
    wait_until(lambda: not hashing_threads(), timeout=10, what="the thread to end by itself")

    def failing() -> Iterator[bytes]:
        yield from big
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError, match="generator failed"):
        list(EncryptingStream(K1, failing()))
    assert hashing_threads() == []

    abandoned = iter(EncryptingStream(K1, big))
    next(abandoned)  # the header
    next(abandoned)  # the first segment: its batch is being hashed
    assert len(hashing_threads()) == 1
    abandoned.close()
    assert hashing_threads() == []


def test_a_small_report_is_hashed_without_a_thread() -> None:
    small = iter(EncryptingStream(K1, [b"a,b\r\n"] * 1000))
    next(small)  # the header
    next(small)  # the only segment: sealed, and the digest taken, before it is handed out
    assert hashing_threads() == []
    assert list(small) == []


def test_stream_results_need_a_finished_stream() -> None:
    stream = EncryptingStream(K1, [b"abc"])
    with pytest.raises(RuntimeError):
        _ = stream.size
    list(stream)
    assert stream.size == 3
    with pytest.raises(RuntimeError):
        iter(stream)


def test_segment_size_is_bounded() -> None:
    with pytest.raises(ValueError, match="segment size"):
        EncryptingStream(K1, [], segment_size=8)


# --- load_keyring ---


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_configured_keys(tmp_path: Path) -> None:
    one = load_keyring(_settings(tmp_path, master_keys={"a": _b64(bytes(32))}))
    assert one.active_id == "a"
    two = load_keyring(
        _settings(
            tmp_path,
            master_keys={"a": _b64(bytes(32)), "b": _b64(K2_KEY)},
            active_key_id="b",
            environment="production",
        )
    )
    assert two.active() == ("b", K2_KEY)
    assert two.get("a") == bytes(32)
    assert not (tmp_path / "keys").exists(), "configured keys never touch the disk"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"master_keys": {"a": "not base64!"}}, "'a' is not valid base64"),
        ({"master_keys": {"a": _b64(bytes(31))}}, "'a' must decode to 32 bytes, not 31"),
        ({"master_keys": {"a": _b64(bytes(33))}}, "'a' must decode to 32 bytes, not 33"),
        (
            {"master_keys": {"a": _b64(bytes(32)), "b": _b64(bytes(32))}},
            "none is named active",
        ),
        ({"master_keys": {"a": _b64(bytes(32))}, "active_key_id": "z"}, "'z' is not among"),
        ({"master_keys": {"bad id!": _b64(bytes(32))}}, "'bad id!' is not 1-64"),
        ({"environment": "production"}, "production never generates a key"),
        ({"environment": "production", "master_keys": {}}, "production never generates"),
    ],
)
def test_keyring_errors(tmp_path: Path, values: dict[str, object], message: str) -> None:
    with pytest.raises(KeyringError, match=message) as raised:
        load_keyring(_settings(tmp_path, **values))
    secret = _b64(bytes(32))
    assert secret not in str(raised.value)
    assert not (tmp_path / "keys").exists()


def test_key_material_never_shows_in_repr() -> None:
    assert _b64(bytes(range(32))) not in repr(K1)
    assert repr(bytes(range(32))) not in repr(K1)
    assert "k1" in repr(K1)


@pytest.mark.parametrize("environment", ["development", "test"])
def test_a_local_key_is_generated_once_and_reused(tmp_path: Path, environment: str) -> None:
    first = load_keyring(_settings(tmp_path, environment=environment))
    files = list((tmp_path / "keys").glob("*.key"))
    assert [f.stem for f in files] == [first.active_id]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    again = load_keyring(_settings(tmp_path, environment=environment))
    assert again.active() == first.active()


def test_concurrent_starts_generate_one_key(tmp_path: Path) -> None:
    results: list[Keyring] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        results.append(load_keyring(_settings(tmp_path)))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 8
    assert len({r.active() for r in results}) == 1
    assert len(list((tmp_path / "keys").glob("*.key"))) == 1


def test_local_keys_rotate_to_the_newest(tmp_path: Path) -> None:
    first = load_keyring(_settings(tmp_path))
    newer = f"local-99991231T235959Z-{'0' * 6}"
    (tmp_path / "keys" / f"{newer}.key").write_text(_b64(K2_KEY))
    rotated = load_keyring(_settings(tmp_path))
    assert rotated.active() == (newer, K2_KEY)
    assert rotated.get(first.active_id) == first.active()[1]
    pinned = load_keyring(_settings(tmp_path, active_key_id=first.active_id))
    assert pinned.active() == first.active()
