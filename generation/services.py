"""Generation services: start a run for a shoot, move its jobs through their lifecycle, and
move the shoot on when the last job of the run is done.

Job status changes are compare-and-swap UPDATEs like shoot transitions: a worker whose job was
cancelled, or superseded by a re-enqueued attempt, finds 0 rows and stops without writing.

Stored assets are announced with ``generation.signals.assets_stored`` (QA schedules its checks
from it); generation imports nothing from the apps above it. Asset status moves are in
``generation.asset_status``.
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

from core.queues import GPU, enqueue_on_commit
from core.transitions import TransitionConflict, TransitionNotAllowed
from facelibrary.selectors import USE_IMAGES, unusable_faces
from seller.models import Shoot, ShootStatus
from seller.services import transition

from .models import Asset, GenerationJob, GenerationRun
from .signals import assets_stored

log = logging.getLogger(__name__)
J = GenerationJob.Status

MAX_VARIANTS_PER_FACE = 4
MAX_FACES_PER_RUN = 8


#: error code of a job whose face may no longer be used (consent ended, face retired)
CONSENT = "consent"
#: error code of a succeeded job that made its image but not the video it was asked for
NO_VIDEO = "video_skipped"


class GenerationRequestError(ValueError):
    """The generation request itself is invalid (no faces, too many variants...)."""


class NoUsableFace(GenerationRequestError):
    """None of the requested faces may be used now; the message gives each face's reason."""

    def __init__(self, reasons: dict[int, str]) -> None:
        self.reasons = reasons
        super().__init__(" ".join(reasons.values()) + " Pick other faces.")


def _left_out(reasons: dict[int, str], *, what: str) -> dict[int, str]:
    return {face_id: f"{reason} {what}" for face_id, reason in reasons.items()}


def _with_dropped(note: str, dropped: dict[int, str]) -> str:
    return note + "".join(f" {reason}" for reason in dropped.values())


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
    """Create a run with one job per (face x variant) and enqueue them on the gpu queue.

    Consent is checked here, at the moment of use (also for "regenerate", which passes the last
    run's faces): a face that may no longer be used (retired, consent ended) is left out, and
    ``run.dropped`` (face id -> a sentence for the seller, not stored; the shoot event's note
    repeats it) says so. When no face is left, ``NoUsableFace`` refuses the start.
    """
    if not faces:
        raise GenerationRequestError("Pick at least one face.")
    if len(faces) > MAX_FACES_PER_RUN:
        raise GenerationRequestError(f"Pick at most {MAX_FACES_PER_RUN} faces at a time.")
    if not 1 <= variants <= MAX_VARIANTS_PER_FACE:
        raise GenerationRequestError(f"Variants per face must be 1 to {MAX_VARIANTS_PER_FACE}.")
    refused = unusable_faces(faces, use=USE_IMAGES)
    usable = [face for face in faces if face.pk not in refused]
    if not usable:
        raise NoUsableFace(refused)
    dropped = _left_out(refused, what="It was left out of this generation.")
    run_settings = dict(run_settings or {})
    action = (
        "retry_generation" if shoot.status == ShootStatus.GENERATION_FAILED else "start_generation"
    )
    transition(
        shoot,
        action,
        actor=actor,
        note=_with_dropped(f"{len(usable)} face(s) × {variants} variant(s)", dropped),
    )
    run = GenerationRun.objects.create(shoot=shoot, requested_by=actor, settings=run_settings)
    for face in usable:
        for variant in range(variants):
            _create_job(run, face=face, variant=variant, seed=new_seed(), job_settings=run_settings)
    run.dropped = dropped
    return run


@transaction.atomic
def shoot_retry_generation(*, shoot: Shoot, actor=None) -> GenerationRun:
    """Retry a failed generation with the same faces, variants and seeds as the last run.

    A face that may no longer be used is not generated again: its jobs are created failed with
    the reason (code ``consent``), and ``run.dropped`` tells the seller. When no face of the last
    run may be used, ``NoUsableFace`` refuses the retry (the shoot stays failed).
    """
    last_run = shoot.runs.order_by("-created_at").first()
    if last_run is None:
        raise TransitionNotAllowed("There is no earlier generation to retry.")
    old_jobs = list(last_run.jobs.select_related("face"))
    refused = unusable_faces((old.face for old in old_jobs), use=USE_IMAGES)
    if old_jobs and all(old.face_id in refused for old in old_jobs):
        raise NoUsableFace(refused)
    dropped = _left_out(refused, what="It is not generated again.")
    transition(
        shoot, "retry_generation", actor=actor, note=_with_dropped("Generation retried", dropped)
    )
    run = GenerationRun.objects.create(shoot=shoot, requested_by=actor, settings=last_run.settings)
    for old in old_jobs:
        if old.face_id in refused:
            same = {name: getattr(old, name) for name in ("face", "variant", "seed", "settings")}
            failed = {"status": J.FAILED, "error_code": CONSENT, "error": refused[old.face_id]}
            GenerationJob.objects.create(
                run=run, model_set=old.model_set, finished_at=timezone.now(), **same, **failed
            )
            continue
        _create_job(
            run, face=old.face, variant=old.variant, seed=old.seed, job_settings=old.settings
        )
    run.dropped = dropped
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
    #: why part of the request was not made although the job succeeded (e.g. no video);
    #: stored in the job's ``error`` with ``note_code`` as its code
    note: str = ""
    note_code: str = ""


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
        error=outcome.note,
        error_code=outcome.note_code,
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
    # Receivers above this layer react (qa schedules its automatic checks, after commit).
    assets_stored.send(sender=Asset, asset_ids=[asset.pk for asset in created])
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
    notes = [error for status, error in statuses if status == J.SUCCEEDED and error]
    run_status = GenerationRun.Status.SUCCEEDED if succeeded else GenerationRun.Status.FAILED
    GenerationRun.objects.filter(pk=run.pk, status=GenerationRun.Status.ACTIVE).update(
        status=run_status, finished_at=timezone.now()
    )
    try:
        if succeeded:
            note = f"{succeeded} image(s) generated"
            if failures:
                note += f"; {len(failures)} failed: {failures[0]}"
            if notes:
                note += f"; {notes[0]}"
            transition(run.shoot, "finish_generation", note=note)
        else:
            reason = failures[0] if failures else "No image was generated."
            transition(run.shoot, "fail_generation", note=reason, last_error=reason)
    except (TransitionConflict, TransitionNotAllowed):
        log.warning("shoot %s moved on before run %s finished", run.shoot_id, run.pk)
