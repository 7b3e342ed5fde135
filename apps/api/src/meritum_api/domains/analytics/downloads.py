"""Streaming a ready report's decrypted bytes: whole, one range or several.

Storage glue: it reads by storage key and never lets the key out. The
report is marked downloaded, and the audit entry written, only once the last
byte of the file has been handed to the server; a client that stops early
leaves no trace of a download.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from starlette.responses import Response, StreamingResponse

from meritum_api.domains.analytics.exceptions import ReportUnreadable
from meritum_api.domains.analytics.ranges import (
    RangeNotSatisfiable,
    if_range_allows,
    multipart_layout,
    parse_range,
)
from meritum_api.domains.analytics.schemas import ReportView
from meritum_api.http.errors import ApiError, api_error_response
from meritum_api.storage.base import MasterKeyUnavailable, ReportStorage
from meritum_shared.constants.analytics import ReportFormat, ReportType

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ReportFormat.CSV: "text/csv; charset=utf-8",
    ReportFormat.PDF: "application/pdf",
    ReportFormat.ZIP: "application/zip",
}
RANGE_MESSAGE = "No requested range overlaps the file"
_EXTENSIONS = {ReportFormat.CSV: "csv", ReportFormat.PDF: "pdf", ReportFormat.ZIP: "zip"}


def download_filename(report: ReportView) -> str:
    """A safe file name from the report's type and period (never the storage key)."""
    kind = report.report_type.value.lower().replace("_", "-")
    if report.report_type is ReportType.DATA_PORTABILITY:
        span = report.created_at.date().isoformat()
    else:
        span = f"{report.period_start}-to-{report.period_end}"
    return f"meritum-{kind}-{span}.{_EXTENSIONS[report.format]}"


@dataclass(frozen=True, slots=True)
class Download:
    """What is known of a ready report before any byte is read."""

    report: ReportView
    storage_key: str
    sha256: bytes

    @property
    def etag(self) -> str:
        """Strong entity tag: the content's digest names the representation."""
        return f'"{self.sha256.hex()}"'

    def headers(self) -> dict[str, str]:
        """Headers every answer about this file carries."""
        return {
            "ETag": self.etag,
            "Repr-Digest": f"sha-256=:{base64.b64encode(self.sha256).decode()}:",
            "Accept-Ranges": "bytes",
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{download_filename(self.report)}"',
        }


def respond(
    *,
    download: Download,
    storage: ReportStorage,
    range_header: str | None,
    if_range: str | None,
    head: bool,
    on_complete: Callable[[], None],
) -> Response:
    """A 200, 206 or 416 response streaming the decrypted file."""
    size = download.report.file_size_bytes
    content_type = CONTENT_TYPES[download.report.format]
    headers = download.headers()
    try:
        ranges = (
            parse_range(range_header, size) if if_range_allows(if_range, download.etag) else None
        )
    except RangeNotSatisfiable:
        headers["Content-Range"] = f"bytes */{size}"
        del headers["Content-Disposition"]  # the body is the error, not the file
        return api_error_response(
            ApiError(416, "RANGE_NOT_SATISFIABLE", RANGE_MESSAGE, {"size": size}, headers)
        )
    key = download.storage_key

    def read(start: int = 0, end: int | None = None) -> Iterator[bytes]:
        # storage.read opens the file's header at the call: a missing key is known
        # here, before the response (and any byte of it) exists.
        try:
            return storage.read(key, start, end)
        except MasterKeyUnavailable as exc:
            raise ReportUnreadable(download.report, key_id=exc.key_id) from None

    if ranges is None:
        body: Iterator[bytes] = _finishing(read(), on_complete)
        headers["Content-Length"] = str(size)
        return _stream(head, 200, body, headers, content_type)
    if len(ranges) == 1:
        (only,) = ranges
        headers["Content-Range"] = only.content_range(size)
        headers["Content-Length"] = str(only.length)
        part = read(only.start, only.end + 1)
        body = _finishing(part, on_complete) if only.end == size - 1 else part
        return _stream(head, 206, body, headers, content_type)
    layout = multipart_layout(
        ranges, size=size, content_type=content_type, boundary=secrets.token_hex(16)
    )
    headers["Content-Length"] = str(layout.length(ranges))
    # Each part is read lazily, once the response is under way: the first is opened now.
    first = read(ranges[0].start, ranges[0].end + 1)

    def parts() -> Iterator[bytes]:
        for n, (head_bytes, byte_range) in enumerate(zip(layout.heads, ranges, strict=True)):
            yield head_bytes
            yield from first if n == 0 else read(byte_range.start, byte_range.end + 1)
        yield layout.tail

    reaches_end = any(r.end == size - 1 for r in ranges)
    body = _finishing(parts(), on_complete) if reaches_end else parts()
    return _stream(head, 206, body, headers, layout.content_type)


def _stream(
    head: bool, status: int, body: Iterator[bytes], headers: dict[str, str], media_type: str
) -> Response:
    if head:
        close = getattr(body, "close", None)
        if close is not None:
            close()  # nothing will be read: release the storage stream
        response = Response(status_code=status, headers=headers, media_type=media_type)
        # Response would recompute Content-Length from the empty body.
        response.headers["Content-Length"] = headers["Content-Length"]
        return response
    return StreamingResponse(body, status_code=status, headers=headers, media_type=media_type)


def _finishing(chunks: Iterator[bytes], on_complete: Callable[[], None]) -> Iterator[bytes]:
    # The code after the loop runs only when the server asks for the chunk
    # after the last, i.e. once the last byte has been sent on its way.
    yield from chunks
    try:
        on_complete()
    except Exception:
        log.exception("a download completed but could not be recorded")
