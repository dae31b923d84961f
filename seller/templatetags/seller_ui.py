"""Small presentation helpers for seller templates: status chips, the workflow stepper."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django import template
from django.core.exceptions import FieldDoesNotExist
from django.utils.html import format_html

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


def _chip(tone: str, label: str) -> str:
    # A plain function rather than an inclusion template: dashboards render dozens of chips.
    return format_html('<span class="chip chip--{}">{}</span>', tone, label)


@register.simple_tag
def status_chip(status: str) -> str:
    return _chip(STATUS_TONE.get(status, "neutral"), S(status).label)


@register.simple_tag
def asset_chip(status: str) -> str:
    return _chip(ASSET_TONE.get(status, "neutral"), Asset.Status(status).label)


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


@register.simple_tag
def signup_enabled() -> bool:
    from django.conf import settings

    return bool(settings.SIGNUP_ENABLED)


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key) if mapping else None


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    url: str
    enabled: bool


def _step_index(status: str) -> int:
    return next(i for i, (_, statuses) in enumerate(STEPS) if status in statuses)


@register.simple_tag
def shoot_tabs(shoot) -> list[Tab]:
    """Overview, mask, faces and results tabs; a tab opens once the shoot got that far."""
    from django.urls import reverse

    index = _step_index(shoot.status)
    return [
        Tab("overview", "Overview", reverse("seller:shoot", args=[shoot.pk]), True),
        Tab("mask", "Mask", reverse("seller:mask_review", args=[shoot.pk]), index >= 2),
        Tab("faces", "Faces", reverse("seller:faces", args=[shoot.pk]), index >= 3),
        Tab("results", "Results", reverse("seller:results", args=[shoot.pk]), index >= 4),
    ]


@functools.cache
def _face_labels() -> dict[str, dict]:
    """value -> label for each face attribute with choices (built once per process)."""
    from facelibrary.models import Face
    from seller.forms import FACE_FILTERS

    labels = {}
    for name in FACE_FILTERS:
        try:
            field = Face._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        labels[name] = {value: str(label) for value, label in field.flatchoices}
    return labels


@register.simple_tag
def face_tags(face) -> list[str]:
    """Readable values of the face's library attributes (regions as their names)."""
    tags = []
    for name, labels in _face_labels().items():
        value = getattr(face, name, None)
        if value not in (None, ""):
            label = labels.get(value, str(value))
            tags.append(f"{label} hair" if name == "hair_color" else label)
    tags.extend(getattr(face, "region", None) or [])
    return tags


@register.filter
def stars(value: int | None) -> str:
    """A 1-5 rating as filled and empty stars ("★★★★☆")."""
    n = max(0, min(5, int(value or 0)))
    return "★" * n + "☆" * (5 - n)
