"""Encrypted report files in an S3-compatible bucket.

Objects larger than one part are sent as a multipart upload: S3 shows the object only
when CompleteMultipartUpload succeeds, and any failure aborts the upload, so readers see
the whole object or none. A process killed mid-upload leaves an incomplete upload (not
an object) for :meth:`S3Storage.discard_partials`. Memory holds one part at most.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

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
    IntegrityError,
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

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

#: S3's smallest part (all parts but the last).
MIN_PART_SIZE = 5 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown"))


@contextlib.contextmanager
def _s3_errors(action: str) -> Iterator[None]:
    """Turn botocore failures into StorageErrors that carry the error code, not the key."""
    try:
        yield
    except ClientError as exc:
        code = _code(exc)
        if code in _NOT_FOUND:
            raise ObjectNotFound("no object under this key") from None
        if code == "PreconditionFailed":
            raise StorageError("the object was replaced while it was being read") from None
        raise StorageError(f"could not {action}: S3 error {code}") from None
    except BotoCoreError as exc:
        raise StorageError(f"could not {action}: {type(exc).__name__}") from None


class S3Storage:
    """:class:`~meritum_api.storage.base.ReportStorage` on an S3 bucket."""

    def __init__(
        self,
        *,
        client: S3Client,
        bucket: str,
        keyring: Keyring,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 parts must be at least {MIN_PART_SIZE} bytes")
        self._client = client
        self._bucket = bucket
        self._keyring = keyring
        self._segment_size = segment_size
        self._part_size = part_size

    # --- writing ---

    def write(self, key: str, chunks: Iterable[bytes]) -> StoredObject:
        """Encrypt ``chunks`` into one object: a single PUT when small, else a multipart upload."""
        validate_key(key)
        stream = EncryptingStream(self._keyring, chunks, segment_size=self._segment_size)
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []
        finishing = False
        try:
            for piece in stream:  # the caller's exceptions pass through unchanged
                buffer += piece
                if len(buffer) >= self._part_size:
                    if upload_id is None:
                        with _s3_errors("start the upload"):
                            upload_id = self._client.create_multipart_upload(
                                Bucket=self._bucket,
                                Key=key,
                                ContentType="application/octet-stream",
                            )["UploadId"]
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, buffer))
                    buffer.clear()
            finishing = True
            if upload_id is None:
                with _s3_errors("store the object"):
                    self._client.put_object(
                        Bucket=self._bucket,
                        Key=key,
                        Body=bytes(buffer),
                        ContentType="application/octet-stream",
                    )
            else:
                if buffer:
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, buffer))
                with _s3_errors("complete the upload"):
                    self._client.complete_multipart_upload(
                        Bucket=self._bucket,
                        Key=key,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},
                    )
        except BaseException:
            if upload_id is not None:
                with contextlib.suppress(ClientError, BotoCoreError):
                    self._client.abort_multipart_upload(
                        Bucket=self._bucket, Key=key, UploadId=upload_id
                    )
            if finishing:
                # The last request may have succeeded on the server even though it failed
                # here: take the object away so that the caller's retry starts clean.
                with contextlib.suppress(ClientError, BotoCoreError):
                    self._client.delete_object(Bucket=self._bucket, Key=key)
            raise
        return StoredObject(size=stream.size, sha256=stream.sha256)

    def _upload_part(
        self, key: str, upload_id: str, number: int, data: bytearray
    ) -> CompletedPartTypeDef:
        with _s3_errors("upload a part"):
            response = self._client.upload_part(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=bytes(data),
            )
        part: CompletedPartTypeDef = {"ETag": response["ETag"], "PartNumber": number}
        # Newer clients checksum every part; the completion must then repeat it.
        for name in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256"):
            if name in response:
                part[name] = response[name]
        return part

    # --- reading ---

    def _get_prefix(self, key: str, length: int) -> tuple[bytes, int, str]:
        """The object's first ``length`` bytes (fewer if it is shorter), its size and ETag."""
        with _s3_errors("read the object"):
            try:
                response = self._client.get_object(
                    Bucket=self._bucket, Key=key, Range=f"bytes=0-{length - 1}"
                )
            except ClientError as exc:
                if _code(exc) == "InvalidRange":  # an empty object: never one of ours
                    raise IntegrityError("the object is too short to hold a header") from None
                raise
            body = response["Body"]
            try:
                data = body.read()
            finally:
                body.close()
        match = _CONTENT_RANGE.fullmatch(response.get("ContentRange", ""))
        total = int(match.group(3)) if match else response["ContentLength"]
        return data, total, response["ETag"]

    def _open(self, key: str, length: int) -> tuple[bytes, Header, Layout, str]:
        data, total, etag = self._get_prefix(key, length)
        with integrity_errors():
            header = open_header(self._keyring, data[:MAX_HEADER_SIZE])
            return data, header, header.layout(total), etag

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Decrypted bytes ``[start, end)``; missing, damaged or bad ranges fail at the call.

        The first request fetches the header and the first segment, which is the whole of
        a small report; a later range is fetched with one more ranged GET, pinned by ETag
        to the object whose header was read.
        """
        validate_key(key)
        prefix, header, layout, etag = self._open(
            key, MAX_HEADER_SIZE + self._segment_size + TAG_SIZE
        )
        start, stop = check_range(start, end, layout.plaintext_size)
        return self._segments(key, prefix, etag, header, layout, start, stop)

    def _segments(
        self,
        key: str,
        prefix: bytes,
        etag: str,
        header: Header,
        layout: Layout,
        start: int,
        stop: int,
    ) -> Iterator[bytes]:
        span = layout.span(start, stop)
        if not span:
            return
        first = layout.offset(span.start)
        last = layout.offset(span.stop - 1) + layout.sealed_size(span.stop - 1)
        if last <= len(prefix):
            position = first

            def from_prefix(size: int) -> bytes:
                nonlocal position
                position += size
                return prefix[position - size : position]

            with integrity_errors():
                yield from decrypt_range(header, layout, start, stop, from_prefix)
            return
        with _s3_errors("read the object"):
            response = self._client.get_object(
                Bucket=self._bucket, Key=key, Range=f"bytes={first}-{last - 1}", IfMatch=etag
            )
        body = response["Body"]

        def from_body(size: int) -> bytes:
            pieces: list[bytes] = []
            wanted = size
            while wanted:
                with _s3_errors("read the object"):
                    piece = body.read(wanted)
                if not piece:
                    break
                pieces.append(piece)
                wanted -= len(piece)
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)

        try:
            with integrity_errors():
                yield from decrypt_range(header, layout, start, stop, from_body)
        finally:
            body.close()

    def size(self, key: str) -> int:
        """Plaintext size from the authenticated header and the object's length (one GET)."""
        validate_key(key)
        return self._open(key, MAX_HEADER_SIZE)[2].plaintext_size

    # --- housekeeping ---

    def _head(self, key: str) -> bool:
        with _s3_errors("look up the object"):
            try:
                self._client.head_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND:
                    return False
                raise
        return True

    def delete(self, key: str) -> bool:
        """Delete the object; False when it was already missing (S3's DELETE cannot tell)."""
        validate_key(key)
        if not self._head(key):
            return False
        with _s3_errors("delete the object"):
            self._client.delete_object(Bucket=self._bucket, Key=key)
        return True

    def exists(self, key: str) -> bool:
        """Whether a finished object is stored under ``key``."""
        return self._head(validate_key(key))

    def list(self, prefix: str) -> Iterator[ListedObject]:
        """Finished objects whose key starts with ``prefix``, in key order."""
        return self._list(validate_prefix(prefix))

    def _list(self, prefix: str) -> Iterator[ListedObject]:
        paginator = self._client.get_paginator("list_objects_v2")
        with _s3_errors("list objects"):
            for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    key = item.get("Key", "")
                    if "LastModified" in item and KEY_PATTERN.fullmatch(key):
                        modified = item["LastModified"].astimezone(UTC)
                        yield ListedObject(key=key, modified_at=modified)

    def discard_partials(self, *, older_than: datetime) -> int:
        """Abort incomplete multipart uploads started before ``older_than``."""
        cutoff = validate_cutoff(older_than)
        stale: list[tuple[str, str]] = []
        paginator = self._client.get_paginator("list_multipart_uploads")
        with _s3_errors("list unfinished uploads"):
            for page in paginator.paginate(Bucket=self._bucket):
                for upload in page.get("Uploads", []):
                    initiated = upload.get("Initiated")
                    if initiated is not None and initiated < cutoff:
                        stale.append((upload["Key"], upload["UploadId"]))
        removed = 0
        for key, upload_id in stale:
            with _s3_errors("abort an unfinished upload"):
                try:
                    self._client.abort_multipart_upload(
                        Bucket=self._bucket, Key=key, UploadId=upload_id
                    )
                except ClientError as exc:
                    if _code(exc) == "NoSuchUpload":  # finished or aborted meanwhile
                        continue
                    raise
            removed += 1
        return removed
