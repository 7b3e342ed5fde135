"""The reports API's request contracts refuse what spec section 3 refuses."""

from __future__ import annotations

import calendar
import json
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from meritum_shared.schemas.validation.analytics import (
    PERIOD_LENGTH_MESSAGE,
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


def _two_years_after(start: date) -> date:
    # The oracle, written apart from the model: the same month and day two
    # years on, the last day of that month when it is shorter (29 Feb → 28 Feb).
    year = start.year + 2
    return date(year, start.month, min(start.day, calendar.monthrange(year, start.month)[1]))


@given(start=st.dates(date(2000, 1, 1), date(2090, 1, 1)), days=st.integers(0, 2000))
def test_two_year_limit(start: date, days: int) -> None:
    end = start + timedelta(days=days)
    body = {
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "format": "pdf_detail",
    }
    if end < _two_years_after(start):
        AccountantExportRequest.model_validate(body)
    else:
        with pytest.raises(ValidationError) as refused:
            AccountantExportRequest.model_validate(body)
        (error,) = refused.value.errors()
        assert (error["loc"], error["msg"]) == (("period_end",), PERIOD_LENGTH_MESSAGE)


@pytest.mark.parametrize(
    ("start", "longest"),
    [
        ("2024-03-31", "2026-03-30"),
        ("2024-01-01", "2025-12-31"),
        ("2023-03-01", "2025-02-28"),  # 731 days: the leap day of 2024 is inside
        ("2024-02-28", "2026-02-27"),
        # Two years after 29 February is 28 February (as PostgreSQL's
        # date + interval '2 years' says): the period never exceeds two years.
        ("2024-02-29", "2026-02-27"),
        ("2027-02-28", "2029-02-27"),
        ("2026-12-31", "2028-12-30"),
    ],
)
def test_the_longest_period_ends_the_day_before_two_years_later(start: str, longest: str) -> None:
    body = {"period_start": start, "period_end": longest, "format": "csv"}
    assert AccountantExportRequest.model_validate(body).period_end == date.fromisoformat(longest)
    one_more = (date.fromisoformat(longest) + timedelta(days=1)).isoformat()
    with pytest.raises(ValidationError) as refused:
        AccountantExportRequest.model_validate({**body, "period_end": one_more})
    (error,) = refused.value.errors()
    assert error["loc"] == ("period_end",)
    assert error["msg"] == (
        "Must be before the same day two years after period_start "
        "(a period covers at most two years)"
    )


def test_a_period_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValidationError) as refused:
        AccountantExportRequest.model_validate(
            {"period_start": "2026-03-01", "period_end": "2026-02-28", "format": "csv"}
        )
    (error,) = refused.value.errors()
    assert (error["loc"], error["msg"]) == (("period_end",), "Must not be before period_start")
    same_day = {"period_start": "2026-03-01", "period_end": "2026-03-01", "format": "csv"}
    assert AccountantExportRequest.model_validate(same_day).period_start == date(2026, 3, 1)


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


@pytest.mark.parametrize(
    "written", ["2026-01-01\n", "２０２６-01-01", "2026-01-01T00:00", " 2026-01-01"]
)
def test_dates_are_written_one_way_only(written: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ReportListQuery.model_validate({"start_date": written})
    (error,) = refused.value.errors()
    assert error["msg"] == "Must be a date written YYYY-MM-DD"


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
