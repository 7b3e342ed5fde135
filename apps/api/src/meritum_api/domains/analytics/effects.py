"""What else happens when a report settles: one place, inside the settling transaction.

A report becomes ``ready`` or ``failed`` in exactly one function of the
generation path, and that function calls :func:`report_settled` before its
transaction commits. Everything written here (notification rows, email
jobs, the removal of secrets the generation no longer needs) therefore
commits with the status change or vanishes with it: a ready report always
has its consequences, and a rolled-back one has none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from sqlalchemy.orm import Session

from meritum_api.domains.analytics import export_secrets
from meritum_api.domains.analytics.schemas import ReportView
from meritum_api.domains.notifications.service import notify_settled

if TYPE_CHECKING:
    from meritum_api.deps import Deps

#: One consequence of a report settling; it writes only through ``session``.
Effect: TypeAlias = Callable[["Deps", Session, ReportView], None]


def discard_export_password(deps: Deps, session: Session, report: ReportView) -> None:
    """Generation has ended (ready or failed): a protected export's password goes with it."""
    export_secrets.discard(session=session, report_id=report.report_id)


#: The consequences every process runs, in order (the container may add more).
DEFAULT_EFFECTS: tuple[Effect, ...] = (discard_export_password, notify_settled)


def report_settled(*, deps: Deps, session: Session, report: ReportView) -> None:
    """Write the consequences of ``report`` having become ready or failed (no commit)."""
    for effect in deps.settle_effects:
        effect(deps, session, report)
