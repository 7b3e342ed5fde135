"""FastAPI's access to the process's dependency container."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from meritum_api.deps import Deps


async def get_deps(request: Request) -> Deps:
    """The container the app was created with (async: no thread hop for a lookup)."""
    deps: Deps = request.app.state.deps
    return deps


#: ``deps: AppDeps`` in a route signature.
AppDeps = Annotated[Deps, Depends(get_deps)]
