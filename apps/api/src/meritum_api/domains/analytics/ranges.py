"""HTTP byte ranges (RFC 9110 §14) for resumable report downloads.

Pure functions: parse ``Range`` against a known size, decide ``If-Range``,
and lay out a ``multipart/byteranges`` body whose length is known before the
first byte is sent (so ``Content-Length`` is always exact).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

#: More ranges than this in one request are refused (416) rather than served:
#: many tiny ranges cost far more than the bytes they ask for.
MAX_RANGES: Final = 16

_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` to ``end`` inclusive, as HTTP counts them."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """How many bytes the range holds."""
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` value of this range of a ``size``-byte file."""
        return f"bytes {self.start}-{self.end}/{size}"


class RangeNotSatisfiable(Exception):
    """No requested range overlaps the file (416)."""


def parse_range(header: str | None, size: int) -> list[ByteRange] | None:
    """The ranges asked for, or None to serve the whole file (no or unusable header).

    A syntactically invalid header is ignored, as RFC 9110 asks; a valid one
    none of whose ranges overlaps the file raises :class:`RangeNotSatisfiable`.
    """
    if header is None:
        return None
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes" or not specs.strip():
        return None
    parts = specs.split(",")
    if len(parts) > MAX_RANGES:
        raise RangeNotSatisfiable
    ranges: list[ByteRange] = []
    for part in parts:
        match = _SPEC.match(part)
        if match is None:
            return None
        first, last = match.groups()
        if first == "" and last == "":
            return None
        if first == "":
            suffix = int(last)  # the last N bytes
            if suffix == 0 or size == 0:
                continue  # asks for no byte at all
            ranges.append(ByteRange(max(0, size - suffix), size - 1))
            continue
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            return None  # invalid: the whole header is ignored
        if start >= size:
            continue  # unsatisfiable on its own; others may still be served
        ranges.append(ByteRange(start, min(end, size - 1)))
    if not ranges:
        raise RangeNotSatisfiable
    return ranges


def if_range_allows(header: str | None, etag: str) -> bool:
    """Whether ``If-Range`` lets the ranges be served (else the whole file is sent).

    Only a strong entity tag equal to ours validates; a date never does,
    since a report's representation is identified by its digest alone.
    """
    if header is None:
        return True
    value = header.strip()
    return not value.startswith("W/") and value == etag


@dataclass(frozen=True, slots=True)
class MultipartLayout:
    """The framing of a ``multipart/byteranges`` body around its ranges."""

    boundary: str
    heads: list[bytes]
    tail: bytes

    @property
    def content_type(self) -> str:
        """The response's ``Content-Type``."""
        return f"multipart/byteranges; boundary={self.boundary}"

    def length(self, ranges: list[ByteRange]) -> int:
        """Exact body length: framing plus the ranges' bytes."""
        return sum(map(len, self.heads)) + len(self.tail) + sum(r.length for r in ranges)


def multipart_layout(
    ranges: list[ByteRange], *, size: int, content_type: str, boundary: str
) -> MultipartLayout:
    """Headers of each part and the closing delimiter, for a fixed boundary."""
    heads = [
        (
            f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n"
            f"Content-Range: {r.content_range(size)}\r\n\r\n"
        ).encode("ascii")
        for r in ranges
    ]
    return MultipartLayout(boundary, heads, f"\r\n--{boundary}--\r\n".encode("ascii"))
