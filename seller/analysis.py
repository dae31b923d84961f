"""The analysis stage: pose + garment mask for every photo of a shoot.

Runs in the ``analysis`` worker (``generation.jobs.analyze_shoot``). Inference and file writes
happen outside any transaction; the rows and the status change are written in one short
transaction guarded by the attempt number, so a superseded attempt (the reconciler gave the shoot
a new job) can never overwrite the current one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from generation.inference.errors import InferenceError, NoPoseFoundError
from generation.inference.pose import PoseResult, estimate_pose, render_openpose, standard_pose
from generation.inference.segmentation import MaskHints, SegmentationResult, segment_garment

from .imagefiles import StorageWriteError, delete_quietly, open_rgb, png_bytes, store
from .models import MaskVersion, PhotoAnalysis, Shoot, ShootPhoto, ShootStatus
from .services import TransitionConflict, shoot_fail_analysis, shoot_finish_analysis

log = logging.getLogger(__name__)

NO_POSE_FLAG = "No body pose found in this photo: choose a standard pose to continue."
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
) -> PhotoResult:
    """Pose + mask for one photo (pure computation, plus writing the result files)."""
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
    result.files = store_result_files(result, image.size)
    return result


def store_result_files(result: PhotoResult, size: tuple[int, int]) -> dict[str, str]:
    files: dict[str, str] = {}
    try:
        files["mask"] = store("masks", png_bytes(result.segmentation.mask), "png")
        files["feathered"] = store("masks", png_bytes(result.segmentation.feathered), "png")
        files["person_mask"] = store("analysis", png_bytes(result.segmentation.person_mask), "png")
        if result.pose is not None:
            files["pose_image"] = store(
                "analysis", png_bytes(render_openpose(result.pose, size)), "png"
            )
    except BaseException:
        # The caller only learns the names once all are stored: remove the ones already written.
        delete_quietly(list(files.values()))
        raise
    return files


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
    results: list[PhotoResult] = []
    try:
        if not photos:
            raise InferenceError("This shoot has no photos to analyse.")
        for photo in photos:
            results.append(analyze_photo(photo, category=shoot.category))
        _commit_results(shoot, results, attempt)
    except TransitionConflict:
        _discard(results)
        log.info("analysis of shoot %s attempt %s was superseded", shoot_id, attempt)
    except InferenceError as exc:
        _discard(results)
        _fail(shoot, str(exc), attempt)
    except StorageWriteError:
        # Disk full or storage down: an operational failure with a message the seller can act
        # on, not a crash; nothing was kept, and a retry works once there is room again.
        log.exception(
            "analysis of shoot %s attempt %s could not store its results", shoot_id, attempt
        )
        _discard(results)
        _fail(shoot, STORAGE_FAILED, attempt)
    except Exception as exc:
        _discard(results)
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


def _discard(results: list[PhotoResult]) -> None:
    for result in results:
        delete_quietly(list(result.files.values()))


def _fail(shoot: Shoot, message: str, attempt: int) -> None:
    try:
        shoot_fail_analysis(shoot=shoot, error=message, attempt=attempt)
    except TransitionConflict:
        log.info("shoot %s moved on before its analysis failure was recorded", shoot.pk)


def template_pose_for(photo: ShootPhoto, category: str) -> PoseResult:
    return standard_pose(category, (photo.width, photo.height))
