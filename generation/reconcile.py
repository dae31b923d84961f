"""Reconciler: the database is the source of truth, Redis is not.

Finds shoots in ``analyzing`` and generation jobs in ``queued``/``running`` whose RQ job is gone
(Redis restarted or the job was removed), failed, or abandoned (its worker died, e.g. SIGKILL or
OOM-killer), and gives them a fresh attempt, or fails them once the attempts are spent. Run by
``manage.py reconcile`` (once or in a loop) and periodically by ``rqcron`` (config/cron.py).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from config import queues
from seller.models import Shoot, ShootStatus
from seller.services import (
    TransitionConflict,
    TransitionNotAllowed,
    shoot_fail_analysis,
    shoot_reenqueue_analysis,
)

from .models import GenerationJob, GenerationRun
from .services import generation_job_fail, generation_job_reenqueue

log = logging.getLogger(__name__)

ALIVE = "alive"


@dataclass
class ReconcileReport:
    checked: int = 0
    reenqueued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"checked": self.checked, "reenqueued": self.reenqueued, "failed": self.failed}


def job_state(job_id: str) -> str:
    """``alive`` if the job is queued or running on a live worker; otherwise why it is lost."""
    if settings.QUEUE_MODE == "thread":
        return ALIVE if queues.thread_job_pending(job_id) else "missing"
    if settings.QUEUE_MODE == "sync":
        return "missing"
    job = queues.fetch_job(job_id)
    if job is None:
        return "missing"
    status = job.get_status(refresh=False)
    status = getattr(status, "value", status)
    if status in ("queued", "deferred", "scheduled", "created"):
        return ALIVE
    if status == "started":
        return ALIVE if _worker_alive(job) else "abandoned"
    # finished (but the database was never told), failed, stopped, canceled
    return status


def _worker_alive(job) -> bool:
    from rq.worker import Worker

    if not job.worker_name:
        return False
    worker = Worker.find_by_key(
        Worker.redis_worker_namespace_prefix + job.worker_name, connection=job.connection
    )
    if worker is None:
        return False
    if worker.hostname == socket.gethostname() and worker.pid and not _pid_alive(worker.pid):
        return False
    beat = worker.last_heartbeat
    dead_after = timedelta(seconds=settings.WORKER_DEAD_AFTER)
    return beat is None or timezone.now() - beat < dead_after


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A SIGKILLed child that nobody reaped yet is a zombie: dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def reconcile(*, grace_seconds: int | None = None) -> ReconcileReport:
    grace = settings.RECONCILE_GRACE_SECONDS if grace_seconds is None else grace_seconds
    cutoff = timezone.now() - timedelta(seconds=grace)
    report = ReconcileReport()
    _reconcile_analysis(cutoff, report)
    _reconcile_generation(cutoff, report)
    if report.reenqueued or report.failed:
        log.warning("reconciler: %s", report.as_dict())
    return report


def _reconcile_analysis(cutoff, report: ReconcileReport) -> None:
    stuck = Shoot.objects.filter(status=ShootStatus.ANALYZING, updated_at__lt=cutoff)
    for shoot in stuck.iterator():
        report.checked += 1
        state = job_state(shoot.analysis_job_id)
        if state == ALIVE:
            continue
        reason = f"analysis job {shoot.analysis_job_id} {state}"
        try:
            if shoot.analysis_attempts < settings.JOB_MAX_ATTEMPTS:
                shoot_reenqueue_analysis(shoot=shoot, note=f"{reason}; re-enqueued")
                report.reenqueued.append(f"shoot {shoot.pk}")
            else:
                shoot_fail_analysis(
                    shoot=shoot,
                    error=f"Analysis did not complete after {shoot.analysis_attempts} attempts "
                    f"({reason}). Retry it from the shoot page.",
                )
                report.failed.append(f"shoot {shoot.pk}")
        except (TransitionConflict, TransitionNotAllowed):
            pass  # the job finished while we looked: nothing to repair


def _reconcile_generation(cutoff, report: ReconcileReport) -> None:
    active = GenerationJob.objects.filter(
        status__in=GenerationJob.ACTIVE_STATUSES,
        run__status=GenerationRun.Status.ACTIVE,
        queued_at__lt=cutoff,
    ).select_related("run")
    for job in active.iterator():
        report.checked += 1
        state = job_state(job.rq_job_id)
        if state == ALIVE:
            continue
        reason = f"generation job {job.rq_job_id} {state}"
        if job.attempts < settings.JOB_MAX_ATTEMPTS and not job.cancel_requested:
            if generation_job_reenqueue(job=job, note=f"{reason}; re-enqueued"):
                report.reenqueued.append(f"job {job.pk}")
        else:
            message = f"Generation did not complete after {job.attempts} attempts ({reason})."
            if generation_job_fail(job=job, code="lost", message=message):
                report.failed.append(f"job {job.pk}")
