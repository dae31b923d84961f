"""Generation services: start a run for a shoot, move its jobs through their lifecycle, and
move the shoot on when the last job of the run is done.

Job status changes are compare-and-swap UPDATEs like shoot transitions: a worker whose job was
cancelled, or superseded by a re-enqueued attempt, finds 0 rows and stops without writing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.queues import GPU, enqueue_on_commit
from seller.models import Shoot, ShootStatus
from seller.services import TransitionConflict, TransitionNotAllowed, transition

from .models import Asset, GenerationJob, GenerationRun

log = logging.getLogger(__name__)
J = GenerationJob.Status

MAX_VARIANTS_PER_FACE = 4
MAX_FACES_PER_RUN = 8


class GenerationRequestError(ValueError):
    """The generation request itself is invalid (no faces, too many variants...)."""


def generation_job_rq_id(job_id: int, attempt: int) -> str:
    return f"genjob-{job_id}-{attempt}"


def new_seed() -> int:
    return secrets.randbelow(2**31)


def _enqueue_job(job: GenerationJob) -> None:
    enqueue_on_commit(
        GPU, "generation.jobs.generate_image", job.pk, job.attempts, job_id=job.rq_job_id
    )


def _create_job(
    run: GenerationRun, *, face, variant: int, seed: int, job_settings: dict
) -> GenerationJob:
    job = GenerationJob.objects.create(
        run=run,
        face=face,
        variant=variant,
        seed=seed,
        settings=job_settings,
        model_set=job_settings.get("model_set", django_settings.GENERATION_MODEL_SET),
        attempts=1,
    )
    job.rq_job_id = generation_job_rq_id(job.pk, 1)
    job.save(update_fields=["rq_job_id"])
    _enqueue_job(job)
    return job


@transaction.atomic
def shoot_start_generation(
    *,
    shoot: Shoot,
    faces: Sequence[Any],
    variants: int = 1,
    actor=None,
    run_settings: dict[str, Any] | None = None,
) -> GenerationRun:
    """Create a run with one job per (face x variant) and enqueue them on the gpu queue."""
    if not faces:
        raise GenerationRequestError("Pick at least one face.")
    if len(faces) > MAX_FACES_PER_RUN:
        raise GenerationRequestError(f"Pick at most {MAX_FACES_PER_RUN} faces at a time.")
    if not 1 <= variants <= MAX_VARIANTS_PER_FACE:
        raise GenerationRequestError(f"Variants per face must be 1 to {MAX_VARIANTS_PER_FACE}.")
    run_settings = dict(run_settings or {})
    action = (
        "retry_generation" if shoot.status == ShootStatus.GENERATION_FAILED else "start_generation"
    )
    transition(
        shoot,
        action,
        actor=actor,
        note=f"{len(faces)} face(s) × {variants} variant(s)",
    )
    run = GenerationRun.objects.create(shoot=shoot, requested_by=actor, settings=run_settings)
    for face in faces:
        for variant in range(variants):
            _create_job(run, face=face, variant=variant, seed=new_seed(), job_settings=run_settings)
    return run


@transaction.atomic
def shoot_retry_generation(*, shoot: Shoot, actor=None) -> GenerationRun:
    """Retry a failed generation with the same faces, variants and seeds as the last run."""
    last_run = shoot.runs.order_by("-created_at").first()
    if last_run is None:
        raise TransitionNotAllowed("There is no earlier generation to retry.")
    transition(shoot, "retry_generation", actor=actor, note="Generation retried")
    run = GenerationRun.objects.create(shoot=shoot, requested_by=actor, settings=last_run.settings)
    for old in last_run.jobs.all():
        _create_job(
            run, face=old.face, variant=old.variant, seed=old.seed, job_settings=old.settings
        )
    return run


# --- job lifecycle (called by the gpu job) ---------------------------------------------------


def generation_job_start(*, job_id: int, attempt: int) -> GenerationJob | None:
    """Claim a queued job for this attempt. None: cancelled, superseded or already done."""
    claimed = GenerationJob.objects.filter(
        pk=job_id, status=J.QUEUED, attempts=attempt, cancel_requested=False
    ).update(status=J.RUNNING, started_at=timezone.now(), progress_step=0)
    if not claimed:
        return None
    return GenerationJob.objects.select_related("run__shoot", "face").get(pk=job_id)


def generation_job_progress(*, job_id: int, step: int, total: int) -> bool:
    """Record progress; returns False when the job should stop (cancelled or taken away)."""
    GenerationJob.objects.filter(pk=job_id, status=J.RUNNING).update(
        progress_step=step, progress_total=total
    )
    return not generation_job_should_stop(job_id=job_id)


def generation_job_should_stop(*, job_id: int) -> bool:
    row = GenerationJob.objects.filter(pk=job_id).values("status", "cancel_requested").first()
    return row is None or row["cancel_requested"] or row["status"] != J.RUNNING


@dataclass
class StoredAsset:
    """A file already written to storage by the job (outside any transaction)."""

    kind: str
    name: str
    width: int
    height: int
    checksum: str
    poster_name: str = ""


@dataclass
class JobOutcome:
    seconds_per_image: float
    model_hashes: dict[str, str] = field(default_factory=dict)
    prompt: str = ""
    negative_prompt: str = ""


@transaction.atomic
def generation_job_succeed(
    *, job: GenerationJob, assets: Sequence[StoredAsset], outcome: JobOutcome
) -> bool:
    done = GenerationJob.objects.filter(pk=job.pk, status=J.RUNNING, attempts=job.attempts).update(
        status=J.SUCCEEDED,
        finished_at=timezone.now(),
        seconds_per_image=outcome.seconds_per_image,
        model_hashes=outcome.model_hashes,
        prompt=outcome.prompt,
        negative_prompt=outcome.negative_prompt,
        # From the row, not this instance: progress was written by the job while it ran.
        progress_step=F("progress_total"),
        error="",
        error_code="",
    )
    if not done:
        log.info("generation job %s was cancelled or superseded; result dropped", job.pk)
        return False
    created = [
        Asset.objects.create(
            job=job,
            kind=stored.kind,
            file=stored.name,
            poster=stored.poster_name,
            width=stored.width,
            height=stored.height,
            checksum=stored.checksum,
        )
        for stored in assets
    ]
    # Automatic QA scores are ready by the time the seller looks (default queue, after commit).
    from qa.services import schedule_asset_checks

    schedule_asset_checks(asset_ids=[asset.pk for asset in created])
    _complete_run_if_done(job.run_id)
    return True


@transaction.atomic
def generation_job_fail(*, job: GenerationJob, code: str, message: str) -> bool:
    status = J.CANCELLED if code == "cancelled" else J.FAILED
    done = GenerationJob.objects.filter(
        pk=job.pk, status__in=GenerationJob.ACTIVE_STATUSES, attempts=job.attempts
    ).update(status=status, finished_at=timezone.now(), error_code=code, error=message)
    if done:
        _complete_run_if_done(job.run_id)
    return bool(done)


@transaction.atomic
def generation_job_cancel(*, job: GenerationJob) -> None:
    """Ask a job to stop. A queued job is cancelled at once; a running one between steps."""
    GenerationJob.objects.filter(pk=job.pk, status__in=GenerationJob.ACTIVE_STATUSES).update(
        cancel_requested=True
    )
    cancelled = GenerationJob.objects.filter(pk=job.pk, status=J.QUEUED).update(
        status=J.CANCELLED, finished_at=timezone.now(), error_code="cancelled", error="Cancelled."
    )
    if cancelled:
        _complete_run_if_done(job.run_id)


def shoot_cancel_generation(*, shoot: Shoot) -> int:
    """Cancel every queued or running job of the shoot's active run; returns how many."""
    active = GenerationJob.objects.filter(
        run__shoot=shoot,
        run__status=GenerationRun.Status.ACTIVE,
        status__in=GenerationJob.ACTIVE_STATUSES,
    )
    jobs = list(active)
    for job in jobs:
        generation_job_cancel(job=job)
    return len(jobs)


@transaction.atomic
def generation_job_reenqueue(*, job: GenerationJob, note: str) -> bool:
    """Give a lost job a new attempt (reconciler). The old attempt can no longer write."""
    attempt = job.attempts + 1
    rq_id = generation_job_rq_id(job.pk, attempt)
    done = GenerationJob.objects.filter(
        pk=job.pk, status__in=GenerationJob.ACTIVE_STATUSES, attempts=job.attempts
    ).update(status=J.QUEUED, attempts=attempt, rq_job_id=rq_id, started_at=None, error=note)
    if done:
        job.refresh_from_db()
        _enqueue_job(job)
    return bool(done)


def _complete_run_if_done(run_id: int) -> None:
    # Lock the run row so two jobs finishing at once cannot both see "one still running".
    run = GenerationRun.objects.select_for_update().select_related("shoot").get(pk=run_id)
    if run.status != GenerationRun.Status.ACTIVE:
        return
    statuses = list(run.jobs.values_list("status", "error"))
    if any(status in GenerationJob.ACTIVE_STATUSES for status, _ in statuses):
        return
    succeeded = sum(1 for status, _ in statuses if status == J.SUCCEEDED)
    failures = [error for status, error in statuses if status != J.SUCCEEDED]
    run_status = GenerationRun.Status.SUCCEEDED if succeeded else GenerationRun.Status.FAILED
    GenerationRun.objects.filter(pk=run.pk, status=GenerationRun.Status.ACTIVE).update(
        status=run_status, finished_at=timezone.now()
    )
    try:
        if succeeded:
            note = f"{succeeded} image(s) generated"
            if failures:
                note += f"; {len(failures)} failed: {failures[0]}"
            transition(run.shoot, "finish_generation", note=note)
        else:
            reason = failures[0] if failures else "No image was generated."
            transition(run.shoot, "fail_generation", note=reason, last_error=reason)
    except (TransitionConflict, TransitionNotAllowed):
        log.warning("shoot %s moved on before run %s finished", run.shoot_id, run.pk)
