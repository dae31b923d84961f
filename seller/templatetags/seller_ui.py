"""Small presentation helpers for seller templates: status chips, the workflow stepper."""

from __future__ import annotations

from dataclasses import dataclass

from django import template

from generation.models import Asset
from seller.models import ShootStatus

register = template.Library()
S = ShootStatus

#: (label, statuses that belong to the step), in workflow order
STEPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Upload", frozenset({S.UPLOADED})),
    ("Analysis", frozenset({S.ANALYZING, S.ANALYSIS_FAILED})),
    ("Mask review", frozenset({S.MASK_REVIEW})),
    ("Faces", frozenset({S.FACE_SELECTION})),
    ("Generation", frozenset({S.GENERATING, S.GENERATION_FAILED})),
    ("Your review", frozenset({S.SELLER_REVIEW})),
    ("QA", frozenset({S.QA_REVIEW})),
    ("Approved", frozenset({S.APPROVED})),
    ("Published", frozenset({S.PUBLISHED})),
)

#: chip colour family per shoot status (see .chip--* in studio.css)
STATUS_TONE: dict[str, str] = {
    S.UPLOADED: "neutral",
    S.ANALYZING: "busy",
    S.ANALYSIS_FAILED: "bad",
    S.MASK_REVIEW: "todo",
    S.FACE_SELECTION: "todo",
    S.GENERATING: "busy",
    S.GENERATION_FAILED: "bad",
    S.SELLER_REVIEW: "todo",
    S.QA_REVIEW: "wait",
    S.APPROVED: "good",
    S.PUBLISHED: "good",
}

ASSET_TONE: dict[str, str] = {
    Asset.Status.GENERATED: "todo",
    Asset.Status.SELLER_APPROVED: "good",
    Asset.Status.SELLER_REJECTED: "bad",
    Asset.Status.QA_APPROVED: "good",
    Asset.Status.QA_REJECTED: "bad",
    Asset.Status.PUBLISHED: "good",
}


@dataclass(frozen=True)
class Step:
    label: str
    state: str  # "done" | "current" | "failed" | "todo"


@register.simple_tag
def shoot_steps(status: str) -> list[Step]:
    current = next(i for i, (_, statuses) in enumerate(STEPS) if status in statuses)
    failed = status in (S.ANALYSIS_FAILED, S.GENERATION_FAILED)
    steps = []
    for index, (label, _) in enumerate(STEPS):
        if index < current:
            state = "done"
        elif index == current:
            state = "failed" if failed else ("done" if status == S.PUBLISHED else "current")
        else:
            state = "todo"
        steps.append(Step(label, state))
    return steps


@register.inclusion_tag("seller/_chip.html")
def status_chip(status: str) -> dict[str, str]:
    return {"tone": STATUS_TONE.get(status, "neutral"), "label": S(status).label}


@register.inclusion_tag("seller/_chip.html")
def asset_chip(status: str) -> dict[str, str]:
    return {"tone": ASSET_TONE.get(status, "neutral"), "label": Asset.Status(status).label}


@register.filter
def duration(seconds: float | int | None) -> str:
    """'about 40 s', 'about 3 min', 'about 1 h 20 min'."""
    if seconds is None:
        return ""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"about {max(seconds, 1)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60} min"


@register.filter
def percent(value: float | None) -> str:
    return "" if value is None else f"{round(100 * float(value))}%"
