"""FastAPI's access to the process's dependency container."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from meritum_api.db.reads import ReadPool
from meritum_api.deps import Deps


async def get_deps(request: Request) -> Deps:
    """The container the app was created with (async: no thread hop for a lookup)."""
    deps: Deps = request.app.state.deps
    return deps


#: ``deps: AppDeps`` in a route signature.
AppDeps = Annotated[Deps, Depends(get_deps)]


async def get_reads(request: Request) -> ReadPool:
    """The app's asynchronous read pool (:mod:`meritum_api.db.reads`)."""
    reads: ReadPool = request.app.state.reads
    return reads


#: ``reads: Reads`` in a route signature.
Reads = Annotated[ReadPool, Depends(get_reads)]
