"""Seller corrections to the garment mask while the shoot is in mask review.

This runs in the web process, which never imports the ML stack (OpenCV, mediapipe, torch...).
A correction is validated and recorded here as a pending ``MaskCorrection``; the ``analysis``
worker applies it (``seller.jobs.correct_mask`` -> ``seller.analysis.run_mask_correction``): it
re-runs the mask refinement with the seller's strokes as hard constraints (include strokes are
always garment, exclude strokes never) and keeps every version: the new one becomes the chosen
one, older ones stay selectable. Corrections accumulate: each new version keeps the strokes of
the version it corrects. One correction per photo is applied at a time; the reconciler
(``generation.reconcile``) re-enqueues one whose job was lost (``mask_correction_reenqueue``).
"Use the standard pose" draws the OpenPose skeleton here, in the request, with
``generation.inference.skeleton`` (numpy and PIL only).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.files import png_bytes, stored_files
from core.queues import ANALYSIS, enqueue_on_commit, renew_attempt
from core.transitions import TransitionNotAllowed
from generation.inference.skeleton import render_openpose, standard_pose

from .models import MaskCorrection, MaskVersion, PhotoAnalysis, Shoot, ShootPhoto, ShootStatus
from .services import shoot_correct_mask

log = logging.getLogger(__name__)

MAX_STROKES = 200
MAX_POINTS_PER_STROKE = 2000
MIN_RADIUS, MAX_RADIUS = 1, 200
LOST_CORRECTION = "Your correction could not be applied after {attempts} attempts ({reason}). "
LOST_CORRECTION += "Paint it again."
NO_POSE_FLAG = "No body pose found in this photo: choose a standard pose to continue."


class InvalidCorrection(ValueError):
    """The strokes sent by the page are malformed."""


class CorrectionPending(InvalidCorrection):
    """The photo's previous correction is still being applied."""


def parse_strokes(raw, *, radius: float, size: tuple[int, int]) -> list[dict[str, Any]]:
    """Validate polylines of [x, y] points (working-image pixels) and clip them to the image.

    The strokes come back in their stored form, ``{"points": [[x, y], ...], "radius": r}``
    (``Stroke.to_dict()`` of the segmentation's hints, which the worker reads them with).
    """
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
            points.append([min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)])
        strokes.append({"points": points, "radius": float(radius)})
    return strokes


def _require_mask_review(shoot: Shoot) -> None:
    if shoot.status != ShootStatus.MASK_REVIEW:
        raise TransitionNotAllowed(
            "The mask can only be changed while the shoot is in mask review."
        )


def _has_pose(photo: ShootPhoto) -> bool:
    latest = photo.analyses.first()
    return bool(latest and latest.keypoints)


def _fail_stale_corrections(photo: ShootPhoto) -> None:
    """A correction pending for too long lost its job: it no longer blocks a new one."""
    now = timezone.now()
    MaskCorrection.objects.filter(
        photo=photo,
        status=MaskCorrection.Status.PENDING,
        queued_at__lt=now - MaskCorrection.STALE_AFTER,
    ).update(
        status=MaskCorrection.Status.FAILED,
        error="This correction took too long and was dropped; paint it again.",
        finished_at=now,
    )


def mask_correct(
    *,
    photo: ShootPhoto,
    actor=None,
    include_strokes=(),
    exclude_strokes=(),
    brush_radius: float = 12,
) -> MaskCorrection:
    """Record the seller's strokes and have the ``analysis`` worker apply them.

    Returns the pending correction. The worker makes the new mask version (or records why it
    could not); in ``sync`` queue mode that has happened when this returns (``refresh_from_db``).
    """
    shoot = Shoot.objects.get(pk=photo.shoot_id)  # the current status, not a cached copy
    _require_mask_review(shoot)
    size = (photo.width, photo.height)
    include = parse_strokes(list(include_strokes), radius=brush_radius, size=size)
    exclude = parse_strokes(list(exclude_strokes), radius=brush_radius, size=size)
    if not include and not exclude:
        raise InvalidCorrection("Draw at least one include or exclude stroke.")
    chosen = photo.masks.filter(is_chosen=True).first()
    previous = chosen.hints if chosen and chosen.hints else {}
    hints = {
        "include": [*previous.get("include", []), *include],
        "exclude": [*previous.get("exclude", []), *exclude],
    }
    try:
        with transaction.atomic():
            _fail_stale_corrections(photo)
            correction = MaskCorrection.objects.create(
                photo=photo,
                hints=hints,
                include_count=len(include),
                exclude_count=len(exclude),
                created_by=actor,
            )
            _enqueue_correction(correction)
    except IntegrityError as exc:  # one_pending_mask_correction_per_photo
        raise CorrectionPending(
            "Your previous correction of this photo is still being applied. "
            "Wait for the new mask, then paint again."
        ) from exc
    return correction


def _enqueue_correction(correction: MaskCorrection) -> None:
    enqueue_on_commit(ANALYSIS, "seller.jobs.correct_mask", correction.pk, job_id=correction.job_id)


def mask_correction_reenqueue(correction: MaskCorrection, *, note: str) -> bool:
    """Give a pending correction whose job was lost a new attempt (reconciler): a new job id,
    and a fresh ``STALE_AFTER`` window. False when it was applied or failed meanwhile."""
    pending = MaskCorrection.Status.PENDING
    renewed = renew_attempt(correction, attempts="attempts", queued_at="queued_at", status=pending)
    if renewed:
        log.info("mask correction %s: %s (attempt %s)", correction.pk, note, correction.attempts)
        _enqueue_correction(correction)
    return renewed


def mask_correction_lost(correction: MaskCorrection, *, reason: str) -> bool:
    """Its job was lost once too often (reconciler): the seller is told to paint it again."""
    error = LOST_CORRECTION.format(attempts=correction.attempts, reason=reason)
    return mask_correction_fail(correction=correction, error=error)


def mask_correction_fail(*, correction: MaskCorrection, error: str) -> bool:
    """Record why a pending correction was not applied (the seller's panel shows ``error``).
    False when it was no longer pending."""
    return bool(
        MaskCorrection.objects.filter(
            pk=correction.pk, status=MaskCorrection.Status.PENDING
        ).update(status=MaskCorrection.Status.FAILED, error=error, finished_at=timezone.now())
    )


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
    photos = [p for p in shoot.photos.all() if not _has_pose(p)]
    if not photos:
        return []
    with stored_files() as files:
        prepared = []
        for photo in photos:
            pose = standard_pose(shoot.category, (photo.width, photo.height))
            pose_png = png_bytes(render_openpose(pose, (photo.width, photo.height)))
            prepared.append((photo, pose, files.store("analysis", pose_png, "png")))
        with transaction.atomic():
            shoot_correct_mask(shoot=shoot, actor=actor, note="Standard pose chosen")
            created = []
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
