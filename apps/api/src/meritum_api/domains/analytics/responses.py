"""The documented answers of each reports endpoint, for the OpenAPI document."""

from __future__ import annotations

from meritum_api.http.openapi import ALWAYS, Responses
from meritum_api.http.openapi import error_response as _error

_COMMON: Responses = {
    **ALWAYS,
    400: _error("Malformed request: a parameter, header or body field is invalid"),
    401: _error("Not authenticated"),
    403: _error("Authenticated, but without the permission this route needs"),
}

CREATE_RESPONSES: Responses = {
    **_COMMON,
    403: _error("Missing permission, or a cookie-authenticated request without its CSRF token"),
    413: _error("The request body is too large"),
    422: _error(
        "A business rule refused the request: a format not available yet, "
        "or an Idempotency-Key reused with a different body"
    ),
}

LIST_RESPONSES: Responses = dict(_COMMON)

DETAIL_RESPONSES: Responses = {
    **_COMMON,
    404: _error("No such report of this physician"),
}

DOWNLOAD_RESPONSES: Responses = {
    **_COMMON,
    200: {
        "description": "The whole file",
        "content": {
            "text/csv": {},
            "application/pdf": {},
            "application/zip": {},
        },
    },
    206: {
        "description": "The requested range(s) of the file (multipart/byteranges for several)",
        "content": {"multipart/byteranges": {}},
    },
    404: _error("No such report of this physician, or it is not ready"),
    410: _error("The download link has expired; details say why and which request makes it again"),
    416: _error("No requested range overlaps the file; Content-Range gives its size"),
}
