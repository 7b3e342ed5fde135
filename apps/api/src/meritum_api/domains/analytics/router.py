"""The reports endpoints of spec section 3: HTTP in, HTTP out; rules live in the service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from meritum_api.audit import repository as audit
from meritum_api.auth.dependencies import require
from meritum_api.context import AuthContext
from meritum_api.domains.analytics import repository, service
from meritum_api.domains.analytics.dependencies import IdempotencyKey
from meritum_api.domains.analytics.downloads import Download, respond
from meritum_api.domains.analytics.exceptions import ReportNotFound
from meritum_api.domains.analytics.responses import (
    CREATE_RESPONSES,
    DETAIL_RESPONSES,
    DOWNLOAD_RESPONSES,
    LIST_RESPONSES,
)
from meritum_api.http.deps import AppDeps, get_deps
from meritum_shared.constants.analytics import AuditAction, ReportFormat, ReportStatus, ReportType
from meritum_shared.constants.auth import Permission
from meritum_shared.schemas.validation.analytics import (
    ACCOUNTANT_OUTPUT,
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

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

#: Seconds a client should wait before asking again about a report in progress.
RETRY_AFTER_SECONDS = 2

Deps = Annotated[AppDeps, Depends(get_deps)]


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
    ctx: Annotated[AuthContext, Depends(require(Permission.REPORT_EXPORT))],
    deps: Deps,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Queue an accountant export of a period; answers at once with the pending report."""
    report_type, format = ACCOUNTANT_OUTPUT[body.format]
    with deps.session_factory.begin() as session:
        requested = service.request_once(
            session=session,
            ctx=ctx,
            queue=deps.queue,
            idempotency_key=idempotency_key,
            fingerprint=service.request_fingerprint("accountant", body.model_dump(mode="json")),
            report_type=report_type,
            format=format,
            period_start=body.period_start,
            period_end=body.period_end,
        )
        if not requested.replayed:
            audit.record(
                session=session,
                ctx=ctx,
                action=AuditAction.REPORT_GENERATED,
                resource_id=requested.report.report_id,
                details={"report_type": report_type.value, "format": format.value},
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
    ctx: Annotated[AuthContext, Depends(require(Permission.DATA_EXPORT))],
    deps: Deps,
    idempotency_key: IdempotencyKey = None,
    body: Annotated[DataPortabilityRequest | None, Body()] = None,
) -> JSONResponse:
    """Queue a data portability export; at most 3 a day per physician."""
    request = body or DataPortabilityRequest()
    # The password itself never enters the fingerprint: only whether one was given.
    fingerprint = service.request_fingerprint(
        "data-portability", {"password": request.password is not None}
    )
    with deps.session_factory.begin() as session:
        requested = service.request_once(
            session=session,
            ctx=ctx,
            queue=deps.queue,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            report_type=ReportType.DATA_PORTABILITY,
            format=ReportFormat.ZIP,
            period_start=None,
            period_end=None,
        )
        if not requested.replayed:
            audit.record(
                session=session,
                ctx=ctx,
                action=AuditAction.DATA_PORTABILITY_REQUESTED,
                resource_id=requested.report.report_id,
                details={"password_protected": request.password is not None},
                sensitive=True,
            )
    return _created(requested)


@router.get(
    "",
    response_model=PageEnvelope[ReportOut],
    responses=LIST_RESPONSES,
    summary="List the physician's reports, newest first",
)
def list_reports(
    query: Annotated[ReportListQuery, Query()],
    ctx: Annotated[AuthContext, Depends(require(Permission.REPORT_VIEW))],
    deps: Deps,
) -> Response:
    """A page of reports with optional type and creation-date filters."""
    with deps.session_factory() as session:
        page = repository.list_reports(
            session=session,
            ctx=ctx,
            limit=query.limit,
            offset=query.offset,
            report_type=query.report_type,
            start_date=query.start_date,
            end_date=query.end_date,
        )
    body = PageEnvelope[ReportOut](
        data=[ReportOut.model_validate(item, from_attributes=True) for item in page.items],
        pagination=Pagination(
            total=page.total,
            page=query.offset // query.limit + 1,
            page_size=query.limit,
            has_more=query.offset + len(page.items) < page.total,
        ),
    )
    return _json(body)


@router.get(
    "/{report_id}",
    response_model=DataEnvelope[ReportDetail],
    responses=DETAIL_RESPONSES,
    summary="One report's status and details",
)
def get_report(
    report_id: uuid.UUID,
    ctx: Annotated[AuthContext, Depends(require(Permission.REPORT_VIEW))],
    deps: Deps,
) -> Response:
    """The report without its storage key; in progress it carries a Retry-After hint."""
    with deps.session_factory() as session:
        report = repository.get_report(session=session, ctx=ctx, report_id=report_id)
        if report is None:
            raise ReportNotFound
        extra: dict[str, Any] = {}
        if report.status is ReportStatus.READY:
            digest = repository.content_sha256(session=session, ctx=ctx, report_id=report_id)
            extra["sha256"] = digest.hex() if digest is not None else None
        action = (
            AuditAction.DATA_PORTABILITY_DOWNLOADED
            if report.report_type is ReportType.DATA_PORTABILITY
            else AuditAction.REPORT_DOWNLOADED
        )
        first, count = audit.first_and_count(
            session=session, ctx=ctx, resource_id=report_id, action=action
        )
    detail = ReportDetail.model_validate(
        {**report.model_dump(), **extra, "first_downloaded_at": first, "download_count": count}
    )
    response = _json(DataEnvelope[ReportDetail](data=detail))
    if report.status in (ReportStatus.PENDING, ReportStatus.GENERATING):
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


RangeHeader = Annotated[
    str | None, Header(alias="Range", description="bytes=start-end[, …]: resume or sample")
]
IfRangeHeader = Annotated[
    str | None, Header(alias="If-Range", description="The ETag the partial copy was read under")
]
Exporter = Annotated[AuthContext, Depends(require(Permission.REPORT_EXPORT))]


@router.get(
    "/{report_id}/download",
    response_class=Response,
    responses=DOWNLOAD_RESPONSES,
    summary="Download a ready report (resumable with Range)",
)
def download_report(
    report_id: uuid.UUID,
    ctx: Exporter,
    deps: Deps,
    range_header: RangeHeader = None,
    if_range: IfRangeHeader = None,
) -> Response:
    """Stream the decrypted file; 410 Gone once its link has expired."""
    return _download(report_id, ctx, deps, range_header, if_range, head=False)


@router.head(
    "/{report_id}/download",
    response_class=Response,
    responses=DOWNLOAD_RESPONSES,
    summary="The download's headers (size, ETag, digest) without its body",
)
def download_report_head(
    report_id: uuid.UUID,
    ctx: Exporter,
    deps: Deps,
    range_header: RangeHeader = None,
    if_range: IfRangeHeader = None,
) -> Response:
    """What GET would answer, without the body; nothing is recorded."""
    return _download(report_id, ctx, deps, range_header, if_range, head=True)


def _download(
    report_id: uuid.UUID,
    ctx: AuthContext,
    deps: AppDeps,
    range_header: str | None,
    if_range: str | None,
    *,
    head: bool,
) -> Response:
    with deps.session_factory() as session:
        ref = repository.get_download(session=session, ctx=ctx, report_id=report_id)
        digest = repository.content_sha256(session=session, ctx=ctx, report_id=report_id)
    if digest is None:  # a ready report always has one; without it nothing is served
        raise ReportNotFound
    report = ref.report

    def record_download() -> None:
        portability = report.report_type is ReportType.DATA_PORTABILITY
        with deps.session_factory.begin() as session:
            repository.mark_downloaded(session=session, ctx=ctx, report_id=report_id)
            audit.record(
                session=session,
                ctx=ctx,
                action=AuditAction.DATA_PORTABILITY_DOWNLOADED
                if portability
                else AuditAction.REPORT_DOWNLOADED,
                resource_id=report_id,
                details={"bytes": report.file_size_bytes},
                sensitive=portability,
            )

    return respond(
        download=Download(report=report, storage_key=ref.storage_key, sha256=digest),
        storage=deps.storage,
        range_header=range_header,
        if_range=if_range,
        head=head,
        on_complete=record_download,
    )
