"""HTTP byte ranges: parsing against RFC 9110 and the exact multipart framing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meritum_api.domains.analytics.ranges import (
    MAX_RANGES,
    ByteRange,
    RangeNotSatisfiable,
    if_range_allows,
    multipart_layout,
    parse_range,
)


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 10, [ByteRange(0, 0)]),  # first byte
        ("bytes=9-9", 10, [ByteRange(9, 9)]),  # last byte
        ("bytes=9-", 10, [ByteRange(9, 9)]),
        ("bytes=-1", 10, [ByteRange(9, 9)]),  # suffix: last byte
        ("bytes=-4", 10, [ByteRange(6, 9)]),
        ("bytes=-100", 10, [ByteRange(0, 9)]),  # suffix longer than the file
        ("bytes=5-100", 10, [ByteRange(5, 9)]),  # end clipped
        ("bytes=0-1, 8-", 10, [ByteRange(0, 1), ByteRange(8, 9)]),
        ("bytes=0-1,20-30", 10, [ByteRange(0, 1)]),  # one unsatisfiable part is dropped
        ("BYTES = 2-3", 10, [ByteRange(2, 3)]),
    ],
)
def test_satisfiable_ranges(header: str, size: int, expected: list[ByteRange]) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    "header",
    [None, "", "bytes=", "items=0-1", "bytes=a-b", "bytes=5-2", "bytes=-", "bytes=0-1;x", "0-1"],
)
def test_unusable_headers_are_ignored(header: str | None) -> None:
    assert parse_range(header, 10) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=-0", 10), ("bytes=0-", 0), ("bytes=-5", 0)],
)
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


def test_too_many_ranges_are_refused() -> None:
    header = "bytes=" + ",".join(f"{n}-{n}" for n in range(MAX_RANGES + 1))
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


@given(size=st.integers(1, 10_000), data=st.data())
def test_parsed_ranges_always_lie_inside_the_file(size: int, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, size * 2))
    end = data.draw(st.integers(start, size * 3))
    try:
        ranges = parse_range(f"bytes={start}-{end}", size)
    except RangeNotSatisfiable:
        assert start >= size
        return
    assert ranges is not None
    (only,) = ranges
    assert 0 <= only.start <= only.end < size
    assert only.start == start
    assert only.end == min(end, size - 1)


def test_if_range_needs_our_strong_etag() -> None:
    etag = '"abc"'
    assert if_range_allows(None, etag)
    assert if_range_allows('"abc"', etag)
    assert not if_range_allows('W/"abc"', etag)
    assert not if_range_allows('"other"', etag)
    assert not if_range_allows("Wed, 21 Oct 2015 07:28:00 GMT", etag)


def test_multipart_length_is_exact() -> None:
    ranges = [ByteRange(0, 1), ByteRange(5, 9)]
    layout = multipart_layout(ranges, size=10, content_type="text/csv", boundary="b0undary")
    body = (
        b"".join(head + b"x" * r.length for head, r in zip(layout.heads, ranges, strict=True))
        + layout.tail
    )
    assert layout.length(ranges) == len(body)
    assert b"Content-Range: bytes 5-9/10" in body
    assert layout.content_type == "multipart/byteranges; boundary=b0undary"
