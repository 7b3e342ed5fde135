"""How the notifications domain's exceptions answer over HTTP."""

from __future__ import annotations

from fastapi import FastAPI

from meritum_api.domains.notifications.exceptions import NotificationNotFound
from meritum_api.http.errors import ApiError, register_error_mapping


def install_notification_errors(app: FastAPI) -> None:
    """Register the mapping of every notifications exception on ``app``."""
    register_error_mapping(
        app, NotificationNotFound, ApiError(404, "NOT_FOUND", "Notification not found")
    )
