"""The app's own static files: each URL carries its digest, so browsers may keep it for good."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR: Final = Path(__file__).parent / "static"

#: A short digest of each file, read once: a changed file gets a new URL.
VERSIONS: Final = {
    file.name: hashlib.sha256(file.read_bytes()).hexdigest()[:16]
    for file in sorted(STATIC_DIR.iterdir())
    if file.is_file()
}

#: A versioned URL names one content forever; an unversioned one is checked every time.
FOREVER: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"


def asset(name: str) -> str:
    """The URL of a static file, with its version."""
    return f"/static/{name}?v={VERSIONS[name]}"


class VersionedStaticFiles(StaticFiles):
    """Static files a browser keeps when asked for by their current version.

    They are public and hold no personal information, unlike every other
    response (which the hardening middleware marks ``no-store``).
    """

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            asked = _query_value(scope, "v")
            current = VERSIONS.get(Path(path).name)
            fresh = current is not None and asked == current
            response.headers["cache-control"] = FOREVER if fresh else REVALIDATE
        return response


def _query_value(scope: Scope, key: str) -> str | None:
    raw: bytes = scope.get("query_string", b"")
    values = parse_qs(raw.decode("latin-1")).get(key)
    return values[0] if values else None
