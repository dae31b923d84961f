"""The analysis stage: pose + garment mask for every photo of a shoot.

Runs in the ``analysis`` worker (``seller.jobs.analyze_shoot``). Inference and file writes
happen outside any transaction; the rows and the status change are written in one short
transaction guarded by the attempt number, so a superseded attempt (the reconciler gave the shoot
a new job) can never overwrite the current one.

The same worker applies the seller's mask corrections (``seller.jobs.correct_mask``), which the
web process only records (``seller/masks.py``): it never imports the inference stack.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.files import StorageWriteError, StoredFiles, open_rgb, png_bytes, stored_files
from core.transitions import TransitionConflict, TransitionError
from generation.inference.errors import InferenceError, NoPoseFoundError
from generation.inference.pose import PoseResult, estimate_pose, render_openpose
from generation.inference.segmentation import MaskHints, SegmentationResult, segment_garment

from .masks import NO_POSE_FLAG, mask_correction_fail
from .models import MaskCorrection, MaskVersion, PhotoAnalysis, Shoot, ShootPhoto, ShootStatus
from .services import shoot_correct_mask, shoot_fail_analysis, shoot_finish_analysis

log = logging.getLogger(__name__)

STORAGE_FAILED = (
    "The analysis results could not be saved (storage full or unavailable). "
    "Nothing was kept; retry the analysis later."
)


@dataclass
class PhotoResult:
    photo: ShootPhoto
    pose: PoseResult | None
    segmentation: SegmentationResult
    seconds: float
    files: dict[str, str] = field(default_factory=dict)

    @property
    def flags(self) -> list[str]:
        flags = list(self.segmentation.flags)
        if self.pose is None:
            flags.insert(0, NO_POSE_FLAG)
        return flags


def analyze_photo(
    photo: ShootPhoto,
    *,
    category: str,
    hints: MaskHints | None = None,
    pose: PoseResult | None = None,
    detect_pose: bool = True,
    files: StoredFiles,
) -> PhotoResult:
    """Pose + mask for one photo (pure computation, plus writing the result files, owned by
    ``files``: the caller's ``stored_files()`` block, which ends with recording them)."""
    started = time.perf_counter()
    image = open_rgb(photo.image)
    if pose is None and detect_pose:
        try:
            pose = estimate_pose(image)
        except NoPoseFoundError:
            pose = None
    segmentation = segment_garment(
        image,
        category=category,
        pose=pose,
        hints=hints,
        model_root=settings.MODEL_ROOT,
        detect_pose=False,
    )
    result = PhotoResult(photo, pose, segmentation, time.perf_counter() - started)
    result.files = store_result_files(result, image.size, files)
    return result


def store_result_files(
    result: PhotoResult, size: tuple[int, int], files: StoredFiles
) -> dict[str, str]:
    segmentation = result.segmentation
    names = {
        "mask": files.store("masks", png_bytes(segmentation.mask), "png"),
        "feathered": files.store("masks", png_bytes(segmentation.feathered), "png"),
        "person_mask": files.store("analysis", png_bytes(segmentation.person_mask), "png"),
    }
    if result.pose is not None:
        pose_png = png_bytes(render_openpose(result.pose, size))
        names["pose_image"] = files.store("analysis", pose_png, "png")
    return names


def save_analysis(result: PhotoResult, *, attempt: int) -> PhotoAnalysis:
    pose = result.pose
    analysis = PhotoAnalysis.objects.create(
        photo=result.photo,
        attempt=attempt,
        keypoints=pose.to_dict() if pose else None,
        pose_source=(PhotoAnalysis.PoseSource.DETECTED if pose else ""),
        pose_image=result.files.get("pose_image", ""),
        person_mask=result.files["person_mask"],
        quality=_json_safe(result.segmentation.quality),
        flags=result.flags,
        low_quality=result.segmentation.low_quality or pose is None,
        seconds=round(result.seconds, 3),
    )
    return analysis


def add_mask_version(
    result: PhotoResult,
    *,
    analysis: PhotoAnalysis | None,
    source: str,
    hints: MaskHints | None = None,
    actor=None,
) -> MaskVersion:
    """A new chosen mask version for the photo (the previous one stays, unchosen)."""
    photo = result.photo
    last = photo.masks.order_by("-version").values_list("version", flat=True).first() or 0
    photo.masks.filter(is_chosen=True).update(is_chosen=False)
    return MaskVersion.objects.create(
        photo=photo,
        analysis=analysis,
        version=last + 1,
        source=source,
        mask=result.files["mask"],
        feathered=result.files["feathered"],
        hints=hints.to_dict() if hints else {},
        quality=_json_safe(result.segmentation.quality),
        is_chosen=True,
        created_by=actor,
    )


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value


def run_analysis(*, shoot_id: int, attempt: int) -> None:
    shoot = Shoot.objects.filter(pk=shoot_id).first()
    if shoot is None or shoot.status != ShootStatus.ANALYZING or shoot.analysis_attempts != attempt:
        log.info("analysis of shoot %s attempt %s is no longer current; skipped", shoot_id, attempt)
        return
    photos = list(shoot.photos.all())
    try:
        with stored_files() as files:  # a failure anywhere below removes every file written
            if not photos:
                raise InferenceError("This shoot has no photos to analyse.")
            results = [analyze_photo(p, category=shoot.category, files=files) for p in photos]
            _commit_results(shoot, results, attempt)
    except TransitionConflict:
        log.info("analysis of shoot %s attempt %s was superseded", shoot_id, attempt)
    except InferenceError as exc:
        _fail(shoot, str(exc), attempt)
    except StorageWriteError:
        # Disk full or storage down: an operational failure with a message the seller can act
        # on, not a crash; nothing was kept, and a retry works once there is room again.
        log.exception(
            "analysis of shoot %s attempt %s could not store its results", shoot_id, attempt
        )
        _fail(shoot, STORAGE_FAILED, attempt)
    except Exception as exc:
        _fail(shoot, f"Analysis failed unexpectedly ({type(exc).__name__}). Please retry.", attempt)
        raise


@transaction.atomic
def _commit_results(shoot: Shoot, results: list[PhotoResult], attempt: int) -> None:
    for result in results:
        analysis = save_analysis(result, attempt=attempt)
        add_mask_version(result, analysis=analysis, source=MaskVersion.Source.AUTO)
    flagged = sum(1 for r in results if r.flags)
    note = f"{len(results)} photo(s) analysed" + (f", {flagged} need attention" if flagged else "")
    shoot_finish_analysis(shoot=shoot, attempt=attempt, note=note)


def _fail(shoot: Shoot, message: str, attempt: int) -> None:
    try:
        shoot_fail_analysis(shoot=shoot, error=message, attempt=attempt)
    except TransitionConflict:
        log.info("shoot %s moved on before its analysis failure was recorded", shoot.pk)


# --- the seller's mask corrections ---------------------------------------------------------------

CORRECTION_TOO_LATE = (
    "The mask was confirmed or re-analysed before your correction was ready; it was not applied."
)
CORRECTION_STORAGE_FAILED = (
    "The corrected mask could not be saved (storage full or unavailable). Try again later."
)


class _AlreadyApplied(Exception):
    """Another run of the same correction finished first."""


def current_pose(photo: ShootPhoto) -> PoseResult | None:
    """The pose of the photo's latest analysis: detected, or the standard pose chosen."""
    latest = photo.analyses.first()
    return PoseResult.from_dict(latest.keypoints) if latest and latest.keypoints else None


def run_mask_correction(*, correction_id: int) -> None:
    """Apply a pending ``MaskCorrection``: the mask refined with all its strokes becomes the
    photo's new chosen version, or the correction records why it could not. The inference and
    the file writes happen outside any transaction, as in ``run_analysis``."""
    correction = MaskCorrection.objects.select_related("photo__shoot").filter(pk=correction_id)
    correction = correction.first()
    if correction is None or correction.status != MaskCorrection.Status.PENDING:
        log.info("mask correction %s is no longer pending; skipped", correction_id)
        return
    photo, shoot = correction.photo, correction.photo.shoot
    if shoot.status != ShootStatus.MASK_REVIEW:
        _fail_correction(correction, CORRECTION_TOO_LATE)
        return
    hints = MaskHints.from_dict(correction.hints)
    try:
        with stored_files() as files:  # a failure anywhere below removes the files written
            result = analyze_photo(
                photo,
                category=shoot.category,
                hints=hints,
                pose=current_pose(photo),
                detect_pose=False,
                files=files,
            )
            _commit_correction(correction, shoot, result, hints)
    except _AlreadyApplied:
        log.info("mask correction %s was applied by another run", correction_id)
    except TransitionError:
        _fail_correction(correction, CORRECTION_TOO_LATE)
    except InferenceError as exc:
        _fail_correction(correction, str(exc))
    except StorageWriteError:
        log.exception("mask correction %s could not store its results", correction_id)
        _fail_correction(correction, CORRECTION_STORAGE_FAILED)
    except Exception as exc:
        message = f"The correction failed unexpectedly ({type(exc).__name__}). Please try again."
        _fail_correction(correction, message)
        raise


@transaction.atomic
def _commit_correction(
    correction: MaskCorrection, shoot: Shoot, result: PhotoResult, hints: MaskHints
) -> None:
    pending = MaskCorrection.objects.filter(pk=correction.pk, status=MaskCorrection.Status.PENDING)
    if not pending.update(status=MaskCorrection.Status.DONE, finished_at=timezone.now()):
        raise _AlreadyApplied
    shoot_correct_mask(
        shoot=shoot,
        actor=correction.created_by,
        note=(
            f"Mask corrected ({correction.include_count} include, "
            f"{correction.exclude_count} exclude strokes)"
        ),
    )
    version = add_mask_version(
        result,
        analysis=result.photo.analyses.first(),
        source=MaskVersion.Source.CORRECTED,
        hints=hints,
        actor=correction.created_by,
    )
    MaskCorrection.objects.filter(pk=correction.pk).update(result=version)


def _fail_correction(correction: MaskCorrection, message: str) -> None:
    mask_correction_fail(correction=correction, error=message)
