"""The subscription endpoints of the subscriptions spec, section 3: HTTP in, HTTP out."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from pydantic import BaseModel

from meritum_api.domains.analytics.dependencies import Exporter, Viewer
from meritum_api.domains.subscriptions import service
from meritum_api.domains.subscriptions.schemas import SubscriptionView
from meritum_api.http.deps import AppDeps
from meritum_api.http.openapi import ALWAYS, Responses
from meritum_api.http.openapi import error_response as _error
from meritum_shared.schemas.validation.analytics import DataEnvelope
from meritum_shared.schemas.validation.subscriptions import (
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionUpdate,
)

router = APIRouter(prefix="/api/v1/report-subscriptions", tags=["subscriptions"])

_READ: Responses = {
    **ALWAYS,
    401: _error("Not authenticated"),
    403: _error("Authenticated, but without the permission this route needs"),
}
_WRITE: Responses = {
    **_READ,
    400: _error("Malformed request: the id or a body field is invalid, or a field is unknown"),
    403: _error("Missing permission, or a cookie-authenticated request without its CSRF token"),
}
_RULES = _error(
    "A business rule refused the request: the type is on demand only, "
    "or the frequency is not one the type allows"
)
_CREATE: Responses = {
    **_WRITE,
    409: _error("The physician already has a subscription to this report type"),
    413: _error("The request body is too large"),
    422: _RULES,
}
_UPDATE: Responses = {
    **_WRITE,
    404: _error("No such subscription of this physician"),
    413: _error("The request body is too large"),
    422: _RULES,
}
_DELETE: Responses = {**_WRITE, 404: _error("No such subscription of this physician")}


def _json(
    body: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        body.model_dump_json(),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


def _out(item: SubscriptionView) -> SubscriptionOut:
    return SubscriptionOut(
        subscription_id=item.subscription_id,
        report_type=item.report_type,
        frequency=item.frequency,
        delivery_method=item.delivery_method,
        is_active=item.is_active,
        next_run_at=item.next_run_at,
        last_run_at=item.last_run_at,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


@router.get(
    "",
    response_model=DataEnvelope[list[SubscriptionOut]],
    responses=_READ,
    summary="The physician's report subscriptions, with their next and last runs",
)
def list_subscriptions(ctx: Viewer, deps: AppDeps) -> Response:
    """Every subscription of the physician, by report type."""
    with deps.session_factory() as session:
        items = service.list_subscriptions(session=session, ctx=ctx)
    return _json(DataEnvelope[list[SubscriptionOut]](data=[_out(item) for item in items]))


@router.post(
    "",
    status_code=201,
    response_model=DataEnvelope[SubscriptionOut],
    responses=_CREATE,
    summary="Subscribe to a report type on a schedule",
)
def create_subscription(body: SubscriptionCreate, ctx: Exporter, deps: AppDeps) -> Response:
    """Subscribe; the first report comes at the schedule's next regular run (06:00 Edmonton)."""
    with deps.session_factory.begin() as session:
        created = service.create_subscription(deps=deps, session=session, ctx=ctx, request=body)
    return _json(
        DataEnvelope[SubscriptionOut](data=_out(created)),
        status_code=201,
        headers={"Location": f"/api/v1/report-subscriptions/{created.subscription_id}"},
    )


@router.put(
    "/{subscription_id}",
    response_model=DataEnvelope[SubscriptionOut],
    responses=_UPDATE,
    summary="Change a subscription's frequency or delivery, or pause and resume it",
)
def update_subscription(
    subscription_id: uuid.UUID, body: SubscriptionUpdate, ctx: Exporter, deps: AppDeps
) -> Response:
    """Change at least one of frequency, delivery_method, is_active; resuming runs from now."""
    with deps.session_factory.begin() as session:
        updated = service.update_subscription(
            deps=deps, session=session, ctx=ctx, subscription_id=subscription_id, request=body
        )
    return _json(DataEnvelope[SubscriptionOut](data=_out(updated)))


@router.delete(
    "/{subscription_id}",
    status_code=204,
    response_class=Response,
    responses=_DELETE,
    summary="Cancel a subscription (the reports it produced stay until their retention ends)",
)
def cancel_subscription(subscription_id: uuid.UUID, ctx: Exporter, deps: AppDeps) -> Response:
    """Cancel the subscription; answers 204."""
    with deps.session_factory.begin() as session:
        service.cancel_subscription(session=session, ctx=ctx, subscription_id=subscription_id)
    return Response(status_code=204)
