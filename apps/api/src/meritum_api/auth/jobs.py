"""The auth domain's background task: reclaiming the rows of expired login sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from procrastinate import Blueprint, JobContext

from meritum_api.auth.service import purge_expired_sessions
from meritum_api.settings import Settings

if TYPE_CHECKING:
    from meritum_api.deps import Deps

NAMESPACE = "auth"
PURGE = f"{NAMESPACE}:purge_sessions"


def blueprint(settings: Settings) -> Blueprint:
    """The periodic session purge (expired sessions are refused already; this frees rows)."""
    bp = Blueprint()

    @bp.periodic(cron=settings.session_purge_cron, periodic_id="sessions")
    @bp.task(name="purge_sessions", queue="maintenance", pass_context=True, queueing_lock=PURGE)
    def purge(context: JobContext, timestamp: int) -> int:
        deps: Deps = context.additional_context["deps"]
        with deps.session_factory.begin() as session:
            return purge_expired_sessions(session=session)

    return bp
