"""Seller corrections to the garment mask while the shoot is in mask review.

A correction re-runs the mask refinement with the seller's strokes as hard constraints (include
strokes are always garment, exclude strokes never) and keeps every version: the new one becomes
the chosen one, older ones stay selectable. Corrections accumulate: each new version keeps the
strokes of the version it corrects.
"""

from __future__ import annotations

import math

from django.db import transaction

from generation.inference.pose import PoseResult, render_openpose
from generation.inference.segmentation import MaskHints, Stroke

from .analysis import NO_POSE_FLAG, add_mask_version, analyze_photo, template_pose_for
from .imagefiles import delete_quietly, png_bytes, store
from .models import MaskVersion, PhotoAnalysis, Shoot, ShootPhoto, ShootStatus
from .services import TransitionNotAllowed, shoot_correct_mask

MAX_STROKES = 200
MAX_POINTS_PER_STROKE = 2000
MIN_RADIUS, MAX_RADIUS = 1, 200


class InvalidCorrection(ValueError):
    """The strokes sent by the page are malformed."""


def parse_strokes(raw, *, radius: float, size: tuple[int, int]) -> list[Stroke]:
    """Validate polylines of [x, y] points (working-image pixels) and clip them to the image."""
    if not isinstance(raw, list) or len(raw) > MAX_STROKES:
        raise InvalidCorrection(f"Send at most {MAX_STROKES} strokes as a list.")
    if not MIN_RADIUS <= radius <= MAX_RADIUS:
        raise InvalidCorrection(f"Brush size must be {MIN_RADIUS} to {MAX_RADIUS} pixels.")
    width, height = size
    strokes = []
    for line in raw:
        if not isinstance(line, list) or not 1 <= len(line) <= MAX_POINTS_PER_STROKE:
            raise InvalidCorrection("Each stroke must be a list of 1 to 2000 points.")
        points = []
        for point in line:
            try:
                x, y = float(point[0]), float(point[1])
            except (TypeError, ValueError, IndexError) as exc:
                raise InvalidCorrection("Each point must be [x, y] numbers.") from exc
            if math.isnan(x) or math.isnan(y):  # JSON NaN / "nan": min/max cannot clamp it
                raise InvalidCorrection("Each point must be [x, y] numbers.")
            points.append((min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)))
        strokes.append(Stroke(points=points, radius=float(radius)))
    return strokes


def _require_mask_review(shoot: Shoot) -> None:
    if shoot.status != ShootStatus.MASK_REVIEW:
        raise TransitionNotAllowed(
            "The mask can only be changed while the shoot is in mask review."
        )


def _current_pose(photo: ShootPhoto) -> PoseResult | None:
    latest = photo.analyses.first()
    return PoseResult.from_dict(latest.keypoints) if latest and latest.keypoints else None


def mask_correct(
    *,
    photo: ShootPhoto,
    actor=None,
    include_strokes=(),
    exclude_strokes=(),
    brush_radius: float = 12,
) -> MaskVersion:
    shoot = Shoot.objects.get(pk=photo.shoot_id)  # the current status, not a cached copy
    _require_mask_review(shoot)
    size = (photo.width, photo.height)
    include = parse_strokes(list(include_strokes), radius=brush_radius, size=size)
    exclude = parse_strokes(list(exclude_strokes), radius=brush_radius, size=size)
    if not include and not exclude:
        raise InvalidCorrection("Draw at least one include or exclude stroke.")
    chosen = photo.masks.filter(is_chosen=True).first()
    previous = MaskHints.from_dict(chosen.hints) if chosen and chosen.hints else MaskHints()
    hints = MaskHints(include=previous.include + include, exclude=previous.exclude + exclude)

    result = analyze_photo(
        photo, category=shoot.category, hints=hints, pose=_current_pose(photo), detect_pose=False
    )
    try:
        with transaction.atomic():
            shoot_correct_mask(
                shoot=shoot,
                actor=actor,
                note=f"Mask corrected ({len(include)} include, {len(exclude)} exclude strokes)",
            )
            return add_mask_version(
                result,
                analysis=photo.analyses.first(),
                source=MaskVersion.Source.CORRECTED,
                hints=hints,
                actor=actor,
            )
    except BaseException:
        delete_quietly(list(result.files.values()))
        raise


@transaction.atomic
def mask_choose_version(*, mask: MaskVersion, actor=None) -> MaskVersion:
    shoot = Shoot.objects.get(pk=mask.photo.shoot_id)
    _require_mask_review(shoot)
    shoot_correct_mask(shoot=shoot, actor=actor, note=f"Mask version {mask.version} chosen")
    MaskVersion.objects.filter(photo=mask.photo, is_chosen=True).update(is_chosen=False)
    MaskVersion.objects.filter(pk=mask.pk).update(is_chosen=True)
    mask.refresh_from_db()
    return mask


def shoot_use_standard_pose(*, shoot: Shoot, actor=None) -> list[PhotoAnalysis]:
    """Give every photo without a detected pose the standard pose of the shoot's category."""
    _require_mask_review(shoot)
    created, written = [], []
    photos = [p for p in shoot.photos.all() if _current_pose(p) is None]
    if not photos:
        return []
    try:
        prepared = []
        for photo in photos:
            pose = template_pose_for(photo, shoot.category)
            name = store(
                "analysis", png_bytes(render_openpose(pose, (photo.width, photo.height))), "png"
            )
            written.append(name)
            prepared.append((photo, pose, name))
        with transaction.atomic():
            shoot_correct_mask(shoot=shoot, actor=actor, note="Standard pose chosen")
            for photo, pose, name in prepared:
                latest = photo.analyses.first()
                flags = [f for f in (latest.flags if latest else []) if f != NO_POSE_FLAG]
                created.append(
                    PhotoAnalysis.objects.create(
                        photo=photo,
                        attempt=latest.attempt if latest else 1,
                        keypoints=pose.to_dict(),
                        pose_source=PhotoAnalysis.PoseSource.TEMPLATE,
                        pose_image=name,
                        person_mask=latest.person_mask.name if latest else "",
                        quality=latest.quality if latest else {},
                        flags=flags,
                        low_quality=bool(flags),
                    )
                )
        return created
    except BaseException:
        delete_quietly(written)
        raise
