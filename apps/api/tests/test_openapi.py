"""The OpenAPI document is complete: every status code each route can answer is in it."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Query
from sqlalchemy import Engine

from apiserver import build_app, serve, settings_for
from meritum_shared.schemas.validation.analytics import ReportListQuery

#: What each operation must document, beyond 429 and 500 which every route may answer.
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("post", "/api/v1/auth/login"): {"200", "400", "401", "403", "413"},
    ("post", "/api/v1/auth/logout"): {"204", "401", "403"},
    ("get", "/api/v1/auth/me"): {"200", "401"},
    ("get", "/health"): {"200"},
    ("post", "/api/v1/reports/accountant"): {"201", "400", "401", "403", "413", "422"},
    ("post", "/api/v1/reports/data-portability"): {"201", "400", "401", "403", "413", "422"},
    ("get", "/api/v1/reports"): {"200", "400", "401", "403"},
    ("get", "/api/v1/reports/{report_id}"): {"200", "400", "401", "403", "404"},
    ("get", "/api/v1/reports/{report_id}/download"): {
        "200",
        "206",
        "400",
        "401",
        "403",
        "404",
        "410",
        "416",
    },
    ("get", "/api/v1/notifications"): {"200", "400", "401"},
    ("post", "/api/v1/notifications/read-all"): {"200", "400", "401", "403"},
    ("post", "/api/v1/notifications/{notification_id}/read"): {"200", "400", "401", "403", "404"},
    ("get", "/api/v1/notifications/preferences"): {"200", "400", "401"},
    ("put", "/api/v1/notifications/preferences"): {"200", "400", "401", "403", "413"},
    ("get", "/api/v1/report-subscriptions"): {"200", "401", "403"},
    ("post", "/api/v1/report-subscriptions"): {"201", "400", "401", "403", "409", "413", "422"},
    ("put", "/api/v1/report-subscriptions/{subscription_id}"): {
        "200",
        "400",
        "401",
        "403",
        "404",
        "413",
        "422",
    },
    ("delete", "/api/v1/report-subscriptions/{subscription_id}"): {
        "204",
        "400",
        "401",
        "403",
        "404",
    },
    ("head", "/api/v1/reports/{report_id}/download"): {
        "200",
        "206",
        "400",
        "401",
        "403",
        "404",
        "410",
        "416",
    },
}


@pytest.fixture(scope="module")
def document(engine: Engine, db_url: str) -> dict[str, Any]:
    # Served (development only, like /docs) and read over HTTP as a client would.
    app = build_app(engine, settings_for(db_url, environment="development"))
    with serve(app) as url:
        docs = httpx.get(f"{url}/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        response = httpx.get(f"{url}/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_every_route_is_documented_with_every_status_it_answers(
    document: dict[str, Any],
) -> None:
    operations = {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert set(operations) == set(EXPECTED)
    for key, operation in operations.items():
        assert set(operation["responses"]) == EXPECTED[key] | {"429", "500"}, key


def test_errors_are_documented_with_the_error_body(document: dict[str, Any]) -> None:
    for item in document["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, status
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_request_contracts_are_in_the_document(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    accountant = schemas["AccountantExportRequest"]
    assert set(accountant["required"]) == {"period_start", "period_end", "format"}
    assert schemas["AccountantFormat"]["enum"] == ["csv", "pdf_summary", "pdf_detail"]
    listing = document["paths"]["/api/v1/reports"]["get"]["parameters"]
    limit = next(p for p in listing if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)
    download = document["paths"]["/api/v1/reports/{report_id}/download"]["get"]
    assert {p["name"] for p in download["parameters"]} >= {"report_id", "Range", "If-Range"}


def test_every_listing_parameter_is_described(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/api/v1/reports"]["get"]["parameters"]
    by_name = {p["name"]: p for p in parameters}
    assert set(by_name) == {"report_type", "start_date", "end_date", "limit", "offset"}
    for name, parameter in by_name.items():
        assert parameter["in"] == "query", name
        assert len(parameter.get("description", "")) > 20, name
    assert "period_start" in by_name["start_date"]["description"]
    assert "period_end" in by_name["end_date"]["description"]
    assert "Edmonton" in by_name["start_date"]["description"]
    type_schema = by_name["report_type"]["schema"]
    enum = next(s for s in type_schema["anyOf"] if "$ref" in s)["$ref"].rsplit("/", 1)[-1]
    assert "DATA_PORTABILITY" in document["components"]["schemas"][enum]["enum"]
    for name in ("start_date", "end_date"):
        schema = by_name[name]["schema"]
        assert {"type": "string", "format": "date"} in schema["anyOf"], name


def test_the_listing_parameters_read_as_fastapi_would_document_the_model(
    document: dict[str, Any],
) -> None:
    # The list validates its query string in one call rather than through
    # FastAPI's Query model; its parameters must still read as FastAPI's own.
    reference = FastAPI()

    @reference.get("/listing")
    def listing(query: Annotated[ReportListQuery, Query()]) -> None:
        """Only documented."""

    expected = reference.openapi()["paths"]["/listing"]["get"]["parameters"]
    assert document["paths"]["/api/v1/reports"]["get"]["parameters"] == expected
