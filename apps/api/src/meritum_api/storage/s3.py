"""Stored bytes in an S3-compatible bucket: the S3 blob store.

Objects larger than one part are sent as a multipart upload: S3 shows the object only
when CompleteMultipartUpload succeeds, and any failure aborts the upload, so readers see
the whole object or none. A process killed mid-upload leaves an incomplete upload (not
an object) for :meth:`S3BlobStore.discard_partials`. Memory holds one part at most.
Reads are ranged GETs pinned by ETag to the version that was opened.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from meritum_api.storage.base import KEY_PATTERN, ListedObject, ObjectNotFound, StorageError

if TYPE_CHECKING:
    from botocore.response import StreamingBody
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


class _S3Reader:
    """A ranged GET's body, read in exact sizes."""

    def __init__(self, body: StreamingBody) -> None:
        self._body = body

    def read(self, size: int) -> bytes:
        pieces: list[bytes] = []
        wanted = size
        while wanted:
            with _s3_errors("read the object"):
                piece = self._body.read(wanted)
            if not piece:
                break
            pieces.append(piece)
            wanted -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def close(self) -> None:
        self._body.close()


class _S3Blob:
    """An object opened by :meth:`S3BlobStore.open`: its length, first bytes and ETag."""

    def __init__(self, store: S3BlobStore, key: str, size: int, head: bytes, etag: str) -> None:
        self._store = store
        self._key = key
        self._etag = etag
        self.size = size
        self.head = head

    def reader(self, start: int, end: int) -> _S3Reader:
        return _S3Reader(self._store.get_range(self._key, start, end, if_match=self._etag))


class S3BlobStore:
    """:class:`~meritum_api.storage.blobs.BlobStore` on an S3 bucket."""

    def __init__(
        self, *, client: S3Client, bucket: str, part_size: int = DEFAULT_PART_SIZE
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 parts must be at least {MIN_PART_SIZE} bytes")
        self.client = client
        self.bucket = bucket
        self._part_size = part_size

    # --- writing ---

    def put(self, key: str, pieces: Iterable[bytes]) -> None:
        """Store ``pieces``: a single PUT when small, else a multipart upload."""
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []
        finishing = False
        try:
            for piece in pieces:  # the caller's exceptions pass through unchanged
                buffer += piece
                if len(buffer) >= self._part_size:
                    if upload_id is None:
                        with _s3_errors("start the upload"):
                            upload_id = self.client.create_multipart_upload(
                                Bucket=self.bucket,
                                Key=key,
                                ContentType="application/octet-stream",
                            )["UploadId"]
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, buffer))
                    buffer.clear()
            finishing = True
            if upload_id is None:
                with _s3_errors("store the object"):
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=bytes(buffer),
                        ContentType="application/octet-stream",
                    )
            else:
                if buffer:
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, buffer))
                with _s3_errors("complete the upload"):
                    self.client.complete_multipart_upload(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},
                    )
        except BaseException:
            if upload_id is not None:
                with contextlib.suppress(ClientError, BotoCoreError):
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
            if finishing:
                # The last request may have succeeded on the server even though it failed
                # here: take the object away so that the caller's retry starts clean.
                with contextlib.suppress(ClientError, BotoCoreError):
                    self.client.delete_object(Bucket=self.bucket, Key=key)
            raise

    def _upload_part(
        self, key: str, upload_id: str, number: int, data: bytearray
    ) -> CompletedPartTypeDef:
        with _s3_errors("upload a part"):
            response = self.client.upload_part(
                Bucket=self.bucket,
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

    def open(self, key: str, head: int) -> _S3Blob:
        """The object's first ``head`` bytes, its length and ETag, in one ranged GET."""
        with _s3_errors("read the object"):
            try:
                response = self.client.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes=0-{head - 1}"
                )
            except ClientError as exc:
                if _code(exc) != "InvalidRange":
                    raise
                # No byte at 0: the object is empty (never one of ours; the reader says so).
                etag = self.client.head_object(Bucket=self.bucket, Key=key)["ETag"]
                return _S3Blob(self, key, 0, b"", etag)
            body = response["Body"]
            try:
                data = body.read()
            finally:
                body.close()
        match = _CONTENT_RANGE.fullmatch(response.get("ContentRange", ""))
        total = int(match.group(3)) if match else response["ContentLength"]
        return _S3Blob(self, key, total, data, response["ETag"])

    def get_range(self, key: str, start: int, end: int, *, if_match: str) -> StreamingBody:
        """The body of a GET of bytes ``[start, end)``, only if the ETag still matches."""
        with _s3_errors("read the object"):
            response = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}", IfMatch=if_match
            )
        return response["Body"]

    # --- housekeeping ---

    def _head(self, key: str) -> bool:
        with _s3_errors("look up the object"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND:
                    return False
                raise
        return True

    def delete(self, key: str) -> bool:
        """Delete the object; False when it was already missing (S3's DELETE cannot tell)."""
        if not self._head(key):
            return False
        with _s3_errors("delete the object"):
            self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def exists(self, key: str) -> bool:
        """Whether a finished object is stored under ``key``."""
        return self._head(key)

    def list(self, prefix: str) -> Iterator[ListedObject]:
        """Finished objects whose key starts with ``prefix``, in key order."""
        paginator = self.client.get_paginator("list_objects_v2")
        with _s3_errors("list objects"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    key = item.get("Key", "")
                    if "LastModified" in item and KEY_PATTERN.fullmatch(key):
                        modified = item["LastModified"].astimezone(UTC)
                        yield ListedObject(key=key, modified_at=modified)

    def discard_partials(self, *, older_than: datetime) -> int:
        """Abort incomplete multipart uploads started before ``older_than``."""
        stale: list[tuple[str, str]] = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        with _s3_errors("list unfinished uploads"):
            for page in paginator.paginate(Bucket=self.bucket):
                for upload in page.get("Uploads", []):
                    initiated = upload.get("Initiated")
                    if initiated is not None and initiated < older_than:
                        stale.append((upload["Key"], upload["UploadId"]))
        removed = 0
        for key, upload_id in stale:
            with _s3_errors("abort an unfinished upload"):
                try:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
                except ClientError as exc:
                    if _code(exc) == "NoSuchUpload":  # finished or aborted meanwhile
                        continue
                    raise
            removed += 1
        return removed
