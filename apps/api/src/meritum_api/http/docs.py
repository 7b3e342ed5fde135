"""The interactive API documentation at ``/docs``, served without any CDN.

Swagger UI's files come from an installed package (``swagger-ui-bundle-v2``,
Swagger UI 5, which reads the OpenAPI 3.1 document FastAPI writes) and its
start-up script is a file of ours, so the page runs under a policy that
allows scripts, styles and requests from this origin only and no inline
script at all (:data:`meritum_api.http.middleware.DOCS_CSP`). Only the few
files the page needs are served, each with its exact media type.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

from meritum_api.http.errors import ApiError
from meritum_shared.schemas.validation.text import Text

DOCS_PATH: Final = "/docs"
ASSETS_PATH: Final = "/docs/assets"

_SWAGGER = Path(str(swagger_ui_path))
_STATIC = Path(__file__).parent / "static"
#: Every file the page loads: name → (file, media type).
ASSETS: Final[dict[str, tuple[Path, str]]] = {
    "swagger-ui.css": (_SWAGGER / "swagger-ui.css", "text/css; charset=utf-8"),
    "swagger-ui-bundle.js": (_SWAGGER / "swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-init.js": (_STATIC / "swagger-init.js", "text/javascript; charset=utf-8"),
    "favicon-32x32.png": (_SWAGGER / "favicon-32x32.png", "image/png"),
}

_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API documentation</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI, *, openapi_url: str) -> None:
    """Serve Swagger UI at ``/docs`` over ``openapi_url``, its files from this origin."""

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = escape(request.scope.get("root_path", ""))
        page = _PAGE.format(
            title=escape(app.title),
            assets=root + ASSETS_PATH,
            openapi=root + escape(openapi_url),
        )
        return HTMLResponse(page)

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    def asset(name: Text) -> FileResponse:
        if name not in ASSETS:
            raise ApiError.of(404)
        path, media_type = ASSETS[name]
        # No PHI here: the browser may keep a copy, revalidated by its ETag.
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})
