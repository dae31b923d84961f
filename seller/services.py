"""Shoot workflow services: the only code that changes ``Shoot.status``.

Every transition is a compare-and-swap: ``UPDATE ... WHERE id = %s AND status = <what the caller
saw>``. Zero rows means another request or worker changed the shoot first; we raise
``TransitionConflict`` instead of overwriting their change. Each successful change writes one
``ShootEvent`` in the same transaction, so the audit trail can never disagree with the status.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.queues import ANALYSIS, enqueue_on_commit

from .models import Shoot, ShootEvent, ShootStatus

log = logging.getLogger(__name__)
S = ShootStatus


class TransitionError(Exception):
    """A shoot could not move to the requested status."""


class TransitionNotAllowed(TransitionError):
    """The action is not allowed from the shoot's current status."""


class TransitionConflict(TransitionError):
    """Someone else changed the shoot between our read and our write."""


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str


def _t(sources: set[str], target: str) -> Transition:
    return Transition(frozenset(sources), target)


TRANSITIONS: dict[str, Transition] = {
    "start_analysis": _t({S.UPLOADED}, S.ANALYZING),
    "finish_analysis": _t({S.ANALYZING}, S.MASK_REVIEW),
    "fail_analysis": _t({S.ANALYZING}, S.ANALYSIS_FAILED),
    "retry_analysis": _t({S.ANALYSIS_FAILED}, S.ANALYZING),
    "rerun_analysis": _t({S.MASK_REVIEW}, S.ANALYZING),
    "correct_mask": _t({S.MASK_REVIEW}, S.MASK_REVIEW),
    "confirm_mask": _t({S.MASK_REVIEW}, S.FACE_SELECTION),
    "start_generation": _t({S.FACE_SELECTION, S.SELLER_REVIEW}, S.GENERATING),
    "finish_generation": _t({S.GENERATING}, S.SELLER_REVIEW),
    "fail_generation": _t({S.GENERATING}, S.GENERATION_FAILED),
    "retry_generation": _t({S.GENERATION_FAILED}, S.GENERATING),
    "submit_to_qa": _t({S.SELLER_REVIEW}, S.QA_REVIEW),
    "approve": _t({S.QA_REVIEW}, S.APPROVED),
    "return_to_seller": _t({S.QA_REVIEW}, S.SELLER_REVIEW),
    "publish": _t({S.APPROVED}, S.PUBLISHED),
}


def allowed_actions(status: str) -> list[str]:
    """Actions whose transition starts from ``status`` (used by pages to show buttons)."""
    return [name for name, t in TRANSITIONS.items() if status in t.sources]


@transaction.atomic
def transition(
    shoot: Shoot,
    action: str,
    *,
    actor=None,
    note: str = "",
    guard: dict[str, Any] | None = None,
    **fields: Any,
) -> Shoot:
    """Move ``shoot`` by ``action`` if it is still in the status the caller saw.

    ``guard`` adds conditions to the compare-and-swap (e.g. the analysis attempt a worker owns),
    ``fields`` are written in the same UPDATE. Returns the refreshed shoot.
    """
    rule = TRANSITIONS[action]
    expected = shoot.status
    if expected not in rule.sources:
        raise TransitionNotAllowed(
            f"Cannot {action.replace('_', ' ')} a shoot that is {S(expected).label.lower()}."
        )
    now = timezone.now()
    changed = Shoot.objects.filter(pk=shoot.pk, status=expected, **(guard or {})).update(
        status=rule.target, status_changed_at=now, updated_at=now, **fields
    )
    if changed == 0:
        # Not an error in the data: another request or worker got there first.
        current = Shoot.objects.filter(pk=shoot.pk).values_list("status", flat=True).first()
        raise TransitionConflict(
            f"The shoot changed meanwhile (now {current}); {action} was not applied."
        )
    ShootEvent.objects.create(
        shoot_id=shoot.pk, from_status=expected, to_status=rule.target, actor=actor, note=note
    )
    shoot.refresh_from_db()
    return shoot


# --- analysis ----------------------------------------------------------------------------------


def analysis_job_id(shoot_id: int, attempt: int) -> str:
    return f"shoot-{shoot_id}-analysis-{attempt}"


def _enqueue_analysis(shoot: Shoot) -> None:
    enqueue_on_commit(
        ANALYSIS,
        "generation.jobs.analyze_shoot",
        shoot.pk,
        shoot.analysis_attempts,
        job_id=shoot.analysis_job_id,
    )


def _start_analysis(shoot: Shoot, action: str, *, actor=None, note: str = "") -> Shoot:
    attempt = shoot.analysis_attempts + 1
    shoot = transition(
        shoot,
        action,
        actor=actor,
        note=note,
        analysis_attempts=attempt,
        analysis_job_id=analysis_job_id(shoot.pk, attempt),
        last_error="",
    )
    _enqueue_analysis(shoot)
    return shoot


@transaction.atomic
def shoot_start_analysis(*, shoot: Shoot, actor=None) -> Shoot:
    return _start_analysis(shoot, "start_analysis", actor=actor)


@transaction.atomic
def shoot_retry_analysis(*, shoot: Shoot, actor=None, note: str = "") -> Shoot:
    return _start_analysis(shoot, "retry_analysis", actor=actor, note=note or "Analysis retried")


@transaction.atomic
def shoot_rerun_analysis(*, shoot: Shoot, actor=None, note: str = "") -> Shoot:
    return _start_analysis(shoot, "rerun_analysis", actor=actor, note=note or "Analysis re-run")


@transaction.atomic
def shoot_reenqueue_analysis(*, shoot: Shoot, note: str) -> Shoot:
    """Give a stuck ``analyzing`` shoot a fresh job (reconciler). Status stays ``analyzing``."""
    attempt = shoot.analysis_attempts + 1
    changed = Shoot.objects.filter(
        pk=shoot.pk, status=S.ANALYZING, analysis_attempts=shoot.analysis_attempts
    ).update(
        analysis_attempts=attempt,
        analysis_job_id=analysis_job_id(shoot.pk, attempt),
        updated_at=timezone.now(),
    )
    if changed == 0:
        raise TransitionConflict("The shoot changed meanwhile; not re-enqueued.")
    ShootEvent.objects.create(
        shoot=shoot, from_status=S.ANALYZING, to_status=S.ANALYZING, note=note
    )
    shoot.refresh_from_db()
    _enqueue_analysis(shoot)
    return shoot


def shoot_finish_analysis(*, shoot: Shoot, attempt: int, note: str = "") -> Shoot:
    """Called by the analysis job: only the job that owns the current attempt may finish it."""
    return transition(shoot, "finish_analysis", note=note, guard={"analysis_attempts": attempt})


def shoot_fail_analysis(*, shoot: Shoot, error: str, attempt: int | None = None) -> Shoot:
    guard = {"analysis_attempts": attempt} if attempt is not None else None
    return transition(shoot, "fail_analysis", note=error, guard=guard, last_error=error)


def shoot_correct_mask(*, shoot: Shoot, actor=None, note: str = "Mask corrected") -> Shoot:
    return transition(shoot, "correct_mask", actor=actor, note=note)


def shoot_confirm_mask(*, shoot: Shoot, actor=None) -> Shoot:
    """Every photo needs a chosen mask and a pose (detected or a standard template)."""
    for photo in shoot.photos.all():
        if not photo.masks.filter(is_chosen=True).exists():
            raise TransitionNotAllowed(f"{photo} has no garment mask yet.")
        latest = photo.analyses.first()
        if latest is None or not latest.keypoints:
            raise TransitionNotAllowed(f"{photo} has no pose: choose a standard pose first.")
    return transition(shoot, "confirm_mask", actor=actor, note="Mask confirmed")


# --- review, QA and publishing ---------------------------------------------------------------


def shoot_submit_to_qa(*, shoot: Shoot, actor=None, note: str = "") -> Shoot:
    return transition(shoot, "submit_to_qa", actor=actor, note=note)


def shoot_approve(*, shoot: Shoot, actor=None, note: str = "") -> Shoot:
    return transition(shoot, "approve", actor=actor, note=note)


def shoot_return_to_seller(*, shoot: Shoot, actor=None, note: str = "") -> Shoot:
    return transition(shoot, "return_to_seller", actor=actor, note=note)


def shoot_publish(*, shoot: Shoot, actor=None, note: str = "") -> Shoot:
    return transition(shoot, "publish", actor=actor, note=note)


def max_attempts() -> int:
    return settings.JOB_MAX_ATTEMPTS
