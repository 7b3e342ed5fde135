"""One suite, two backends: real files, and real HTTP to a local S3 server."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mypy_boto3_s3 import S3Client

from meritum_api.crypto.keys import Keyring
from meritum_api.crypto.streaming import DEFAULT_SEGMENT_SIZE
from meritum_api.db.cluster import fast_root
from meritum_api.settings import Settings
from meritum_api.storage.base import (
    DamagedObject,
    InvalidKey,
    MasterKeyUnavailable,
    ObjectNotFound,
    ReportStorage,
    StorageError,
)
from meritum_api.storage.encrypted import EncryptedStorage
from meritum_api.storage.factory import make_storage
from meritum_api.storage.local import PARTIAL_DIR, LocalBlobStore
from meritum_api.storage.s3 import MIN_PART_SIZE, S3BlobStore
from polling import wait_until
from s3server import CREDENTIALS, REGION, moto_s3, s3_client

SEGMENT = DEFAULT_SEGMENT_SIZE
KEYRING = Keyring(keys={"test-key-1": bytes(range(32))}, active_id="test-key-1")
MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Backend:
    """A storage under test, with what a test needs to look behind it."""

    name: str
    storage: EncryptedStorage
    root: Path | None = None
    client: S3Client | None = None
    bucket: str = ""
    endpoint: str = ""

    def partials(self) -> list[datetime]:
        """When each unfinished write started (local: last written), as the backend says."""
        if self.root is not None:
            partial_dir = self.root / PARTIAL_DIR
            if not partial_dir.exists():
                return []
            return [datetime.fromtimestamp(p.stat().st_mtime, UTC) for p in partial_dir.iterdir()]
        assert self.client is not None
        uploads = self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return [u["Initiated"] for u in uploads]

    def flip_byte(self, key: str, at: int) -> None:
        """Damage the stored object behind the storage's back."""
        if self.root is not None:
            path = self.root.joinpath(*key.split("/"))
            data = bytearray(path.read_bytes())
            data[at] ^= 0x01
            path.write_bytes(data)
            return
        assert self.client is not None
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        data = bytearray(body.read())
        body.close()
        data[at] ^= 0x01
        self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data))


def new_key(provider: uuid.UUID | None = None) -> str:
    return f"reports/{provider or uuid.uuid4()}/{uuid.uuid4()}"


def payload(size: int, seed: int = 0) -> bytes:
    """CSV-like, position-dependent bytes: any misplaced segment would show."""
    line = b"%010d,2026-01-15,03.03A,HSC,37.85,PAID\r\n"
    out = b"".join(line % (seed + n) for n in range(size // 40 + 1))
    return out[:size]


def chunked(data: bytes, sizes: tuple[int, ...] = (1, 7, 4096, 70_000, 13)) -> Iterator[bytes]:
    """``data`` in irregular chunks, as a generator would hand them over."""
    at, n = 0, 0
    while at < len(data):
        size = sizes[n % len(sizes)]
        yield data[at : at + size]
        at += size
        n += 1


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture(scope="module", params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    if request.param == "local":
        root = tmp_path_factory.mktemp("local") / "reports"
        return Backend("local", EncryptedStorage(LocalBlobStore(root), KEYRING), root=root)
    endpoint: str = request.getfixturevalue("s3_endpoint")
    client = s3_client(endpoint)
    bucket = f"reports-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    blobs = S3BlobStore(client=client, bucket=bucket, part_size=MIN_PART_SIZE)
    return Backend(
        "s3", EncryptedStorage(blobs, KEYRING), client=client, bucket=bucket, endpoint=endpoint
    )


@pytest.fixture
def storage(backend: Backend) -> ReportStorage:
    return backend.storage


# --- round trips ---


@pytest.mark.parametrize(
    "size",
    [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 5 * SEGMENT + 123, 12 * MiB + 5],
    ids=lambda n: f"{n}B",
)
def test_round_trip(backend: Backend, size: int) -> None:
    storage, key, data = backend.storage, new_key(), payload(size)
    stored = storage.write(key, chunked(data))
    assert stored.size == size
    assert stored.sha256 == hashlib.sha256(data).digest()
    assert storage.exists(key)
    assert storage.size(key) == size
    assert b"".join(storage.read(key)) == data
    if backend.client is not None and size > MIN_PART_SIZE:
        etag = backend.client.head_object(Bucket=backend.bucket, Key=key)["ETag"]
        assert etag.strip('"').endswith("-3"), "12 MiB should go up as three 5 MiB parts"


def test_one_huge_chunk_and_empty_chunks(storage: ReportStorage) -> None:
    key, data = new_key(), payload(3 * SEGMENT + 10)
    assert storage.write(key, [b"", data, b"", b""]).size == len(data)
    assert b"".join(storage.read(key)) == data


def test_reads_yield_bounded_pieces(storage: ReportStorage) -> None:
    key, data = new_key(), payload(4 * SEGMENT)
    storage.write(key, [data])
    pieces = list(storage.read(key))
    assert max(len(p) for p in pieces) <= SEGMENT
    assert b"".join(pieces) == data


def test_overwrite_replaces_whole_object(storage: ReportStorage) -> None:
    key = new_key()
    storage.write(key, [payload(3 * SEGMENT, seed=1)])
    storage.write(key, [payload(10, seed=2)])
    assert b"".join(storage.read(key)) == payload(10, seed=2)


# --- ranges ---


@pytest.fixture(scope="module")
def sample(backend: Backend) -> tuple[str, bytes]:
    key, data = new_key(), payload(3 * SEGMENT + 100)
    backend.storage.write(key, chunked(data))
    return key, data


N = 3 * SEGMENT + 100


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, 1),  # first byte
        (N - 1, N),  # last byte
        (N - 1, None),
        (SEGMENT - 1, SEGMENT + 1),  # across a boundary
        (SEGMENT, 2 * SEGMENT),  # exactly one segment
        (SEGMENT - 1, 2 * SEGMENT + 1),  # three segments, partly
        (0, N),  # whole file
        (0, None),
        (SEGMENT, SEGMENT),  # empty, in the middle
        (N, N),  # empty, at the end
        (N, None),
        (0, 0),
    ],
)
def test_ranges_on_segment_edges(
    storage: ReportStorage, sample: tuple[str, bytes], start: int, end: int | None
) -> None:
    key, data = sample
    assert b"".join(storage.read(key, start, end)) == data[start:end]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_ranges_match_slicing(
    storage: ReportStorage, sample: tuple[str, bytes], data: st.DataObject
) -> None:
    key, plaintext = sample
    start = data.draw(st.integers(0, len(plaintext)), label="start")
    end = data.draw(st.none() | st.integers(start, len(plaintext)), label="end")
    assert b"".join(storage.read(key, start, end)) == plaintext[start:end]


@pytest.mark.parametrize(("start", "end"), [(-1, None), (0, N + 1), (5, 4), (N + 1, None)])
def test_ranges_outside_the_object_are_refused(
    storage: ReportStorage, sample: tuple[str, bytes], start: int, end: int | None
) -> None:
    with pytest.raises(ValueError, match="outside"):
        storage.read(sample[0], start, end)


# --- damage and change ---


def test_damage_is_detected_by_every_backend(backend: Backend) -> None:
    storage, key, data = backend.storage, new_key(), payload(4 * SEGMENT + 10)
    storage.write(key, [data])
    backend.flip_byte(key, -1)  # the last tag
    assert b"".join(storage.read(key, 0, 100)) == data[:100]  # an intact segment
    assert b"".join(storage.read(key, 2 * SEGMENT, 3 * SEGMENT)) == data[2 * SEGMENT : 3 * SEGMENT]
    with pytest.raises(DamagedObject):
        b"".join(storage.read(key))
    with pytest.raises(DamagedObject):
        b"".join(storage.read(key, len(data) - 5))
    backend.flip_byte(key, 30)  # the header (its wrap nonce; the key id is bytes 10-19)
    with pytest.raises(DamagedObject):
        storage.read(key, 0, 1)
    with pytest.raises(DamagedObject):
        storage.size(key)


def test_a_removed_master_key_is_named_before_any_byte(backend: Backend) -> None:
    key, data = new_key(), payload(3 * SEGMENT + 5)
    backend.storage.write(key, [data])
    without = EncryptedStorage(
        backend.storage.blobs, Keyring(keys={"other": bytes(32)}, active_id="other")
    )
    for read in (
        lambda: without.read(key),
        lambda: without.read(key, 2 * SEGMENT, 2 * SEGMENT + 1),
        lambda: without.size(key),
    ):
        with pytest.raises(MasterKeyUnavailable) as raised:
            read()  # the call itself refuses: no iterator, so no byte, is handed out
        assert raised.value.key_id == "test-key-1"
        assert key not in str(raised.value)
    # The object itself is intact: with the key back, it reads.
    assert b"".join(backend.storage.read(key)) == data


def test_an_object_replaced_during_a_read_is_not_mixed(backend: Backend) -> None:
    storage, key = backend.storage, new_key()
    storage.write(key, [payload(4 * SEGMENT, seed=1)])
    reading = storage.read(key, 2 * SEGMENT, 3 * SEGMENT)  # header read, segments not yet
    storage.write(key, [payload(4 * SEGMENT, seed=2)])
    with pytest.raises(StorageError, match="replaced"):
        b"".join(reading)


# --- missing, delete, exists, list ---


def test_missing_key(storage: ReportStorage) -> None:
    key = new_key()
    with pytest.raises(ObjectNotFound) as raised:
        storage.read(key)
    assert key not in str(raised.value)
    with pytest.raises(ObjectNotFound):
        storage.read(key, 0, 0)
    with pytest.raises(ObjectNotFound):
        storage.size(key)
    assert not storage.exists(key)
    assert storage.delete(key) is False


def test_delete_twice(storage: ReportStorage) -> None:
    key = new_key()
    storage.write(key, [b"date,fee\r\n"])
    assert storage.delete(key) is True
    assert storage.delete(key) is False
    assert not storage.exists(key)
    with pytest.raises(ObjectNotFound):
        storage.read(key)


def test_a_key_prefix_is_not_an_object(storage: ReportStorage) -> None:
    provider = uuid.uuid4()
    storage.write(new_key(provider), [b"x"])
    assert not storage.exists(f"reports/{provider}")
    assert storage.delete(f"reports/{provider}") is False
    with pytest.raises(ObjectNotFound):
        storage.read(f"reports/{provider}")


def test_list_by_prefix(storage: ReportStorage) -> None:
    mine, other = uuid.uuid4(), uuid.uuid4()
    before = datetime.now(UTC) - timedelta(seconds=5)
    keys = sorted(new_key(mine) for _ in range(3))
    for key in [*keys, new_key(other)]:
        storage.write(key, [b"a,b\r\n"])
    after = datetime.now(UTC) + timedelta(seconds=5)

    listed = list(storage.list(f"reports/{mine}/"))
    assert sorted(item.key for item in listed) == keys
    for item in listed:
        assert item.modified_at.utcoffset() == timedelta(0)
        assert before <= item.modified_at <= after
    assert sorted(i.key for i in storage.list(f"reports/{mine}")) == keys
    assert sorted(i.key for i in storage.list(keys[0])) == [keys[0]]
    assert list(storage.list(f"reports/{uuid.uuid4()}/")) == []
    everything = {item.key for item in storage.list("")}
    assert set(keys) <= everything
    assert all(not key.startswith(".") for key in everything)


# --- atomicity ---


def test_a_failing_generator_leaves_nothing(backend: Backend) -> None:
    storage, key = backend.storage, new_key()
    seen_during_write: list[bool] = []

    class GeneratorBroke(Exception):
        pass

    def chunks() -> Iterator[bytes]:
        for n in range(7):  # 7 MiB: a part is already uploaded on S3
            yield payload(MiB, seed=n)
        seen_during_write.append(storage.exists(key))
        seen_during_write.append(any(i.key == key for i in storage.list("reports/")))
        raise GeneratorBroke

    with pytest.raises(GeneratorBroke):
        storage.write(key, chunks())
    assert seen_during_write == [False, False], "a half-written object was visible"
    assert not storage.exists(key)
    with pytest.raises(ObjectNotFound):
        storage.read(key)
    assert backend.partials() == [], "the failed write left a partial behind"
    assert not [t for t in threading.enumerate() if t.name == "sha256"], "a hashing thread is left"


def test_a_failing_overwrite_keeps_the_old_object(storage: ReportStorage) -> None:
    key, old = new_key(), payload(1000)
    storage.write(key, [old])

    def broken() -> Iterator[bytes]:
        yield payload(6 * MiB)
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError, match="generator failed"):
        storage.write(key, broken())
    assert b"".join(storage.read(key)) == old


_KILLED_WRITER = textwrap.dedent(
    """
    import json, sys, time
    import boto3
    from meritum_api.crypto.keys import Keyring
    from meritum_api.storage.encrypted import EncryptedStorage
    from meritum_api.storage.local import LocalBlobStore
    from meritum_api.storage.s3 import MIN_PART_SIZE, S3BlobStore

    spec = json.loads(sys.argv[1])
    keyring = Keyring(keys={"k": bytes(32)}, active_id="k")
    if spec["root"]:
        blobs = LocalBlobStore(spec["root"])
    else:
        client = boto3.client("s3", endpoint_url=spec["endpoint"], **spec["client"])
        blobs = S3BlobStore(client=client, bucket=spec["bucket"], part_size=MIN_PART_SIZE)
    storage = EncryptedStorage(blobs, keyring)

    def stuck():
        for _ in range(6):
            yield bytes(1024 * 1024)
        print("stuck", flush=True)
        time.sleep(600)

    storage.write(spec["key"], stuck())
    """
)


def test_discard_partials_of_a_killed_writer(backend: Backend) -> None:
    key = new_key()
    spec = {
        "root": str(backend.root) if backend.root else None,
        "endpoint": backend.endpoint,
        "bucket": backend.bucket,
        "client": {**CREDENTIALS, "region_name": REGION},
        "key": key,
    }
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "stuck"
        wait_until(lambda: len(backend.partials()) == 1, timeout=10, what="the partial write")
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    storage = backend.storage
    assert not storage.exists(key)
    assert key not in {item.key for item in storage.list("reports/")}

    # The cutoff is taken against the backend's own clock for the partial (moto reports
    # one fixed initiation time for every upload; real S3 reports the real one).
    (started,) = backend.partials()
    assert storage.discard_partials(older_than=started - timedelta(seconds=1)) == 0
    assert len(backend.partials()) == 1, "a young partial was discarded"
    assert storage.discard_partials(older_than=started + timedelta(seconds=1)) == 1
    assert backend.partials() == []
    assert storage.discard_partials(older_than=datetime.now(UTC) + timedelta(days=1)) == 0
    with pytest.raises(ValueError, match="timezone"):
        storage.discard_partials(older_than=datetime(2026, 1, 1))  # noqa: DTZ001


# --- keys that are path tricks ---

BAD_KEYS = [
    "../x",
    "reports/../../etc/passwd",
    "/abs",
    "/reports/a/b",
    "a//b",
    "a/./b",
    "reports/..",
    "reports/.",
    ".partial/x",
    "reports/a\x00b",
    "reports\\a",
    "reports/a/",
    "",
    "Reports/A",
    "reports/a b",
    "reports/a\n",
    "reports/é",
    "r" * 257,
]
OPERATIONS: dict[str, Callable[[ReportStorage, str], object]] = {
    "write": lambda s, k: s.write(k, [b"x"]),
    "read": lambda s, k: s.read(k),
    "read-range": lambda s, k: s.read(k, 0, 1),
    "size": lambda s, k: s.size(k),
    "delete": lambda s, k: s.delete(k),
    "exists": lambda s, k: s.exists(k),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_path_tricks_are_invalid_keys(storage: ReportStorage, operation: str, key: str) -> None:
    with pytest.raises(InvalidKey) as raised:
        OPERATIONS[operation](storage, key)
    if key:
        assert key not in str(raised.value)


@pytest.mark.parametrize("prefix", ["../", "/abs", "a//", "a/./", "..", "reports\\", "a\x00"])
def test_path_tricks_are_invalid_prefixes(storage: ReportStorage, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        storage.list(prefix)


def test_long_keys_up_to_the_bound_work(storage: ReportStorage) -> None:
    key = "reports/" + "a" * (256 - len("reports/"))
    storage.write(key, [b"x"])
    assert b"".join(storage.read(key)) == b"x"
    assert storage.delete(key)


# --- local specifics ---


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def local(root: Path) -> EncryptedStorage:
    return EncryptedStorage(LocalBlobStore(root), KEYRING)


def test_local_files_are_private(local: EncryptedStorage, root: Path) -> None:
    key, row = new_key(), b"9876543210,SMITH,JANE,1971-02-03\r\n"
    local.write(key, [row * 100])
    path = root.joinpath(*key.split("/"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (path.parent, path.parent.parent, root, root / PARTIAL_DIR):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    stored = path.read_bytes()
    assert b"9876543210" not in stored, "stored in the clear"
    assert b"SMITH" not in stored


def test_local_symlinks_are_not_followed(
    local: EncryptedStorage, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"not a report")
    key = new_key()
    link = root.joinpath(*key.split("/"))
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    assert not local.exists(key)
    with pytest.raises(ObjectNotFound):
        local.read(key)
    assert local.delete(key) is False
    assert outside.exists()


def test_local_errors_name_neither_key_nor_path(tmp_path: Path) -> None:
    root = tmp_path / "not-a-directory"
    root.write_text("a file where the root should be")
    storage = EncryptedStorage(LocalBlobStore(root), KEYRING)
    key = new_key()
    with pytest.raises(StorageError) as raised:
        storage.write(key, [b"secret,row\r\n"])
    message = str(raised.value)
    assert key not in message
    assert str(tmp_path) not in message
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


# --- the factory ---


def test_factory_builds_local_storage(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, environment="test")
    storage = make_storage(settings, KEYRING)
    assert isinstance(storage.blobs, LocalBlobStore)
    key = new_key()
    storage.write(key, [b"x"])
    assert tmp_path.joinpath("reports", *key.split("/")).is_file()


def test_factory_builds_s3_storage_from_the_environment(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"factory-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    settings = Settings(
        storage_backend="s3", s3_bucket=bucket, s3_endpoint_url=s3_endpoint, s3_region=REGION
    )
    storage = make_storage(settings, KEYRING)
    assert isinstance(storage.blobs, S3BlobStore)
    assert storage.blobs.bucket == bucket
    key = new_key()
    storage.write(key, [b"a,b\r\n"])
    assert b"".join(storage.read(key)) == b"a,b\r\n"


def test_factory_refuses_s3_without_a_bucket() -> None:
    with pytest.raises(ValueError, match="MERITUM_S3_BUCKET"):
        make_storage(Settings(storage_backend="s3"), KEYRING)


# --- a gigabyte in bounded memory ---

_BIG_WRITER = textwrap.dedent(
    """
    import hashlib, json, resource, sys
    from pathlib import Path
    from meritum_api.crypto.keys import Keyring
    from meritum_api.storage.encrypted import EncryptedStorage
    from meritum_api.storage.local import LocalBlobStore

    root, total = sys.argv[1], int(sys.argv[2])
    keyring = Keyring(keys={"k": bytes(32)}, active_id="k")
    storage = EncryptedStorage(LocalBlobStore(root), keyring)
    block = bytes(range(256)) * 4096
    expected = hashlib.sha256()

    def chunks():
        sent = 0
        while sent < total:
            piece = sent.to_bytes(8, "big") + block[: min(len(block), total - sent) - 8]
            expected.update(piece)
            sent += len(piece)
            yield piece

    stored = storage.write("reports/big/one", chunks())
    seen, size = hashlib.sha256(), 0
    for piece in storage.read("reports/big/one"):
        seen.update(piece)
        size += len(piece)
    # Linux carries ru_maxrss across exec, so a child of a big parent (pytest) would
    # report the parent's peak: VmHWM belongs to this program's own address space.
    status = Path("/proc/self/status")
    hwm = [l for l in status.read_text().splitlines() if l.startswith("VmHWM:")]
    peak_kib = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "size": size,
        "stored_size": stored.size,
        "ok": stored.sha256 == expected.digest() == seen.digest(),
        "peak_rss_mib": peak_kib / 1024,
    }))
    """
)


def _big_run(total: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="meritum-big-", dir=fast_root()) as root:
        done = subprocess.run(
            [sys.executable, "-c", _BIG_WRITER, root, str(total)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
    result: dict[str, float] = json.loads(done.stdout)
    assert result["ok"]
    assert result["size"] == result["stored_size"] == total
    return result


def test_a_gigabyte_round_trip_in_flat_memory() -> None:
    small = _big_run(10 * 1000 * 1000)
    big = _big_run(1024 * MiB)
    assert big["peak_rss_mib"] < 200
    assert abs(big["peak_rss_mib"] - small["peak_rss_mib"]) < 30, (small, big)
