"""How the subscriptions domain's exceptions answer over HTTP (one place for all of them)."""

from __future__ import annotations

from fastapi import FastAPI

from meritum_api.domains.subscriptions.exceptions import (
    FrequencyNotAllowed,
    NotSubscribable,
    SubscriptionExists,
    SubscriptionNotFound,
)
from meritum_api.http.errors import ApiError, register_error_mapping
from meritum_shared.constants.analytics import SUBSCRIPTION_FREQUENCIES


def install_subscription_errors(app: FastAPI) -> None:
    """Register the mapping of every subscriptions exception on ``app``."""
    register_error_mapping(
        app, SubscriptionNotFound, ApiError(404, "NOT_FOUND", "Subscription not found")
    )
    register_error_mapping(
        app,
        SubscriptionExists,
        lambda exc: ApiError(
            409, "SUBSCRIPTION_EXISTS", str(exc), details={"report_type": exc.report_type.value}
        ),
    )
    register_error_mapping(
        app,
        NotSubscribable,
        lambda exc: ApiError(
            422,
            "NOT_SUBSCRIBABLE",
            str(exc),
            details={"subscribable": [t.value for t in SUBSCRIPTION_FREQUENCIES]},
        ),
    )
    register_error_mapping(
        app,
        FrequencyNotAllowed,
        lambda exc: ApiError(
            422,
            "FREQUENCY_NOT_ALLOWED",
            str(exc),
            details={"allowed": [f.value for f in exc.allowed]},
        ),
    )
