"""Reconciler: the database is the source of truth, Redis is not.

Finds shoots in ``analyzing``, the seller's pending mask corrections, face reference photos
waiting for the quality gate, and generation jobs in ``queued``/``running`` whose RQ job is gone
(Redis restarted or the job was removed), failed, or abandoned (its worker died, e.g. SIGKILL or
OOM-killer), and gives them a fresh attempt, or fails them once the attempts are spent. Run by
``manage.py reconcile`` (once or in a loop) and periodically by ``rqcron`` (config/cron.py).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.utils import timezone

from core import queues
from core.transitions import TransitionConflict, TransitionNotAllowed
from facelibrary.models import FaceReference
from facelibrary.services import reference_gate_lost, reference_reenqueue_gate
from seller.masks import mask_correction_lost, mask_correction_reenqueue
from seller.models import MaskCorrection, Shoot, ShootStatus
from seller.services import shoot_fail_analysis, shoot_reenqueue_analysis

from .models import GenerationJob, GenerationRun
from .services import generation_job_fail, generation_job_reenqueue

log = logging.getLogger(__name__)

ALIVE = "alive"
_Row = TypeVar("_Row")


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
    _reconcile_mask_corrections(cutoff, report)
    _reconcile_reference_gates(cutoff, report)
    _reconcile_generation(cutoff, report)
    if report.reenqueued or report.failed:
        log.warning("reconciler: %s", report.as_dict())
    return report


def _lost(
    rows: Iterable[_Row], job_id: Callable[[_Row], str], kind: str, report: ReconcileReport
) -> Iterator[tuple[_Row, str]]:
    """The rows whose queue job is no longer alive, each with the reason to record: which
    ``kind`` of job it was and what became of it. Every row looked at counts as checked."""
    for row in rows:
        report.checked += 1
        state = job_state(job_id(row))
        if state != ALIVE:
            yield row, f"{kind} job {job_id(row)} {state}"


def _reconcile_analysis(cutoff, report: ReconcileReport) -> None:
    stuck = Shoot.objects.filter(status=ShootStatus.ANALYZING, updated_at__lt=cutoff)
    for shoot, reason in _lost(stuck.iterator(), lambda s: s.analysis_job_id, "analysis", report):
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


def _recover(
    report: ReconcileReport,
    lost: Iterable[tuple[Any, str]],
    label: str,
    *,
    may_retry: Callable[[Any], bool],
    retry: Callable[..., bool],
    give_up: Callable[..., bool],
) -> None:
    """A new attempt for each lost row while it may have one, else give up with the reason.

    ``retry(row, note=...)`` and ``give_up(row, reason=...)`` are compare-and-swaps: False means
    a worker settled the row while we looked, which needs no repair.
    """
    for row, reason in lost:
        if may_retry(row):
            if retry(row, note=f"{reason}; re-enqueued"):
                report.reenqueued.append(f"{label} {row.pk}")
        elif give_up(row, reason=reason):
            report.failed.append(f"{label} {row.pk}")


def _below_max_attempts(field: str) -> Callable[[Any], bool]:
    return lambda row: getattr(row, field) < settings.JOB_MAX_ATTEMPTS


def _reconcile_mask_corrections(cutoff, report: ReconcileReport) -> None:
    pending = MaskCorrection.objects.filter(
        status=MaskCorrection.Status.PENDING, queued_at__lt=cutoff
    )
    lost = _lost(pending.iterator(), lambda c: c.job_id, "mask correction", report)
    retry, give_up = mask_correction_reenqueue, mask_correction_lost
    may_retry = _below_max_attempts("attempts")
    _recover(report, lost, "mask correction", may_retry=may_retry, retry=retry, give_up=give_up)


def _reconcile_reference_gates(cutoff, report: ReconcileReport) -> None:
    waiting = FaceReference.GateStatus.PENDING
    pending = FaceReference.objects.filter(gate_status=waiting, gate_queued_at__lt=cutoff)
    lost = _lost(pending.iterator(), lambda r: r.gate_job_id, "quality gate", report)
    may_retry = _below_max_attempts("gate_attempts")
    retry, give_up = reference_reenqueue_gate, reference_gate_lost
    _recover(report, lost, "face reference", may_retry=may_retry, retry=retry, give_up=give_up)


def _reconcile_generation(cutoff, report: ReconcileReport) -> None:
    active = GenerationJob.objects.filter(
        status__in=GenerationJob.ACTIVE_STATUSES,
        run__status=GenerationRun.Status.ACTIVE,
        queued_at__lt=cutoff,
    ).select_related("run")
    lost = _lost(active.iterator(), lambda j: j.rq_job_id, "generation", report)

    def give_up(job: GenerationJob, *, reason: str) -> bool:
        message = f"Generation did not complete after {job.attempts} attempts ({reason})."
        return generation_job_fail(job=job, code="lost", message=message)

    _recover(
        report,
        lost,
        "job",
        may_retry=lambda job: job.attempts < settings.JOB_MAX_ATTEMPTS and not job.cancel_requested,
        retry=lambda job, note: generation_job_reenqueue(job=job, note=note),
        give_up=give_up,
    )
