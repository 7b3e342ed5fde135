"""The reports API's request contracts refuse what spec section 3 refuses."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from meritum_shared.schemas.validation.analytics import (
    MAX_EXPORT_DAYS,
    AccountantExportRequest,
    AccountantFormat,
    DataPortabilityRequest,
    Pagination,
    ReportListQuery,
)
from meritum_shared.schemas.validation.text import (
    ENCODING_MESSAGE,
    NUL_MESSAGE,
    SecretText,
    Text,
)


def test_accountant_request_accepts_a_valid_period() -> None:
    body = AccountantExportRequest.model_validate(
        {"period_start": "2026-01-01", "period_end": "2026-03-31", "format": "csv"}
    )
    assert body.period_start == date(2026, 1, 1)
    assert body.format is AccountantFormat.CSV


@pytest.mark.parametrize(
    "body",
    [
        {"period_start": "2026-03-01", "period_end": "2026-01-01", "format": "csv"},
        {"period_start": "2024-01-01", "period_end": "2026-01-02", "format": "csv"},
        {"period_start": "2026/01/01", "period_end": "2026-01-02", "format": "csv"},
        {"period_start": "2026-1-1", "period_end": "2026-01-02", "format": "csv"},
        {"period_start": 1767225600, "period_end": "2026-01-02", "format": "csv"},
        {"period_start": "2026-02-30", "period_end": "2026-03-02", "format": "csv"},
        {"period_start": "2026-01-01T00:00:00", "period_end": "2026-01-02", "format": "csv"},
        {"period_start": "2026-01-01", "period_end": "2026-01-02", "format": "xlsx"},
        {"period_start": "2026-01-01", "period_end": "2026-01-02", "format": "CSV"},
        {"period_start": "2026-01-01", "period_end": "2026-01-02"},
        {"period_start": "2026-01-01", "period_end": "2026-01-02", "format": "csv", "x": 1},
    ],
)
def test_accountant_request_refusals(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AccountantExportRequest.model_validate(body)


@given(start=st.dates(date(2000, 1, 1), date(2090, 1, 1)), days=st.integers(0, 2000))
def test_two_year_limit(start: date, days: int) -> None:
    body = {
        "period_start": start.isoformat(),
        "period_end": (start + timedelta(days=days)).isoformat(),
        "format": "pdf_detail",
    }
    if days < MAX_EXPORT_DAYS:
        AccountantExportRequest.model_validate(body)
    else:
        with pytest.raises(ValidationError):
            AccountantExportRequest.model_validate(body)


def test_portability_password_rules() -> None:
    assert DataPortabilityRequest.model_validate({}).password is None
    ok = DataPortabilityRequest.model_validate({"password": "twelve chars"})
    assert ok.password is not None
    assert "twelve" not in repr(ok)  # a secret is never printed
    for bad in ("short", "x" * 129, 123456789012):
        with pytest.raises(ValidationError):
            DataPortabilityRequest.model_validate({"password": bad})


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"report_type": "NOPE"},
        {"start_date": "2026-02-01", "end_date": "2026-01-01"},
        {"start_date": "yesterday"},
    ],
)
def test_list_query_refusals(query: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ReportListQuery.model_validate(query)


def test_list_query_defaults_and_pagination_names() -> None:
    query = ReportListQuery.model_validate({})
    assert (query.limit, query.offset) == (20, 0)
    page = Pagination(total=3, page=1, page_size=20, has_more=False)
    assert page.model_dump(by_alias=True) == {
        "total": 3,
        "page": 1,
        "pageSize": 20,
        "hasMore": False,
    }


# --- text a client may send -------------------------------------------------------

_text = TypeAdapter(Text)
_secret = TypeAdapter(SecretText)


@given(value=st.text(st.characters(codec="utf-8", exclude_characters="\x00")))
def test_storable_text_passes_unchanged(value: str) -> None:
    assert _text.validate_python(value) == value
    assert _secret.validate_python(value).get_secret_value() == value


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("dr\x00@clinic.example", "text_nul", NUL_MESSAGE),
        ("\x00", "text_nul", NUL_MESSAGE),
        ("\ud800", "text_encoding", ENCODING_MESSAGE),
        ("pass\udfffword", "text_encoding", ENCODING_MESSAGE),
        ("é\udc80", "text_encoding", ENCODING_MESSAGE),
    ],
)
def test_unstorable_text_is_refused_saying_why(value: str, kind: str, message: str) -> None:
    for adapter in (_text, _secret):
        with pytest.raises(ValidationError) as refused:
            adapter.validate_python(value)
        (error,) = refused.value.errors()
        assert (error["type"], error["msg"]) == (kind, message)
    with pytest.raises(ValidationError):
        _text.validate_json(json.dumps(value))  # the JSON escapes, "\u0000" and "\ud800"


def test_non_text_is_left_to_the_type() -> None:
    with pytest.raises(ValidationError) as refused:
        _text.validate_python(12)
    assert refused.value.errors()[0]["type"] == "string_type"


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("x" * 11, "Must have at least 12 characters"),
        ("x" * 129, "Must have at most 128 characters"),
        ("twelve chars\x00", NUL_MESSAGE),
        ("twelve chars\ud800", ENCODING_MESSAGE),
    ],
)
def test_archive_password_messages_speak_of_characters(password: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        DataPortabilityRequest.model_validate({"password": password})
    (error,) = refused.value.errors()
    assert error["loc"] == ("password",)
    assert error["msg"] == message
    assert "x" * 11 not in str(refused.value.errors(include_input=False))
    for fine in ("x" * 12, "x" * 128, "ça-fait-douze"):
        assert DataPortabilityRequest.model_validate({"password": fine}).password is not None
