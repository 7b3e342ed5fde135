"""Every page form answers unsafe or malformed input with a 4xx page, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import text

from apiserver import serve, settings_for
from meritum_api.app import create_app
from meritum_api.deps import Deps
from meritum_web.security import CSRF_COOKIE
from webtab import PASSWORD, PHYSICIAN

#: NUL, which PostgreSQL cannot store: refused before any handler. (A lone surrogate
#: cannot arrive in a form: its percent-encoded bytes are not UTF-8 and decode as U+FFFD.)
UNREADABLE = ["a\x00b", "\x00"]
#: Text that is fine to read but wrong for the field.
ACCENTS = "é" * 10
UNREADABLE_PAGE = "This could not be read"


def post(
    http: httpx.Client, path: str, fields: dict[str, str], cookie: dict[str, str] | None = None
) -> httpx.Response:
    """POST a urlencoded form whose text may hold what UTF-8 cannot."""
    content = urlencode(fields, encoding="utf-8", errors="surrogatepass").encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **(cookie or {})}
    answer = http.post(path, content=content, headers=headers)
    http.cookies.clear()  # each request states the cookies it sends
    return answer


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=30) as client:
        yield client


def signed_in(http: httpx.Client) -> tuple[dict[str, str], str]:
    """The Cookie header of a fresh web session, and its CSRF token."""
    answer = post(http, "/sign-in", {"email": PHYSICIAN, "password": PASSWORD})
    assert answer.status_code == 303
    jar: SimpleCookie = SimpleCookie()
    for line in answer.headers.get_list("set-cookie"):
        jar.load(line)
    cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in jar.items())
    return {"Cookie": cookie}, jar[CSRF_COOKIE].value


@pytest.mark.parametrize("bad", UNREADABLE)
def test_unreadable_text_in_any_page_form_is_a_400_page(http: httpx.Client, bad: str) -> None:
    cookie, csrf = signed_in(http)
    attempts = [
        ("/sign-in", {"email": bad, "password": bad}, None),
        ("/sign-in", {"email": PHYSICIAN, "password": PASSWORD, "next": "/" + bad}, None),
        ("/reports/new", {"csrf_token": bad}, cookie),
        ("/data-portability", {"csrf_token": bad}, cookie),
        (f"/reports/{uuid.uuid4()}/again", {"csrf_token": bad}, cookie),
        ("/reports/new", {"csrf_token": csrf, "preset": "custom", "period_start": bad}, cookie),
        ("/notifications/read-all", {"csrf_token": bad}, cookie),
        (f"/notifications/{uuid.uuid4()}/read", {"csrf_token": bad}, cookie),
        ("/scheduled-reports", {"csrf_token": csrf, "report_type": bad}, cookie),
        (
            "/scheduled-reports",
            {"csrf_token": csrf, "report_type": "WEEKLY_SUMMARY", "delivery_method": bad},
            cookie,
        ),
        (f"/scheduled-reports/{uuid.uuid4()}", {"csrf_token": csrf, "frequency": bad}, cookie),
        (f"/scheduled-reports/{uuid.uuid4()}/pause", {"csrf_token": bad}, cookie),
        (f"/scheduled-reports/{uuid.uuid4()}/delete", {"csrf_token": bad}, cookie),
    ]
    for path, fields, sent in attempts:
        answer = post(http, path, fields, sent)
        assert answer.status_code == 400, (path, fields)
        assert answer.headers["content-type"].startswith("text/html")
        assert UNREADABLE_PAGE in answer.text
    query = urlencode({"kind": bad}, encoding="utf-8", errors="surrogatepass")
    assert http.get(f"/?{query}", headers=cookie).status_code == 400


def test_a_wrong_password_in_accents_is_just_wrong(http: httpx.Client) -> None:
    answer = post(http, "/sign-in", {"email": ACCENTS, "password": ACCENTS})
    assert answer.status_code == 401
    assert "Wrong email or password" in answer.text


def test_a_strange_return_path_leads_home(http: httpx.Client) -> None:
    for strange in ("/" + ACCENTS, "/a b", "https://evil.example/"):
        fields = {"email": PHYSICIAN, "password": PASSWORD, "next": strange}
        answer = post(http, "/sign-in", fields)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/"


def test_a_csrf_token_in_accents_is_refused_on_every_form(http: httpx.Client) -> None:
    cookie, _ = signed_in(http)
    for path in ("/reports/new", "/data-portability", f"/reports/{uuid.uuid4()}/again"):
        answer = post(http, path, {"csrf_token": ACCENTS}, cookie)
        assert answer.status_code == 403, path
        assert "security token" in answer.text


def test_wrong_request_fields_are_errors_beside_the_fields(http: httpx.Client) -> None:
    cookie, csrf = signed_in(http)
    fields = {
        "csrf_token": csrf,
        "preset": "custom",
        "format": "csv",
        "period_start": ACCENTS,
        "period_end": "2026-02-30",
    }
    answer = post(http, "/reports/new", fields, cookie)
    assert answer.status_code == 400
    assert 'id="period_start-error">Enter a date, for example 2026-03-31.<' in answer.text
    assert 'id="period_end-error"' in answer.text
    odd = post(
        http, "/reports/new", {"csrf_token": csrf, "preset": ACCENTS, "format": ACCENTS}, cookie
    )
    assert odd.status_code == 400
    assert 'id="preset-error"' in odd.text
    assert 'id="format-error"' in odd.text


@pytest.mark.parametrize(
    "query",
    [
        "kind=NOPE",
        "from=2026-13-01",
        "to=2026",
        "page=x",
        "from=2026-05-01&to=2026-01-01",
    ],
)
def test_bad_filters_are_said_and_the_list_still_shows(http: httpx.Client, query: str) -> None:
    cookie, _ = signed_in(http)
    answer = http.get(f"/?{query}", headers=cookie)
    assert answer.status_code == 200
    assert "Those filters are not valid" in answer.text


def test_the_apps_own_files_do_not_count_against_the_request_rate(
    runtime: Deps, db_url: str
) -> None:
    strict = runtime.replace(settings=settings_for(db_url, rate_limit_per_minute=3))
    with serve(create_app(strict)) as url, httpx.Client(base_url=url) as client:
        for _ in range(3):
            for name in ("app.css", "status.js", "download.js", "favicon.svg"):
                assert client.get(f"/static/{name}").status_code == 200
        assert [client.get("/sign-in").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_wrong_and_oversized_subscription_fields_are_4xx_and_change_nothing(
    http: httpx.Client, runtime: Deps
) -> None:
    cookie, csrf = signed_in(http)

    def subscriptions() -> int:
        with runtime.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM report_subscriptions")).scalar_one())

    before = subscriptions()
    attempts = [
        ("/scheduled-reports", {"csrf_token": csrf, "report_type": ACCENTS}),
        ("/scheduled-reports", {"csrf_token": csrf, "report_type": "X" * 5000}),
        ("/scheduled-reports", {"csrf_token": csrf, "report_type": "DATA_PORTABILITY"}),
        (
            "/scheduled-reports",
            {"csrf_token": csrf, "report_type": "RRNP_QUARTERLY", "frequency": "DAILY"},
        ),
        ("/scheduled-reports/not-an-id", {"csrf_token": csrf, "frequency": "WEEKLY"}),
        (f"/scheduled-reports/{uuid.uuid4()}/pause", {"csrf_token": csrf}),
        ("/notifications/not-an-id/read", {"csrf_token": csrf}),
    ]
    for path, fields in attempts:
        answer = post(http, path, fields, cookie)
        assert 400 <= answer.status_code < 500, (path, fields, answer.status_code)
        assert answer.headers["content-type"].startswith("text/html"), path
    assert subscriptions() == before
