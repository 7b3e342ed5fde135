"""The notifications endpoints: any signed-in user, their own notifications only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from meritum_api.auth.dependencies import CurrentContext
from meritum_api.domains.notifications import messages, service
from meritum_api.domains.notifications.schemas import NotificationView
from meritum_api.http.deps import AppDeps
from meritum_api.http.openapi import ALWAYS, Responses
from meritum_api.http.openapi import error_response as _error
from meritum_shared.schemas.validation.analytics import DataEnvelope, Pagination
from meritum_shared.schemas.validation.notifications import (
    DeliveryPreference,
    MarkedRead,
    NotificationListQuery,
    NotificationOut,
    NotificationPageEnvelope,
)

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])

_READ: Responses = {
    **ALWAYS,
    400: _error("Malformed request: a parameter is invalid"),
    401: _error("Not authenticated"),
}
_WRITE: Responses = {
    **_READ,
    403: _error("A cookie-authenticated request without its CSRF token"),
}
_ONE: Responses = {**_WRITE, 404: _error("No such notification of this user")}
_PUT: Responses = {**_WRITE, 413: _error("The request body is too large")}


def _json(body: BaseModel) -> Response:
    return Response(body.model_dump_json(by_alias=True), media_type="application/json")


def _out(item: NotificationView) -> NotificationOut:
    return NotificationOut(
        notification_id=item.notification_id,
        event=item.event,
        title=messages.title(item.event, item.report_type, item.period_start, item.period_end),
        report_id=item.report_id,
        report_type=item.report_type,
        period_start=item.period_start,
        period_end=item.period_end,
        created_at=item.created_at,
        read_at=item.read_at,
    )


@router.get(
    "",
    response_model=NotificationPageEnvelope,
    responses=_READ,
    summary="The user's notifications, newest first, with the unread count",
)
def list_notifications(
    query: Annotated[NotificationListQuery, Query()], ctx: CurrentContext, deps: AppDeps
) -> Response:
    """A page of the user's notifications (``unread=true`` for unread ones only)."""
    with deps.session_factory() as session:
        page = service.list_notifications(
            session=session,
            ctx=ctx,
            unread_only=query.unread,
            limit=query.limit,
            offset=query.offset,
        )
    body = NotificationPageEnvelope(
        data=[_out(item) for item in page.items],
        pagination=Pagination(
            total=page.total,
            page=query.offset // query.limit + 1,
            page_size=query.limit,
            has_more=query.offset + len(page.items) < page.total,
        ),
        unread_count=page.unread_count,
    )
    return _json(body)


@router.post(
    "/read-all",
    response_model=DataEnvelope[MarkedRead],
    responses=_WRITE,
    summary="Mark every unread notification of the user read",
)
def mark_all_read(ctx: CurrentContext, deps: AppDeps) -> Response:
    """Mark all of the user's notifications read; answers how many were unread."""
    with deps.session_factory.begin() as session:
        updated = service.mark_all_read(deps=deps, session=session, ctx=ctx)
    return _json(DataEnvelope[MarkedRead](data=MarkedRead(updated=updated)))


@router.post(
    "/{notification_id}/read",
    response_model=DataEnvelope[NotificationOut],
    responses=_ONE,
    summary="Mark one notification read",
)
def mark_read(notification_id: uuid.UUID, ctx: CurrentContext, deps: AppDeps) -> Response:
    """Mark the notification read (reading it again keeps the first time); 404 if not theirs."""
    with deps.session_factory.begin() as session:
        item = service.mark_read(
            deps=deps, session=session, ctx=ctx, notification_id=notification_id
        )
    return _json(DataEnvelope[NotificationOut](data=_out(item)))


@router.get(
    "/preferences",
    response_model=DataEnvelope[DeliveryPreference],
    responses=_READ,
    summary="How the user hears about on-demand reports",
)
def get_preference(ctx: CurrentContext, deps: AppDeps) -> Response:
    """IN_APP (the default), EMAIL or BOTH."""
    with deps.session_factory() as session:
        method = service.delivery_preference(session=session, ctx=ctx)
    return _json(DataEnvelope[DeliveryPreference](data=DeliveryPreference(delivery_method=method)))


@router.put(
    "/preferences",
    response_model=DataEnvelope[DeliveryPreference],
    responses=_PUT,
    summary="Choose how the user hears about on-demand reports",
)
def put_preference(body: DeliveryPreference, ctx: CurrentContext, deps: AppDeps) -> Response:
    """Set IN_APP, EMAIL or BOTH for the user's on-demand reports."""
    with deps.session_factory.begin() as session:
        method = service.set_delivery_preference(
            deps=deps, session=session, ctx=ctx, delivery_method=body.delivery_method
        )
    return _json(DataEnvelope[DeliveryPreference](data=DeliveryPreference(delivery_method=method)))
