"""Numbers the automatic QA checks are made of. No Django here: plain images in, dataclasses out.

Each function measures one thing about a generated image (or video) and leaves the pass/fail
decision to its caller (``qa/checks.py`` holds the thresholds), so the same numbers can be
stored, shown next to their threshold in the QA queue, and recalibrated without re-measuring.

Garment fidelity and SSIM come from ``composite`` (which also does the paste-back they audit) and
face detection/embeddings from ``faces``; this module only adds what neither has: a tolerant
changed-pixel count (lossy encodings), whole-image sharpness and exposure, mediapipe hands and
video frame-to-frame stability. Calibration figures on the sample photos are in docs/qa.md.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

from . import composite
from .cache import models
from .errors import InferenceError
from .geometry import box_iou

ImageLike = Image.Image | np.ndarray
MaskLike = np.ndarray | Image.Image


def to_rgb(image: ImageLike) -> Image.Image:
    """An RGB PIL image, EXIF-rotated like every other stage of the pipeline sees it."""
    if isinstance(image, np.ndarray):
        return Image.fromarray(np.ascontiguousarray(image[..., :3]).astype(np.uint8))
    return ImageOps.exif_transpose(image).convert("RGB")


# --- garment fidelity --------------------------------------------------------------------------


@dataclass(frozen=True)
class GarmentFidelity:
    """How far the garment in the result is from the seller's photo.

    ``changed_pixels`` is the exact count (any channel differs at all) from
    ``composite.changed_pixels_inside``; ``changed_fraction`` counts only pixels off by more than
    ``tolerance`` levels, so a JPEG-encoded result of an exact paste-back still reads 0.
    """

    mask_pixels: int
    changed_pixels: int
    changed_over_tolerance: int
    changed_fraction: float
    ssim: float
    resized: bool
    erode_px: int
    tolerance: int


def garment_fidelity(
    original: ImageLike,
    result: ImageLike,
    garment_mask: MaskLike,
    *,
    erode_px: int = 4,
    ssim_margin_px: int = 6,
    tolerance: int = 12,
) -> GarmentFidelity:
    """Compare the garment region of ``result`` with ``original``.

    The mask is eroded by ``erode_px`` first: the paste-back blends a narrow band at the garment
    edge on purpose (composite.paste_garment erodes by 2 px and feathers outside), only the core is
    promised to be an exact copy. SSIM uses a further ``ssim_margin_px`` so its 11 px window does
    not straddle the blended band.
    """
    orig = to_rgb(original)
    res = to_rgb(result)
    resized = res.size != orig.size
    if resized:
        # a result at another resolution cannot be a pixel copy; compare at the photo's size so
        # the numbers still say how different the garment looks
        res = res.resize(orig.size, Image.Resampling.LANCZOS)
    mask = composite.as_bool_mask(garment_mask, size=orig.size)
    core = composite.erode(mask, erode_px)
    if not core.any():
        raise InferenceError("the garment mask is empty after erosion; nothing to compare")
    core_img = Image.fromarray(core.astype(np.uint8) * 255)
    exact = composite.changed_pixels_inside(orig, res, core_img)
    diff = np.abs(np.asarray(orig, dtype=np.int16) - np.asarray(res, dtype=np.int16)).max(axis=-1)
    over = int((diff[core] > tolerance).sum())
    ssim_core = composite.erode(core, ssim_margin_px)
    if not ssim_core.any():
        ssim_core = core
    ssim = composite.ssim_inside(orig, res, Image.fromarray(ssim_core.astype(np.uint8) * 255))
    pixels = int(core.sum())
    return GarmentFidelity(
        mask_pixels=pixels,
        changed_pixels=exact,
        changed_over_tolerance=over,
        changed_fraction=over / pixels,
        ssim=float(ssim),
        resized=resized,
        erode_px=erode_px,
        tolerance=tolerance,
    )


# --- sharpness, exposure ---------------------------------------------------------------------


def _gray(image: ImageLike) -> np.ndarray:
    return np.asarray(to_rgb(image).convert("L"))


def sharpness(image: ImageLike, *, long_side: int = 768, grid: int = 8, percentile: float = 90):
    """Variance of the Laplacian, taken where the image has detail.

    The image is brought down to ``long_side`` (never up: upscaling is itself a blur), split
    into ``grid`` x ``grid`` tiles, and the ``percentile`` of the per-tile variances is returned.
    A plain whole-image variance would call every white-backdrop studio photo blurred (its flat
    background is most of the frame); the detailed tiles are the model and the garment.
    """
    gray = _gray(image).astype(np.float32)
    scale = min(1.0, long_side / max(gray.shape))
    if scale < 1.0:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    rows = np.array_split(np.arange(lap.shape[0]), grid)
    cols = np.array_split(np.arange(lap.shape[1]), grid)
    tiles = [float(lap[r[0] : r[-1] + 1, c[0] : c[-1] + 1].var()) for r in rows for c in cols]
    return float(np.percentile(tiles, percentile))


@dataclass(frozen=True)
class Exposure:
    mean: float
    shadows_clipped: float  # fraction of pixels <= 5
    highlights_clipped: float  # fraction of pixels >= 250, whole frame
    subject_highlights_clipped: float  # the same in the central region (where the model is)
    p5: float
    p95: float


def exposure(image: ImageLike) -> Exposure:
    """Mean luma and clipping. Blown highlights are judged in the centre of the frame: a white
    studio backdrop is legitimately pure white (up to 58 % of a sample product shot), the model
    and the garment in the middle are not (at most 10 % on the samples; 30-99 % once the
    exposure is doubled)."""
    gray = _gray(image)
    height, width = gray.shape
    centre = gray[int(height * 0.2) : int(height * 0.8), int(width * 0.25) : int(width * 0.75)]
    return Exposure(
        mean=float(gray.mean()),
        shadows_clipped=float(np.count_nonzero(gray <= 5) / gray.size),
        highlights_clipped=float(np.count_nonzero(gray >= 250) / gray.size),
        subject_highlights_clipped=float(np.count_nonzero(centre >= 250) / max(1, centre.size)),
        p5=float(np.percentile(gray, 5)),
        p95=float(np.percentile(gray, 95)),
    )


# --- faces -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceMatch:
    """The faces found in a result and, when there is exactly one, its distance to a reference."""

    face_count: int
    distance: float | None
    box: tuple[int, int, int, int] | None = None


def face_match(image: ImageLike, reference_embedding: Sequence[float] | None) -> FaceMatch:
    """Detect faces in ``image``; with exactly one, measure its embedding's distance to
    ``reference_embedding`` (dlib 128-d; < 0.6 is the same person)."""
    from . import faces  # dlib and mediapipe load lazily, only for checks that need them

    rgb = np.asarray(to_rgb(image))
    found = faces.detect_faces(rgb)
    if len(found) != 1:
        return FaceMatch(face_count=len(found), distance=None)
    face = found[0]
    if reference_embedding is None:
        return FaceMatch(face_count=1, distance=None, box=face.box)
    embedding = faces.embed_face(rgb, face)
    return FaceMatch(
        face_count=1,
        distance=faces.face_distance(embedding, reference_embedding),
        box=face.box,
    )


def face_embedding(image: ImageLike) -> list[float] | None:
    """The embedding of the largest face in ``image`` (None without a face)."""
    from . import faces

    rgb = np.asarray(to_rgb(image))
    found = faces.detect_faces(rgb)
    if not found:
        return None
    return [float(v) for v in faces.embed_face(rgb, found[0])]


# --- hands ---------------------------------------------------------------------------------

#: landmark chains per finger (mediapipe hand topology), from the knuckle to the tip
_FINGERS = {
    "thumb": (1, 2, 3, 4),
    "index": (5, 6, 7, 8),
    "middle": (9, 10, 11, 12),
    "ring": (13, 14, 15, 16),
    "pinky": (17, 18, 19, 20),
}
#: finger length / palm length (wrist to middle knuckle, 3D world landmarks). Measured on the 35
#: hands mediapipe finds in the sample photos: 0.45-1.34; outside this band a finger is missing,
#: doubled into the palm or stretched, which is what a malformed generated hand looks like
FINGER_RATIO_RANGE = (0.35, 1.6)
#: mediapipe's handedness probability; real hands in the samples score 0.87-1.00
MIN_HAND_SCORE = 0.8
#: two detections covering the same hand region are one hand drawn twice (or a ghost finger set)
DUPLICATE_HAND_IOU = 0.4


@dataclass(frozen=True)
class HandFinding:
    label: str  # mediapipe's "Left"/"Right" (mirror convention)
    score: float
    box: tuple[int, int, int, int]
    finger_ratios: dict[str, float]
    problems: tuple[str, ...]

    @property
    def plausible(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class HandReport:
    count: int
    hands: list[HandFinding] = field(default_factory=list)
    duplicates: int = 0

    @property
    def plausibility(self) -> float:
        """1.0 when every hand is plausible (or none is visible); the share of plausible hands
        otherwise, with each duplicate counted as an implausible hand."""
        total = self.count + self.duplicates
        if total == 0:
            return 1.0
        good = sum(1 for hand in self.hands if hand.plausible)
        return good / total


class _Guarded:
    """A mediapipe graph is not thread-safe; one lock per loaded graph."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.lock = threading.Lock()


def _hands_model(max_hands: int, min_confidence: float) -> _Guarded:
    def load() -> _Guarded:
        import mediapipe as mp

        return _Guarded(
            mp.solutions.hands.Hands(
                static_image_mode=True,
                max_num_hands=max_hands,
                model_complexity=1,
                min_detection_confidence=min_confidence,
            )
        )

    return models.get(f"qa.mediapipe_hands.{max_hands}.{min_confidence}", load)


def _hand_finding(landmarks, world, handedness, width: int, height: int) -> HandFinding:
    points = np.array([[p.x * width, p.y * height] for p in landmarks.landmark])
    box = (
        int(points[:, 0].min()),
        int(points[:, 1].min()),
        int(np.ceil(points[:, 0].max())),
        int(np.ceil(points[:, 1].max())),
    )
    w3 = np.array([[p.x, p.y, p.z] for p in world.landmark])
    palm = float(np.linalg.norm(w3[9] - w3[0])) or 1e-6
    ratios = {
        name: float(sum(np.linalg.norm(w3[a] - w3[b]) for a, b in itertools.pairwise(chain)) / palm)
        for name, chain in _FINGERS.items()
    }
    label = handedness.classification[0].label
    score = float(handedness.classification[0].score)
    problems = []
    if score < MIN_HAND_SCORE:
        problems.append(f"low confidence {score:.2f}")
    low, high = FINGER_RATIO_RANGE
    odd = [name for name, r in ratios.items() if not low <= r <= high]
    if odd:
        problems.append("implausible finger proportions: " + ", ".join(odd))
    return HandFinding(label, score, box, ratios, tuple(problems))


def analyse_hands(
    image: ImageLike, *, max_hands: int = 4, min_confidence: float = 0.5
) -> HandReport:
    """Find hands with mediapipe Hands (static images) and judge each one's landmarks.

    ``max_hands`` is above the two a single model should have, so a third hand is seen (and
    flagged by the caller) rather than silently dropped.
    """
    rgb = np.ascontiguousarray(np.asarray(to_rgb(image)))
    guarded = _hands_model(max_hands, min_confidence)
    with guarded.lock:
        result = guarded.model.process(rgb)
    height, width = rgb.shape[:2]
    hands = [
        _hand_finding(lm, world, hd, width, height)
        for lm, world, hd in zip(
            result.multi_hand_landmarks or [],
            result.multi_hand_world_landmarks or [],
            result.multi_handedness or [],
            strict=False,
        )
    ]
    duplicates = sum(
        1
        for i, a in enumerate(hands)
        for b in hands[i + 1 :]
        if box_iou(a.box, b.box) >= DUPLICATE_HAND_IOU
    )
    return HandReport(count=len(hands), hands=hands, duplicates=duplicates)


# --- video -------------------------------------------------------------------------------------


def read_video_frames(path: str | Path, *, max_frames: int = 16) -> list[np.ndarray]:
    """Up to ``max_frames`` RGB frames spread evenly over the clip (first and last included)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3).copy() for raw in reader]
    if not frames:
        raise InferenceError(f"no frames could be read from {path}")
    if len(frames) <= max_frames:
        return frames
    picks = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
    return [frames[i] for i in picks]


def _small_gray(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA).astype(np.float64)


@dataclass(frozen=True)
class VideoStability:
    frames: int
    face_frames: int
    #: largest embedding distance between the first frame's face and any later frame's face
    identity_max_distance: float | None
    #: smallest SSIM inside the garment between consecutive frames (at ``long_side`` px)
    garment_min_ssim: float | None
    garment_mean_ssim: float | None
    #: per consecutive pair, for the QA page
    garment_ssims: list[float] = field(default_factory=list)
    identity_distances: list[float] = field(default_factory=list)


def garment_stability(
    frames: Sequence[np.ndarray], garment_mask: MaskLike, *, long_side: int = 256
) -> list[float]:
    """SSIM inside the garment between consecutive frames.

    Compared at ``long_side`` px: at that scale the small motion of a short clip barely moves
    the texture (SSIM ~0.92 for a 1.5 px/frame drift on the samples) while a garment that
    morphs or is swapped mid-clip drops below 0.2.
    """
    height, width = frames[0].shape[:2]
    scale = long_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    mask = composite.as_bool_mask(garment_mask, size=size)
    if not mask.any():
        raise InferenceError("the garment mask is empty at video resolution")
    grays = [_small_gray(frame, size) for frame in frames]
    return [float(composite.ssim_map(a, b)[mask].mean()) for a, b in itertools.pairwise(grays)]


def identity_drift(frames: Sequence[np.ndarray]) -> tuple[int, list[float]]:
    """(frames with a face, distance of each later face to the first one found)."""
    embeddings = [face_embedding(frame) for frame in frames]
    found = [e for e in embeddings if e is not None]
    if not found:
        return 0, []
    first = np.asarray(found[0])
    return len(found), [float(np.linalg.norm(np.asarray(e) - first)) for e in found[1:]]


def video_stability(frames: Sequence[np.ndarray], garment_mask: MaskLike | None) -> VideoStability:
    if len(frames) < 2:
        raise InferenceError("a stability check needs at least two frames")
    face_frames, distances = identity_drift(frames)
    ssims = garment_stability(frames, garment_mask) if garment_mask is not None else []
    return VideoStability(
        frames=len(frames),
        face_frames=face_frames,
        identity_max_distance=max(distances) if distances else None,
        garment_min_ssim=min(ssims) if ssims else None,
        garment_mean_ssim=float(np.mean(ssims)) if ssims else None,
        garment_ssims=ssims,
        identity_distances=distances,
    )
