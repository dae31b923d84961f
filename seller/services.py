"""Shoot workflow services: the only code that changes ``Shoot.status``.

``TRANSITIONS`` is the table of allowed moves; ``core.transitions`` applies them as a
compare-and-swap and writes one ``ShootEvent`` (from, to, actor, note, time) per change.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from core.queues import ANALYSIS, enqueue_on_commit
from core.transitions import (
    StateMachine,
    Transition,
    TransitionNotAllowed,
    table,
)

from .models import Shoot, ShootEvent, ShootStatus

log = logging.getLogger(__name__)
S = ShootStatus


TRANSITIONS: dict[str, Transition] = table(
    ShootStatus,
    """
    start_analysis       uploaded                        -> analyzing
    finish_analysis      analyzing                       -> mask_review
    fail_analysis        analyzing                       -> analysis_failed
    retry_analysis       analysis_failed                 -> analyzing
    rerun_analysis       mask_review                     -> analyzing
    reenqueue_analysis   analyzing                       -> analyzing
    correct_mask         mask_review                     -> mask_review
    confirm_mask         mask_review                     -> face_selection
    start_generation     face_selection, seller_review   -> generating
    finish_generation    generating                      -> seller_review
    fail_generation      generating                      -> generation_failed
    retry_generation     generation_failed               -> generating
    submit_to_qa         seller_review                   -> qa_review
    approve              qa_review                       -> approved
    return_to_seller     qa_review                       -> seller_review
    publish              approved                        -> published
    """,
)

SHOOTS = StateMachine(Shoot, ShootEvent, TRANSITIONS, touch=("status_changed_at", "updated_at"))


def transition(shoot: Shoot, action: str, **kwargs: Any) -> Shoot:
    """Move ``shoot`` by ``action`` (see ``core.transitions.StateMachine.apply``)."""
    return SHOOTS.apply(shoot, action, **kwargs)


# --- analysis ----------------------------------------------------------------------------------


def analysis_job_id(shoot_id: int, attempt: int) -> str:
    return f"shoot-{shoot_id}-analysis-{attempt}"


def _enqueue_analysis(shoot: Shoot) -> None:
    enqueue_on_commit(
        ANALYSIS,
        "seller.jobs.analyze_shoot",
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
    shoot = transition(
        shoot,
        "reenqueue_analysis",
        note=note,
        guard={"analysis_attempts": shoot.analysis_attempts},
        analysis_attempts=attempt,
        analysis_job_id=analysis_job_id(shoot.pk, attempt),
    )
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
