"""Every page form answers unsafe or malformed input with a 4xx page, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import httpx
import pytest

from meritum_web.security import CSRF_COOKIE
from webtab import PASSWORD, PHYSICIAN

#: NUL, a lone surrogate (valid in a percent-encoded form, not as UTF-8), and plain accents.
UNSAFE = ["a\x00b", "\udcff", "é" * 10]


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


@pytest.mark.parametrize("bad", UNSAFE)
def test_sign_in_refuses_unsafe_text_in_words(http: httpx.Client, bad: str) -> None:
    answer = post(http, "/sign-in", {"email": bad, "password": bad})
    assert answer.status_code in (400, 401)
    assert "Wrong email or password" in answer.text


@pytest.mark.parametrize("bad", UNSAFE)
def test_a_strange_return_path_leads_home(http: httpx.Client, bad: str) -> None:
    fields = {"email": PHYSICIAN, "password": PASSWORD, "next": "/" + bad}
    answer = post(http, "/sign-in", fields)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


@pytest.mark.parametrize("bad", UNSAFE)
def test_an_unsafe_csrf_token_is_refused_on_every_form(http: httpx.Client, bad: str) -> None:
    cookie, _ = signed_in(http)
    for path in ("/reports/new", "/data-portability", f"/reports/{uuid.uuid4()}/again"):
        answer = post(http, path, {"csrf_token": bad}, cookie)
        assert answer.status_code == 403, path
        assert "security token" in answer.text


@pytest.mark.parametrize("bad", UNSAFE)
def test_unsafe_request_fields_are_errors_beside_the_fields(http: httpx.Client, bad: str) -> None:
    cookie, csrf = signed_in(http)
    fields = {
        "csrf_token": csrf,
        "preset": "custom",
        "format": "csv",
        "period_start": bad,
        "period_end": bad,
    }
    answer = post(http, "/reports/new", fields, cookie)
    assert answer.status_code == 400
    assert 'id="period_start-error"' in answer.text
    odd = post(http, "/reports/new", {"csrf_token": csrf, "preset": bad, "format": bad}, cookie)
    assert odd.status_code == 400
    assert 'id="preset-error"' in odd.text
    assert 'id="format-error"' in odd.text


@pytest.mark.parametrize(
    "query",
    [
        "kind=NOPE",
        "from=2026-13-01",
        "to=%00",
        "page=-3",
        "page=x",
        "from=2026-05-01&to=2026-01-01",
    ],
)
def test_bad_filters_are_said_and_the_list_still_shows(http: httpx.Client, query: str) -> None:
    cookie, _ = signed_in(http)
    answer = http.get(f"/?{query}", headers=cookie)
    assert answer.status_code == 200
    assert "Those filters are not valid" in answer.text or query.startswith("page=")
