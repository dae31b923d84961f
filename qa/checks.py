"""Automatic QA checks of one generated asset: measure (slow, no transaction), then store.

Every check produces a ``CheckResult``: a score, the limits it is judged by and the verdict. The
limits live here, in one table, and are stored with each result so an old score keeps the
threshold it was judged by after a recalibration. How they were chosen: docs/qa.md.

The numbers come from ``generation.inference.qa_metrics`` (Django-free); this module only finds
the inputs (the seller's photo and garment mask the job used, via ``generation.inputs``, and the
library face) and applies limits.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.core.files.storage import default_storage
from PIL import Image

from generation.inputs import job_inputs
from generation.models import Asset

from .models import CheckName

log = logging.getLogger(__name__)
C = CheckName


@dataclass(frozen=True)
class Limits:
    min_value: float | None = None
    max_value: float | None = None

    def judge(self, score: float) -> bool:
        if self.min_value is not None and score < self.min_value:
            return False
        return not (self.max_value is not None and score > self.max_value)


#: calibrated on the sample photos; see docs/qa.md for the measurements behind each number
LIMITS: dict[str, Limits] = {
    # share of (eroded) garment pixels off by more than 12 levels; an exact paste-back is 0 and a
    # JPEG q92 re-encode of it is 0 too; a 40x40 px patch in a 84k px garment is 0.02
    C.GARMENT_CHANGED: Limits(max_value=0.002),
    # SSIM inside the garment core; exact paste-back 1.0, a 40x40 patch 0.90-0.977
    C.GARMENT_SSIM: Limits(min_value=0.98),
    # dlib 128-d distance to the library face; dlib's own same-person cut is 0.6
    C.FACE_IDENTITY: Limits(max_value=0.6),
    # one model, two hands; a third is a generated extra (or a ghost detection worth a look)
    C.HAND_COUNT: Limits(max_value=2),
    # share of detected hands whose landmarks look like a hand (1.0 = all of them)
    C.HAND_PLAUSIBILITY: Limits(min_value=1.0),
    # 90th-percentile tile variance of the Laplacian at 768 px: sample photos 117-6848,
    # the same photos blurred with sigma 3: 1-27
    C.SHARPNESS: Limits(min_value=60),
    # mean luma; sample photos 88-241 (white-backdrop product shots are bright by design)
    C.EXPOSURE: Limits(min_value=40, max_value=245),
    # short side in pixels
    C.RESOLUTION: Limits(min_value=512),
    # largest distance between the first frame's face and a later frame's face
    C.VIDEO_IDENTITY: Limits(max_value=0.6),
    # smallest garment SSIM between consecutive frames at 256 px: steady drift ~0.92, a garment
    # swapped mid-clip 0.03-0.16
    C.VIDEO_GARMENT: Limits(min_value=0.6),
}
#: exposure: more clipped than this reads as crushed shadows / blown highlights (the latter in
#: the centre of the frame: samples <= 0.10, the same photos at 2x exposure mostly 0.3-0.99)
MAX_SHADOWS_CLIPPED = 0.3
MAX_HIGHLIGHTS_CLIPPED = 0.2


@dataclass
class CheckResult:
    name: str
    score: float | None
    passed: bool | None
    flags: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: the check raised: no verdict (``passed`` None), shown as "error", blocks QA approval
    errored: bool = False

    @property
    def limits(self) -> Limits:
        return LIMITS.get(self.name, Limits())


def judged(name: str, score: float, **extra: Any) -> CheckResult:
    return CheckResult(name=name, score=float(score), passed=LIMITS[name].judge(score), **extra)


def not_applicable(name: str, flag: str, **details: Any) -> CheckResult:
    return CheckResult(name=name, score=None, passed=None, flags=[flag], details=details)


def errored(name: str, exc: BaseException) -> CheckResult:
    """A check that raised: recorded as an error (not n/a, not a pass), with the message."""
    return CheckResult(
        name=name,
        score=None,
        passed=None,
        flags=["error"],
        details={"error": f"{type(exc).__name__}: {exc}"},
        errored=True,
    )


# --- inputs ------------------------------------------------------------------------------------


@dataclass
class CheckInputs:
    asset: Asset
    original: Image.Image | None
    mask: np.ndarray | None
    reference_embedding: list[float] | None
    notes: list[str] = field(default_factory=list)


def _read_image(field_file) -> Image.Image:
    with field_file.open("rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image


def reference_embedding_for(face) -> list[float] | None:
    """The library face's dlib embedding, or one computed from its reference image.

    The face library stores its own identity data; we accept a stored 128-d ``embedding`` or the
    reference image that ``facelibrary.identity.face_identity_inputs`` hands the generator.
    """
    if face is None:
        return None
    stored = getattr(face, "embedding", None)
    if stored is not None and len(stored) == 128:
        return [float(v) for v in stored]
    from facelibrary.identity import face_identity_inputs
    from generation.inference.qa_metrics import face_embedding

    identity = face_identity_inputs(face)
    if identity.image is None:
        return None
    return face_embedding(identity.image)


def gather_inputs(asset: Asset) -> CheckInputs:
    notes: list[str] = []
    original = mask = None
    used = job_inputs(asset.job)  # the photo and mask the generator used, not a guess
    if used.photo is None:
        notes.append("no_source_photo")
    else:
        original = used.photo_image()
        if used.mask is None:
            notes.append("no_garment_mask")
        else:
            mask = used.mask_array()
    try:
        reference = reference_embedding_for(asset.job.face)
    except Exception:  # the face library being broken must not stop the other checks
        log.exception("could not get the reference embedding of face %s", asset.job.face_id)
        reference = None
    return CheckInputs(asset, original, mask, reference, notes)


@contextlib.contextmanager
def local_path(field_file) -> Iterator[str]:
    """A local file path for ffmpeg: the file itself on disk storage, a temp copy on S3."""
    try:
        yield default_storage.path(field_file.name)
        return
    except NotImplementedError:
        pass
    suffix = os.path.splitext(field_file.name)[1]
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        with field_file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                tmp.write(chunk)
        tmp.flush()
        yield tmp.name


# --- checks ------------------------------------------------------------------------------------


def garment_checks(result: Image.Image, inputs: CheckInputs) -> list[CheckResult]:
    from generation.inference.qa_metrics import garment_fidelity

    if inputs.original is None or inputs.mask is None:
        flag = inputs.notes[0] if inputs.notes else "no_garment_mask"
        return [not_applicable(C.GARMENT_CHANGED, flag), not_applicable(C.GARMENT_SSIM, flag)]
    fidelity = garment_fidelity(inputs.original, result, inputs.mask)
    details = {
        "mask_pixels": fidelity.mask_pixels,
        "changed_pixels_exact": fidelity.changed_pixels,
        "changed_over_tolerance": fidelity.changed_over_tolerance,
        "tolerance": fidelity.tolerance,
        "erode_px": fidelity.erode_px,
    }
    flags = ["resized"] if fidelity.resized else []
    return [
        judged(C.GARMENT_CHANGED, fidelity.changed_fraction, flags=flags, details=details),
        judged(C.GARMENT_SSIM, fidelity.ssim, flags=list(flags), details={"erode_px": 10}),
    ]


def face_check(image: Image.Image | np.ndarray, inputs: CheckInputs) -> CheckResult:
    from generation.inference.qa_metrics import face_match

    found = face_match(image, inputs.reference_embedding)
    details: dict[str, Any] = {"faces": found.face_count}
    if found.face_count == 0:
        return CheckResult(C.FACE_IDENTITY, None, False, ["no_face"], details)
    if found.face_count > 1:
        return CheckResult(C.FACE_IDENTITY, None, False, ["several_faces"], details)
    details["box"] = list(found.box) if found.box else None
    if found.distance is None:
        return CheckResult(C.FACE_IDENTITY, None, None, ["no_reference"], details)
    return judged(C.FACE_IDENTITY, found.distance, details=details)


def hand_checks(image: Image.Image) -> list[CheckResult]:
    from generation.inference.qa_metrics import analyse_hands

    report = analyse_hands(image)
    hands = [
        {
            "label": hand.label,
            "score": round(hand.score, 3),
            "box": list(hand.box),
            "fingers": {k: round(v, 2) for k, v in hand.finger_ratios.items()},
            "problems": list(hand.problems),
        }
        for hand in report.hands
    ]
    count_flags = ["too_many_hands"] if report.count > LIMITS[C.HAND_COUNT].max_value else []
    plaus_flags = [p for hand in report.hands for p in hand.problems]
    if report.duplicates:
        plaus_flags.append(f"{report.duplicates} overlapping hand(s)")
    return [
        judged(C.HAND_COUNT, report.count, flags=count_flags, details={"hands": hands}),
        judged(C.HAND_PLAUSIBILITY, report.plausibility, flags=plaus_flags),
    ]


def sharpness_check(image: Image.Image) -> CheckResult:
    from generation.inference.qa_metrics import sharpness

    return judged(C.SHARPNESS, sharpness(image))


def exposure_check(image: Image.Image) -> CheckResult:
    from generation.inference.qa_metrics import exposure

    found = exposure(image)
    result = judged(
        C.EXPOSURE,
        found.mean,
        details={
            "shadows_clipped": round(found.shadows_clipped, 4),
            "highlights_clipped": round(found.highlights_clipped, 4),
            "subject_highlights_clipped": round(found.subject_highlights_clipped, 4),
            "p5": found.p5,
            "p95": found.p95,
        },
    )
    if found.shadows_clipped > MAX_SHADOWS_CLIPPED:
        result.flags.append("crushed_shadows")
    if found.subject_highlights_clipped > MAX_HIGHLIGHTS_CLIPPED:
        result.flags.append("blown_highlights")
    if result.flags:
        result.passed = False
    return result


def resolution_check(width: int, height: int) -> CheckResult:
    return judged(C.RESOLUTION, min(width, height), details={"width": width, "height": height})


def video_checks(frames: list[np.ndarray], inputs: CheckInputs) -> list[CheckResult]:
    from generation.inference.qa_metrics import video_stability

    found = video_stability(frames, inputs.mask)
    identity_details = {
        "frames": found.frames,
        "frames_with_face": found.face_frames,
        "distances": [round(d, 3) for d in found.identity_distances],
    }
    if found.identity_max_distance is None:
        identity = not_applicable(C.VIDEO_IDENTITY, "no_face", **identity_details)
        if found.face_frames == 0:
            identity.passed = False
    else:
        identity = judged(C.VIDEO_IDENTITY, found.identity_max_distance, details=identity_details)
        if found.face_frames < found.frames:
            identity.flags.append(f"face missing in {found.frames - found.face_frames} frame(s)")
    if found.garment_min_ssim is None:
        garment = not_applicable(C.VIDEO_GARMENT, "no_garment_mask")
    else:
        garment = judged(
            C.VIDEO_GARMENT,
            found.garment_min_ssim,
            details={
                "mean": round(found.garment_mean_ssim or 0.0, 4),
                "ssims": [round(s, 3) for s in found.garment_ssims],
            },
        )
    return [identity, garment]


def _timed(run: Callable[[], CheckResult | list[CheckResult]], names: list[str]):
    """Run one check; an exception becomes an errored result for its names instead of
    stopping the others (a missing model must not hide the garment check)."""
    started = time.perf_counter()
    try:
        found = run()
    except Exception as exc:
        log.exception("QA check %s failed", names)
        return [errored(name, exc) for name in names]
    results = found if isinstance(found, list) else [found]
    elapsed = (time.perf_counter() - started) / max(1, len(results))
    for result in results:
        result.seconds = round(elapsed, 4)
    return results


def image_checks(result: Image.Image, inputs: CheckInputs) -> list[CheckResult]:
    rgb = result.convert("RGB")
    return [
        *_timed(lambda: garment_checks(rgb, inputs), [C.GARMENT_CHANGED, C.GARMENT_SSIM]),
        *_timed(lambda: face_check(rgb, inputs), [C.FACE_IDENTITY]),
        *_timed(lambda: hand_checks(rgb), [C.HAND_COUNT, C.HAND_PLAUSIBILITY]),
        *_timed(lambda: sharpness_check(rgb), [C.SHARPNESS]),
        *_timed(lambda: exposure_check(rgb), [C.EXPOSURE]),
        *_timed(lambda: resolution_check(*rgb.size), [C.RESOLUTION]),
    ]


def run_video_checks(asset: Asset, inputs: CheckInputs) -> list[CheckResult]:
    from generation.inference.qa_metrics import read_video_frames

    with local_path(asset.file) as path:
        frames = read_video_frames(path)
    height, width = frames[0].shape[:2]
    return [
        *_timed(lambda: video_checks(frames, inputs), [C.VIDEO_IDENTITY, C.VIDEO_GARMENT]),
        *_timed(lambda: face_check(frames[0], inputs), [C.FACE_IDENTITY]),
        *_timed(lambda: resolution_check(width, height), [C.RESOLUTION]),
    ]


VIDEO_NAMES = [C.VIDEO_IDENTITY, C.VIDEO_GARMENT, C.FACE_IDENTITY, C.RESOLUTION]
IMAGE_NAMES = [
    C.GARMENT_CHANGED,
    C.GARMENT_SSIM,
    C.FACE_IDENTITY,
    C.HAND_COUNT,
    C.HAND_PLAUSIBILITY,
    C.SHARPNESS,
    C.EXPOSURE,
    C.RESOLUTION,
]


def measure_asset(asset: Asset) -> list[CheckResult]:
    """Every check that applies to ``asset``. Slow (seconds): call outside any transaction."""
    inputs = gather_inputs(asset)
    if asset.kind == Asset.Kind.VIDEO:
        return _or_errors(lambda: run_video_checks(asset, inputs), VIDEO_NAMES)
    return _or_errors(lambda: image_checks(_read_image(asset.file), inputs), IMAGE_NAMES)


def _or_errors(run: Callable[[], list[CheckResult]], names: list[str]) -> list[CheckResult]:
    """An unreadable asset file still leaves a trace in the QA queue: every check says error."""
    try:
        return run()
    except Exception as exc:
        log.exception("asset could not be read for QA checks")
        return [errored(name, exc) for name in names]
