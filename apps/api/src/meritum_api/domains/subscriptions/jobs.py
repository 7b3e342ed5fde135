"""The subscriptions domain's background task: the scheduler, a periodic singleton."""

from __future__ import annotations

from typing import TYPE_CHECKING

from procrastinate import Blueprint, JobContext

from meritum_api.domains.subscriptions.scheduler import run_due
from meritum_api.settings import Settings

if TYPE_CHECKING:
    from meritum_api.deps import Deps

NAMESPACE = "subscriptions"
SCHEDULE = f"{NAMESPACE}:schedule"
#: procrastinate runs higher priorities first (generation jobs have 0).
SCHEDULER_PRIORITY = 10


def _deps(context: JobContext) -> Deps:
    deps: Deps = context.additional_context["deps"]
    return deps


def blueprint(settings: Settings) -> Blueprint:
    """The scheduler: every minute by default, one run at a time across all workers."""
    bp = Blueprint()

    # A singleton three times over. Every worker's periodic deferrer offers
    # each tick, but procrastinate records a periodic job once per (task,
    # periodic id, tick) in procrastinate_periodic_defers, so one job exists
    # per minute; the queueing lock keeps at most one waiting; the lock keeps
    # two from running at once, on any workers. A run whose worker died keeps
    # the lock until the stalled check finishes it (as for the retention
    # cleanup). None of this is what makes a period produced once: that is
    # the row lock and the unique run (see scheduler.py), so two overlapping
    # runs would only share the work.
    #
    # Ahead of other jobs: a run at 06:00 queues thousands of generation jobs,
    # and the next run (after a crash, the rescue) must not wait behind them.
    @bp.periodic(
        cron=settings.subscription_schedule_cron,
        periodic_id="scheduler",
        priority=SCHEDULER_PRIORITY,
    )
    @bp.task(
        name="schedule",
        queue="maintenance",
        pass_context=True,
        lock=SCHEDULE,
        queueing_lock=SCHEDULE,
    )
    def schedule(context: JobContext, timestamp: int) -> dict[str, int]:
        result = run_due(deps=_deps(context))
        return {
            "subscriptions": result.subscriptions,
            "generated": result.generated,
            "skipped_empty": result.skipped_empty,
            "already_recorded": result.already_recorded,
            "failed": result.failed,
        }

    return bp
