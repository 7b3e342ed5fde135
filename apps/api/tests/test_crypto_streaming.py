"""The encrypted format refuses every damaged object, and never hands out damaged plaintext."""

from __future__ import annotations

import base64
import hashlib
import itertools
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meritum_api.crypto.keys import Keyring, KeyringError, load_keyring
from meritum_api.crypto.streaming import (
    DEFAULT_SEGMENT_SIZE,
    MAX_HEADER_SIZE,
    TAG_SIZE,
    EncryptingStream,
    Layout,
    decrypt_range,
    open_header,
)
from meritum_api.settings import Settings
from meritum_api.storage.base import IntegrityError, ObjectNotFound
from meritum_api.storage.local import LocalStorage

SEGMENT = DEFAULT_SEGMENT_SIZE
K1 = Keyring(keys={"k1": bytes(range(32))}, active_id="k1")
K2_KEY = bytes(range(100, 132))
#: Five full segments and a short last one: room for a damaged middle with intact sides.
PLAINTEXT = b"".join(b"%08d,4567890123,SMITH,JANE,03.03A,37.85\r\n" % n for n in range(9000))[
    : 5 * SEGMENT + 777
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def storage(root: Path) -> LocalStorage:
    return LocalStorage(root, K1)


@pytest.fixture
def stored(storage: LocalStorage, root: Path) -> tuple[str, Path]:
    """A multi-segment object and the file that holds it."""
    key = "reports/p/r"
    storage.write(key, [PLAINTEXT])
    return key, root / "reports" / "p" / "r"


def layout_of(path: Path, keyring: Keyring = K1) -> Layout:
    data = path.read_bytes()
    return open_header(keyring, data[:MAX_HEADER_SIZE]).layout(len(data))


def read_until_failure(storage: LocalStorage, key: str, start: int = 0) -> tuple[bytes, bool]:
    """What a read yielded before it failed (if it did), and whether it failed."""
    got = bytearray()
    try:
        for piece in storage.read(key, start):
            got += piece
    except IntegrityError:
        return bytes(got), True
    return bytes(got), False


def assert_refused_with_only_genuine_plaintext(
    storage: LocalStorage, key: str, *, damaged_from: int
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
    storage: LocalStorage, stored: tuple[str, Path]
) -> None:
    key, path = stored
    original = path.read_bytes()
    header_size = layout_of(path).header_size
    for at in range(header_size):
        path.write_bytes(original)
        flip(path, at)
        with pytest.raises(IntegrityError):
            storage.size(key)
        with pytest.raises(IntegrityError):
            storage.read(key, SEGMENT, SEGMENT + 10)  # even a range in an intact segment
    path.write_bytes(original)
    assert b"".join(storage.read(key)) == PLAINTEXT


def test_tampered_middle_segment(storage: LocalStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    layout = layout_of(path)
    flip(path, layout.offset(2) + 100)
    assert_refused_with_only_genuine_plaintext(storage, key, damaged_from=2 * SEGMENT)
    with pytest.raises(IntegrityError):
        b"".join(storage.read(key, 2 * SEGMENT + 5, 2 * SEGMENT + 6))
    # A range inside intact segments is still served, and is genuine.
    assert b"".join(storage.read(key, 10, SEGMENT + 10)) == PLAINTEXT[10 : SEGMENT + 10]
    assert (
        b"".join(storage.read(key, 3 * SEGMENT, 4 * SEGMENT))
        == PLAINTEXT[3 * SEGMENT : 4 * SEGMENT]
    )


def test_tampered_last_tag(storage: LocalStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    flip(path, -1)
    assert_refused_with_only_genuine_plaintext(storage, key, damaged_from=5 * SEGMENT)
    with pytest.raises(IntegrityError):
        b"".join(storage.read(key, len(PLAINTEXT) - 1))
    assert b"".join(storage.read(key, 0, 100)) == PLAINTEXT[:100]


def test_truncated_by_one_segment(storage: LocalStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    layout = layout_of(path)
    edit(path, lambda b: b[: layout.offset(layout.segment_count - 1)])
    # The size follows from the length; any read that reaches the (new) end fails.
    assert storage.size(key) == 5 * SEGMENT
    assert_refused_with_only_genuine_plaintext(storage, key, damaged_from=4 * SEGMENT)
    with pytest.raises(IntegrityError):
        b"".join(storage.read(key, 5 * SEGMENT, 5 * SEGMENT))


def test_truncated_by_one_byte(storage: LocalStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    edit(path, lambda b: b[:-1])
    assert_refused_with_only_genuine_plaintext(storage, key, damaged_from=5 * SEGMENT)


@pytest.mark.parametrize("keep", [0, 1, TAG_SIZE - 1, TAG_SIZE, TAG_SIZE + 1])
def test_truncated_to_the_header(
    storage: LocalStorage, stored: tuple[str, Path], keep: int
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
    storage: LocalStorage, stored: tuple[str, Path], size: int
) -> None:
    key, path = stored
    edit(path, lambda b: b[:size])
    with pytest.raises(IntegrityError):
        storage.size(key)
    with pytest.raises(IntegrityError):
        storage.read(key)


def test_swapped_segments(storage: LocalStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    layout = layout_of(path)
    one, two, three = layout.offset(1), layout.offset(2), layout.offset(3)
    edit(path, lambda b: b[:one] + b[two:three] + b[one:two] + b[three:])
    assert_refused_with_only_genuine_plaintext(storage, key, damaged_from=SEGMENT)
    assert b"".join(storage.read(key, 0, SEGMENT)) == PLAINTEXT[:SEGMENT]


def test_appended_segment(storage: LocalStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    layout = layout_of(path)
    first = slice(layout.offset(0), layout.offset(1))
    edit(path, lambda b: b + b[first])
    got, failed = read_until_failure(storage, key)
    assert failed
    assert PLAINTEXT.startswith(got)
    assert len(got) <= 5 * SEGMENT, "the real last segment must not pass as a middle one"


def test_appended_bytes(storage: LocalStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    edit(path, lambda b: b + b"extra")
    got, failed = read_until_failure(storage, key)
    assert failed
    assert PLAINTEXT.startswith(got)


def test_empty_plaintext_is_one_authenticated_segment(storage: LocalStorage, root: Path) -> None:
    storage.write("reports/p/empty", [])
    path = root / "reports" / "p" / "empty"
    layout = layout_of(path)
    assert layout.segment_count == 1
    assert path.stat().st_size == layout.header_size + TAG_SIZE
    assert b"".join(storage.read("reports/p/empty")) == b""
    flip(path, -1)
    with pytest.raises(IntegrityError):
        b"".join(storage.read("reports/p/empty"))


# --- keys ---


def test_wrong_master_key(stored: tuple[str, Path], root: Path) -> None:
    key, _ = stored
    impostor = LocalStorage(root, Keyring(keys={"k1": bytes(32)}, active_id="k1"))
    with pytest.raises(IntegrityError):
        impostor.read(key)
    with pytest.raises(IntegrityError):
        impostor.size(key)


def test_unknown_key_id(stored: tuple[str, Path], root: Path) -> None:
    key, _ = stored
    stranger = LocalStorage(root, Keyring(keys={"k9": bytes(range(32))}, active_id="k9"))
    with pytest.raises(IntegrityError, match="not configured"):
        stranger.read(key)


def test_key_rotation(storage: LocalStorage, stored: tuple[str, Path], root: Path) -> None:
    old_key, old_path = stored
    rotated = K1.rotated("k2", K2_KEY)
    after = LocalStorage(root, rotated)
    assert b"".join(after.read(old_key)) == PLAINTEXT, "files under the old key still read"
    after.write("reports/p/new", [b"new,file\r\n"])
    new_path = root / "reports" / "p" / "new"
    header = open_header(rotated, new_path.read_bytes()[:MAX_HEADER_SIZE])
    assert header.key_id == "k2"
    assert open_header(rotated, old_path.read_bytes()[:MAX_HEADER_SIZE]).key_id == "k1"
    with pytest.raises(IntegrityError):
        storage.read("reports/p/new")  # k1 alone cannot open k2's files
    only_k2 = LocalStorage(root, Keyring(keys={"k2": K2_KEY}, active_id="k2"))
    assert b"".join(only_k2.read("reports/p/new")) == b"new,file\r\n"
    with pytest.raises(IntegrityError):
        only_k2.read(old_key)  # retiring k1 retires its files


def test_same_plaintext_never_gives_the_same_bytes(storage: LocalStorage, root: Path) -> None:
    storage.write("reports/p/a", [PLAINTEXT])
    storage.write("reports/p/b", [PLAINTEXT])
    a = (root / "reports/p/a").read_bytes()
    b = (root / "reports/p/b").read_bytes()
    assert a != b
    assert a[4:9] == b[4:9]  # same version and segment size...
    assert a[-1000:] != b[-1000:]  # ...but fresh keys and nonces
    assert b"SMITH" not in a


def test_errors_carry_no_key(storage: LocalStorage, stored: tuple[str, Path]) -> None:
    key, path = stored
    edit(path, lambda b: b[:-1])
    with pytest.raises(IntegrityError) as raised:
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
