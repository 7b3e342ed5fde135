"""Queue maintenance: recovering the jobs of workers that died mid-job."""

from __future__ import annotations

import logging
from collections.abc import Set

from procrastinate import Blueprint, JobContext
from procrastinate.jobs import Status

from meritum_api.settings import Settings

log = logging.getLogger(__name__)

NAMESPACE = "maintenance"
RETRY_STALLED = f"{NAMESPACE}:retry_stalled"


def blueprint(settings: Settings, *, retry_when_stalled: Set[str]) -> Blueprint:
    """The periodic stalled-job check; jobs of ``retry_when_stalled`` tasks run again."""
    bp = Blueprint()

    # No ``lock``: a checker killed mid-run would hold it and stop every later
    # check. The queueing lock keeps at most one check waiting; two running at
    # once (on two workers) are harmless, the slower one finds nothing left.
    @bp.periodic(cron=settings.stalled_check_cron, periodic_id="stalled")
    @bp.task(
        name="retry_stalled", queue="maintenance", pass_context=True, queueing_lock=RETRY_STALLED
    )
    async def retry_stalled(context: JobContext, timestamp: int) -> int:
        # A worker killed mid-job leaves its job "doing" forever; once the
        # worker has missed heartbeats for long enough, deal with the job.
        manager = context.app.job_manager
        stalled = await manager.get_stalled_jobs(
            seconds_since_heartbeat=settings.stalled_after_seconds
        )
        handled = 0
        for job in stalled:
            try:
                if job.task_name in retry_when_stalled:
                    log.warning("job %s (%s) stalled: retrying it", job.id, job.task_name)
                    await manager.retry_job(job)
                else:
                    # Periodic maintenance: the next run does the same work.
                    # Finishing the dead run releases its lock, which would
                    # otherwise keep every later run (this one too) waiting.
                    log.warning("job %s (%s) stalled: abandoned", job.id, job.task_name)
                    await manager.finish_job(job, status=Status.FAILED, delete_job=False)
            except Exception:  # another checker dealt with it first
                log.warning("job %s (%s) stalled: already handled elsewhere", job.id, job.task_name)
                continue
            handled += 1
        return handled

    return bp
