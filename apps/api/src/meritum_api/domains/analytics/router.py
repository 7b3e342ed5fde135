"""The reports endpoints of spec section 3: HTTP in, HTTP out; rules live in the service."""

from __future__ import annotations

import uuid
from typing import Annotated, Final

from fastapi import APIRouter, Body, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from meritum_api.domains.analytics import service
from meritum_api.domains.analytics.dependencies import (
    Exporter,
    IdempotencyKey,
    PortabilityExporter,
    ReportForDownload,
    Viewer,
)
from meritum_api.domains.analytics.downloads import respond
from meritum_api.domains.analytics.responses import (
    CREATE_RESPONSES,
    DETAIL_RESPONSES,
    DOWNLOAD_RESPONSES,
    LIST_RESPONSES,
)
from meritum_api.domains.analytics.schemas import ReportView
from meritum_api.http.deps import AppDeps, Reads
from meritum_api.http.query import documented_query, parse_query
from meritum_shared.constants.analytics import ReportStatus
from meritum_shared.schemas.validation.analytics import (
    AccountantExportRequest,
    DataEnvelope,
    DataPortabilityRequest,
    PageEnvelope,
    Pagination,
    ReportCreated,
    ReportDetail,
    ReportListQuery,
    ReportOut,
)
from meritum_shared.schemas.validation.text import Text

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

#: What a row holds that the API does not show (ReportOut is the rest, in the same order).
_UNLISTED: Final = {"data": {"__all__": set(ReportView.model_fields) - set(ReportOut.model_fields)}}

_ListedPage: Final = PageEnvelope[ReportView]

#: Seconds a client should wait before asking again about a report in progress.
RETRY_AFTER_SECONDS = 2


def _json(body: BaseModel, status_code: int = 200) -> Response:
    # Serialised here, already validated by construction: FastAPI would
    # validate the model a second time (in a worker thread) for a sync route.
    return Response(
        body.model_dump_json(by_alias=True), status_code=status_code, media_type="application/json"
    )


def _created(requested: service.Requested) -> JSONResponse:
    body = DataEnvelope[ReportCreated](
        data=ReportCreated(report_id=requested.report.report_id, status=requested.report.status)
    )
    headers = {"Location": f"/api/v1/reports/{requested.report.report_id}"}
    if requested.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body.model_dump(mode="json"), status_code=201, headers=headers)


@router.post(
    "/accountant",
    status_code=201,
    response_model=DataEnvelope[ReportCreated],
    responses=CREATE_RESPONSES,
    summary="Request an accountant export (CSV, PDF summary or PDF detail)",
)
def request_accountant_export(
    body: AccountantExportRequest,
    ctx: Exporter,
    deps: AppDeps,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Queue an accountant export of a period; answers at once with the pending report."""
    with deps.session_factory.begin() as session:
        requested = service.request_accountant_export(
            session=session,
            ctx=ctx,
            queue=deps.queue,
            request=body,
            idempotency_key=idempotency_key,
        )
    return _created(requested)


@router.post(
    "/data-portability",
    status_code=201,
    response_model=DataEnvelope[ReportCreated],
    responses=CREATE_RESPONSES,
    summary="Request an export of all of the physician's data (ZIP)",
)
def request_data_portability(
    ctx: PortabilityExporter,
    deps: AppDeps,
    idempotency_key: IdempotencyKey = None,
    body: Annotated[DataPortabilityRequest | None, Body()] = None,
) -> JSONResponse:
    """Queue a data portability export; at most 3 a day per physician."""
    with deps.session_factory.begin() as session:
        requested = service.request_data_portability(
            session=session,
            ctx=ctx,
            queue=deps.queue,
            keyring=deps.keyring,
            request=body or DataPortabilityRequest(),
            idempotency_key=idempotency_key,
        )
    return _created(requested)


@router.get(
    "",
    response_model=PageEnvelope[ReportOut],
    responses=LIST_RESPONSES,
    summary="List the physician's reports, newest first",
    openapi_extra=documented_query(ReportListQuery),
)
async def list_reports(request: Request, ctx: Viewer, reads: Reads) -> Response:
    """A page of reports, newest first, optionally of one type or within a period."""
    query = parse_query(ReportListQuery, request)
    async with reads.connection() as conn:
        page = await service.list_reports(conn=conn, ctx=ctx, query=query)
    body = _ListedPage(
        data=page.items,
        pagination=Pagination(
            total=page.total,
            page=query.offset // query.limit + 1,
            page_size=query.limit,
            has_more=query.offset + len(page.items) < page.total,
        ),
    )
    # The items are the validated rows, written as ReportOut: a second
    # validation into ReportOut objects would cost as much as the first.
    return Response(
        body.model_dump_json(by_alias=True, exclude=_UNLISTED),
        media_type="application/json",
    )


@router.get(
    "/{report_id}",
    response_model=DataEnvelope[ReportDetail],
    responses=DETAIL_RESPONSES,
    summary="One report's status and details",
)
def get_report(report_id: uuid.UUID, ctx: Viewer, deps: AppDeps) -> Response:
    """The report without its storage key; in progress it carries a Retry-After hint."""
    with deps.session_factory() as session:
        found = service.report_detail(session=session, ctx=ctx, report_id=report_id)
    report = found.report
    detail = ReportDetail.model_validate(
        {
            **report.model_dump(),
            "sha256": found.sha256.hex() if found.sha256 is not None else None,
            "first_downloaded_at": found.first_downloaded_at,
            "download_count": found.download_count,
            "password_protected": found.password_protected,
        }
    )
    response = _json(DataEnvelope[ReportDetail](data=detail))
    if report.status in (ReportStatus.PENDING, ReportStatus.GENERATING):
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


RangeHeader = Annotated[
    Text | None, Header(alias="Range", description="bytes=start-end[, …]: resume or sample")
]
IfRangeHeader = Annotated[
    Text | None, Header(alias="If-Range", description="The ETag the partial copy was read under")
]


@router.get(
    "/{report_id}/download",
    response_class=Response,
    responses=DOWNLOAD_RESPONSES,
    summary="Download a ready report (resumable with Range)",
)
def download_report(
    download: ReportForDownload,
    ctx: Exporter,
    deps: AppDeps,
    range_header: RangeHeader = None,
    if_range: IfRangeHeader = None,
) -> Response:
    """Stream the decrypted file; 410 Gone once its link has expired."""
    return _download(download, ctx, deps, range_header, if_range, head=False)


@router.head(
    "/{report_id}/download",
    response_class=Response,
    responses=DOWNLOAD_RESPONSES,
    summary="The download's headers (size, ETag, digest) without its body",
)
def download_report_head(
    download: ReportForDownload,
    ctx: Exporter,
    deps: AppDeps,
    range_header: RangeHeader = None,
    if_range: IfRangeHeader = None,
) -> Response:
    """What GET would answer, without the body; nothing is recorded."""
    return _download(download, ctx, deps, range_header, if_range, head=True)


def _download(
    download: ReportForDownload,
    ctx: Exporter,
    deps: AppDeps,
    range_header: str | None,
    if_range: str | None,
    *,
    head: bool,
) -> Response:
    def recorded() -> None:
        # After the last byte has been handed to the server: a transaction of its own.
        with deps.session_factory.begin() as session:
            service.record_download(session=session, ctx=ctx, report=download.report)

    return respond(
        download=download,
        storage=deps.storage,
        range_header=range_header,
        if_range=if_range,
        head=head,
        on_complete=recorded,
    )
