"""FastAPI dependencies of the reports endpoints: they load and authorise, handlers stay short."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header

from meritum_api.auth.dependencies import require
from meritum_api.context import AuthContext
from meritum_api.domains.analytics import service
from meritum_api.domains.analytics.downloads import Download
from meritum_api.http.deps import AppDeps
from meritum_shared.constants.auth import Permission
from meritum_shared.schemas.validation.text import Text

#: An optional ``Idempotency-Key``: 1 to 255 visible ASCII characters.
IdempotencyKey = Annotated[
    Text | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Sending the same key and body again within 24 hours returns the "
        "original report instead of creating a second one.",
    ),
]

Viewer = Annotated[AuthContext, Depends(require(Permission.REPORT_VIEW))]
Exporter = Annotated[AuthContext, Depends(require(Permission.REPORT_EXPORT))]
PortabilityExporter = Annotated[AuthContext, Depends(require(Permission.DATA_EXPORT))]


def _report_for_download(report_id: uuid.UUID, ctx: Exporter, deps: AppDeps) -> Download:
    # Raises ReportNotFound (not theirs, unknown, not ready) or ReportExpired (410).
    with deps.session_factory() as session:
        return service.download_for(session=session, ctx=ctx, report_id=report_id)


#: The caller's downloadable report, loaded and authorised (404 / 410 otherwise).
ReportForDownload = Annotated[Download, Depends(_report_for_download)]
