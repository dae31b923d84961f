"""Garment mask: the pixels of the seller's garment that generation must never change.

Pipeline (every backend shares steps 1, 3 and 4):

1. *Context* at a small working resolution: the person mask (mediapipe pose segmentation, or a
   foreground estimate when no person was found), the head zone (pose keypoints + mediapipe face
   detection), a skin colour model sampled from the face, and hands/feet zones.
2. *Backend trimap*: GrabCut labels (definite/probable foreground/background).
   - ``classical``: geometry from the pose (torso, hip, knee bands by category) + skin + person.
   - ``cloth``: a U2-Net cloth-parsing ONNX model (rembg's ``u2net_cloth_seg``) when its
     weights are in ``model_root/segmentation/``.
   - ``segformer``: a SegFormer human/clothes parser (ATR or LIP/CIHP label set, e.g.
     ``mattmdjaga/segformer_b2_clothes``) when its ``save_pretrained`` folder is in
     ``model_root/segmentation/segformer-clothes/``; ``auto`` prefers it over the others.
3. *Hard constraints*: the head zone is always background; seller hints (include/exclude
   strokes or brushed masks) are definite foreground/background, overriding everything.
4. *Refinement*: GrabCut, then clean-up (components that hold the seeds, small holes filled),
   upsampling guided by the full-resolution photo (edges follow the garment), hard constraints
   re-applied at full resolution, a feathered alpha that only grows outwards, quality metrics.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from PIL import Image

from .cache import models
from .errors import InferenceError, ModelMissingError, NoPoseFoundError
from .pose import (
    L_ANKLE,
    L_EAR,
    L_ELBOW,
    L_EYE,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    NOSE,
    R_ANKLE,
    R_EAR,
    R_ELBOW,
    R_EYE,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    PoseResult,
    estimate_pose,
)

CATEGORIES = ("dress", "top", "bottom", "full_outfit", "saree", "kurta")
#: garments segmented like a full outfit (one piece from shoulders to feet, or draped)
_CATEGORY_ALIASES = {"saree": "full_outfit", "kurta": "full_outfit"}

#: GrabCut runs at this long side: its cost grows with the pixel count, and the mask edge is
#: recovered at full resolution by the guided upsampling
WORK_SIDE = 320
#: GrabCut iterations; the timings and IoU in docs/analysis.md were measured with this value
GRABCUT_ITERATIONS = 2
_GRABCUT_SEEDS = (0, 1, 2)
#: a refined garment smaller than this fraction of the proposed (definite + probable) one
#: counts as a GrabCut collapse
_GRABCUT_COLLAPSE = 0.1
#: the feathered alpha fades to 0 over this fraction of the image diagonal, outside the mask
FEATHER_FRACTION = 0.006

BG, FG, PR_BG, PR_FG = cv2.GC_BGD, cv2.GC_FGD, cv2.GC_PR_BGD, cv2.GC_PR_FGD

CLOTH_MODEL_FILE = Path("segmentation") / "u2net_cloth_seg.onnx"
#: a ``save_pretrained`` folder: config.json (with ``id2label``), model.safetensors,
#: preprocessor_config.json
SEGFORMER_DIR = Path("segmentation") / "segformer-clothes"
SEGFORMER_INSTALL_COMMAND = "python manage.py download_models segformer-clothes"


# --- public data ---------------------------------------------------------------------------------


@dataclass
class Stroke:
    """A brushed polyline in image pixels (of the image passed to ``segment_garment``)."""

    points: list[tuple[float, float]]
    radius: float

    def to_dict(self) -> dict[str, Any]:
        return {"points": [[float(x), float(y)] for x, y in self.points], "radius": self.radius}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stroke:
        return cls(points=[(float(x), float(y)) for x, y in data["points"]], radius=data["radius"])


@dataclass
class MaskHints:
    """Seller corrections; they are hard constraints (GrabCut definite foreground/background).

    Either strokes (polylines + brush radius, in pixels of the analysed image) or brushed masks
    (uint8 HxW, non-zero = brushed) or both. Exclude wins where include and exclude overlap.
    """

    include: list[Stroke] = field(default_factory=list)
    exclude: list[Stroke] = field(default_factory=list)
    include_mask: np.ndarray | None = None
    exclude_mask: np.ndarray | None = None

    def is_empty(self) -> bool:
        return not (
            self.include or self.exclude or _any(self.include_mask) or _any(self.exclude_mask)
        )

    def rasterize(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(include, exclude) boolean HxW masks at ``size`` (width, height)."""
        include = _paint(self.include, self.include_mask, size)
        exclude = _paint(self.exclude, self.exclude_mask, size)
        return include & ~exclude, exclude

    def to_dict(self) -> dict[str, Any]:
        """JSON form of the strokes (brushed masks are stored as PNG files beside it)."""
        return {
            "include": [s.to_dict() for s in self.include],
            "exclude": [s.to_dict() for s in self.exclude],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MaskHints:
        return cls(
            include=[Stroke.from_dict(s) for s in data.get("include", [])],
            exclude=[Stroke.from_dict(s) for s in data.get("exclude", [])],
        )


@dataclass
class SegmentationResult:
    #: uint8 HxW, 0 or 255: the garment pixels that must be kept exactly
    mask: np.ndarray
    #: uint8 HxW alpha for compositing: 255 on the mask, fading to 0 outside it only
    feathered: np.ndarray
    #: uint8 HxW 0/255: the person (or foreground object when no person was found)
    person_mask: np.ndarray
    #: metrics and ``flags`` (human-readable warnings), ``low_quality``
    quality: dict[str, Any]
    category: str = "dress"
    backend: str = "classical"

    @property
    def flags(self) -> list[str]:
        return list(self.quality.get("flags", []))

    @property
    def low_quality(self) -> bool:
        return bool(self.quality.get("low_quality", False))


class MaskBackend(Protocol):
    """A source of a first garment labelling, refined by the shared pipeline."""

    name: str

    def available(self) -> bool:
        """True when everything it needs (weights) is present."""
        ...

    def trimap(self, ctx: Context, category: str) -> np.ndarray:
        """GrabCut labels (BG, FG, PR_BG, PR_FG) at ``ctx.work`` resolution.

        A backend that recognises face or hair may add them to ``ctx.head``/``ctx.head_full``:
        the shared hard constraints then keep them out of the mask at both resolutions.
        """
        ...


# --- entry point ---------------------------------------------------------------------------------


def segment_garment(
    image: Image.Image | np.ndarray,
    *,
    category: str,
    pose: PoseResult | None = None,
    hints: MaskHints | None = None,
    backend: str = "auto",
    model_root: Path | None = None,
    detect_pose: bool = True,
    device: str = "cpu",
) -> SegmentationResult:
    """Segment the garment of ``category`` in ``image``.

    ``pose`` comes from :func:`estimate_pose` on the same image (any size: it is rescaled); when
    omitted and ``detect_pose`` is true it is estimated here. A standard (template) pose or no
    pose at all means "no person": the garment is then found as the salient foreground object
    (mannequin, hanger, flat lay).

    ``backend`` is ``auto`` (the best one whose weights are under ``model_root``: segformer,
    then cloth, then classical), or one of those names; a named backend without its weights
    raises :class:`ModelMissingError`. ``device`` only matters to the segformer backend:
    ``cpu`` (fp32), ``cuda``/``cuda:N`` (fp16) or ``auto``.
    """
    canonical = canonical_category(category)
    rgb = _as_rgb(image)
    if pose is None and detect_pose:
        try:
            pose = estimate_pose(rgb)
        except NoPoseFoundError:
            pose = None
    ctx = Context.build(rgb, pose, hints)
    chosen = _choose_backend(backend, model_root, device)

    labels = chosen.trimap(ctx, canonical)
    labels = _apply_hard_constraints(labels, ctx)
    refined = _grabcut(ctx.work, labels, iterations=GRABCUT_ITERATIONS)
    refined = _clean(refined, labels)
    mask = _upsample(refined, ctx)
    mask = _final_constraints(mask, ctx, hints)
    feathered = feather(mask)
    quality = assess_quality(mask, ctx)
    return SegmentationResult(
        mask=mask,
        feathered=feathered,
        person_mask=ctx.person_full,
        quality=quality,
        category=canonical,
        backend=chosen.name,
    )


def canonical_category(category: str) -> str:
    key = category.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in CATEGORIES:
        raise ValueError(f"unknown garment category {category!r}; expected one of {CATEGORIES}")
    return _CATEGORY_ALIASES.get(key, key)


# --- context -------------------------------------------------------------------------------------


@dataclass
class Context:
    """Everything the backends share, computed once per photo at the working resolution."""

    full: np.ndarray  # RGB uint8, the analysed image
    work: np.ndarray  # RGB uint8, long side WORK_SIDE
    scale: float  # work / full
    pose: PoseResult | None  # at work resolution; None when no person
    person: np.ndarray  # bool, work resolution
    person_full: np.ndarray  # uint8 0/255, full resolution
    head: np.ndarray  # bool, work resolution: face + hair zone (never garment)
    head_full: np.ndarray  # bool, full resolution
    skin: np.ndarray  # float32 0..1 skin likelihood, work resolution
    face_box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 full resolution
    include: np.ndarray | None = None  # bool, work resolution: seller's include hints
    exclude: np.ndarray | None = None  # bool, work resolution: seller's exclude hints

    @property
    def has_person(self) -> bool:
        return self.pose is not None

    @property
    def size(self) -> tuple[int, int]:
        return self.work.shape[1], self.work.shape[0]

    @classmethod
    def build(
        cls, rgb: np.ndarray, pose: PoseResult | None, hints: MaskHints | None = None
    ) -> Context:
        height, width = rgb.shape[:2]
        scale = min(1.0, WORK_SIDE / max(height, width))
        wsize = (max(1, round(width * scale)), max(1, round(height * scale)))
        work = cv2.resize(rgb, wsize, interpolation=cv2.INTER_AREA) if scale < 1 else rgb.copy()
        if pose is not None and not pose.detected:
            pose = None  # a template pose says nothing about this photo
        wpose = pose.scaled(wsize) if pose is not None else None

        if wpose is not None and wpose.person_mask is not None:
            person = wpose.person_mask > 0
        elif wpose is not None:
            person = _selfie_mask(work)
        else:
            person = _foreground_mask(work)
        face_box = _detect_face(rgb, pose.scaled((width, height)) if pose else None)
        head = _head_zone(wsize, wpose, face_box, scale)
        skin = _skin_likelihood(work, wpose, face_box, scale)
        person_full = cv2.resize(person.astype(np.uint8) * 255, (width, height))
        person_full = np.where(person_full >= 128, 255, 0).astype(np.uint8)
        head_full = cv2.resize(head.astype(np.uint8), (width, height)) > 0
        include = exclude = None
        if hints is not None and not hints.is_empty():
            inc, exc = hints.rasterize((width, height))
            include = cv2.resize(inc.astype(np.uint8), wsize, interpolation=cv2.INTER_AREA) > 0
            exclude = cv2.resize(exc.astype(np.uint8), wsize, interpolation=cv2.INTER_AREA) > 0
        return cls(
            full=rgb,
            work=work,
            scale=scale,
            pose=wpose,
            person=person,
            person_full=person_full,
            head=head,
            head_full=head_full,
            skin=skin,
            face_box=face_box,
            include=include,
            exclude=exclude,
        )


def _as_rgb(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("expected an RGB image")
    return np.ascontiguousarray(image, dtype=np.uint8)


_MP_LOCK = threading.Lock()


def _load_face_detector() -> Any:
    import mediapipe as mp

    # model 1 = full range: faces are small in full-body catalogue photos
    return mp.solutions.face_detection.FaceDetection(
        model_selection=1, min_detection_confidence=0.5
    )


def _load_selfie() -> Any:
    import mediapipe as mp

    return mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)


def _detect_face(rgb: np.ndarray, pose: PoseResult | None) -> tuple[int, int, int, int] | None:
    """The face box (full-resolution pixels) of the posed person, or None.

    Street photos often hold other people: with a pose, we take the detection nearest to the
    pose's face keypoints and refuse one that is not on this person's head.
    """
    height, width = rgb.shape[:2]
    small_scale = min(1.0, 640 / max(height, width))
    small = (
        cv2.resize(rgb, (round(width * small_scale), round(height * small_scale)))
        if small_scale < 1
        else rgb
    )
    detector = models.get("mediapipe.face_detection.full", _load_face_detector)
    with _MP_LOCK:
        result = detector.process(small)
    if not result.detections:
        return None
    boxes = []
    for det in result.detections:
        box = det.location_data.relative_bounding_box
        x0, y0 = box.xmin * width, box.ymin * height
        x1, y1 = x0 + box.width * width, y0 + box.height * height
        boxes.append((float(det.score[0]), x0, y0, x1, y1))
    anchor = _face_anchor(pose)
    if anchor is not None:
        centre, reach = anchor

        def distance(b: tuple[float, float, float, float, float]) -> float:
            return float(np.hypot((b[1] + b[3]) / 2 - centre[0], (b[2] + b[4]) / 2 - centre[1]))

        boxes = [b for b in boxes if distance(b) <= reach]
        if not boxes:
            return None
        best = min(boxes, key=distance)
    else:
        best = max(boxes, key=lambda b: b[0])
    _, x0, y0, x1, y1 = best
    return (
        int(max(0, x0)),
        int(max(0, y0)),
        int(min(width, x1)),
        int(min(height, y1)),
    )


def _face_anchor(pose: PoseResult | None) -> tuple[np.ndarray, float] | None:
    """Where the posed person's face is, and how far a face box centre may be from it."""
    if pose is None:
        return None
    pts = [_pt(pose, i) for i in (NOSE, R_EYE, L_EYE, R_EAR, L_EAR)]
    found = [p for p in pts if p is not None]
    if not found:
        return None
    body = _Body.from_pose(pose)
    reach = body.shoulder_width * 0.6 if body else 50.0
    return np.mean(found, axis=0), reach


def _selfie_mask(work: np.ndarray) -> np.ndarray:
    seg = models.get("mediapipe.selfie_segmentation", _load_selfie)
    with _MP_LOCK:
        result = seg.process(work)
    return result.segmentation_mask > 0.5


def _foreground_mask(work: np.ndarray) -> np.ndarray:
    """The main object when no person was found (mannequin, hanger, flat lay).

    The border of a product photo is background. Pixels far (in Lab) from every border colour
    are probably the object; the threshold adapts to the photo (Otsu), because a beige dress on
    a light grey sweep differs from it by only a few units. GrabCut then refines, helped by a
    centre prior (sellers frame the garment in the middle).
    """
    h, w = work.shape[:2]
    border = max(2, round(0.03 * max(h, w)))
    dist = _border_distance(work, border)
    scaled = np.clip(dist * 4, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    threshold = float(np.clip(otsu / 4, 5.0, 18.0))
    # background flood: pixels close to a border colour and connected to the border; a studio
    # sweep is reached everywhere, the garment (edged by its own shading) is not
    near = (dist <= max(3.0, threshold * 0.5)).astype(np.uint8)
    _, comp = cv2.connectedComponents(near, connectivity=4)
    edge_ids = np.unique(
        np.concatenate(
            [
                comp[:border].ravel(),
                comp[-border:].ravel(),
                comp[:, :border].ravel(),
                comp[:, -border:].ravel(),
            ]
        )
    )
    flooded = np.isin(comp, edge_ids[edge_ids > 0])
    likely = dist > threshold
    if _plain_border(work, border):
        # only a plain backdrop floods cleanly; in a room (mannequin photos) the flood leaks
        # through walls and furniture and would call them garment
        likely |= ~flooded
    yy, xx = np.mgrid[0:h, 0:w]
    centre = ((xx - w / 2) / (0.15 * w)) ** 2 + ((yy - h * 0.5) / (0.22 * h)) ** 2 <= 1
    labels = np.full((h, w), PR_BG, np.uint8)
    labels[likely] = PR_FG
    labels[centre & (dist > threshold * 2)] = FG
    labels[:border, :] = BG
    labels[-border:, :] = BG
    labels[:, :border] = BG
    labels[:, -border:] = BG
    if not np.isin(labels, (FG, PR_FG)).any():
        labels[centre] = PR_FG
    out = _grabcut(work, labels, iterations=3)
    return _largest_component(out)


def _plain_border(work: np.ndarray, border: int) -> bool:
    """True for a studio sweep, a wall or a floor: the border's brightness barely varies."""
    grey = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)
    ring = np.concatenate(
        [
            grey[:border].ravel(),
            grey[-border:].ravel(),
            grey[:, :border].ravel(),
            grey[:, -border:].ravel(),
        ]
    )
    low, high = np.percentile(ring, [10, 90])
    return bool(high - low < 60)


def _border_distance(work: np.ndarray, border: int) -> np.ndarray:
    """Per-pixel Lab distance to the nearest of the image border's main colours."""
    lab = cv2.cvtColor(work, cv2.COLOR_RGB2LAB).astype(np.float32)
    ring = np.concatenate(
        [
            lab[:border].reshape(-1, 3),
            lab[-border:].reshape(-1, 3),
            lab[:, :border].reshape(-1, 3),
            lab[:, -border:].reshape(-1, 3),
        ]
    )
    k = min(8, len(ring))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    _, _, centres = cv2.kmeans(ring, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    flat = lab.reshape(-1, 3)
    dist = np.min(np.linalg.norm(flat[:, None, :] - centres[None, :, :], axis=2), axis=1)
    return dist.reshape(work.shape[:2])


# --- geometry helpers ----------------------------------------------------------------------------


def _pt(pose: PoseResult, index: int) -> np.ndarray | None:
    return pose.keypoints[index, :2].astype(np.float32) if pose.has(index) else None


@dataclass
class _Body:
    """Body landmarks at working resolution, with sensible estimates for missing ones."""

    neck: np.ndarray
    hip: np.ndarray  # mid-hip
    shoulders: tuple[np.ndarray, np.ndarray]  # right, left
    hips: tuple[np.ndarray, np.ndarray]
    torso: float  # neck to mid-hip length
    shoulder_width: float

    @classmethod
    def from_pose(cls, pose: PoseResult) -> _Body | None:
        rs, ls = _pt(pose, R_SHOULDER), _pt(pose, L_SHOULDER)
        if rs is None and ls is None:
            return None
        if rs is None or ls is None:
            # side view: one shoulder; assume a narrow body around it
            one = rs if rs is not None else ls
            half = np.array([8.0, 0.0], np.float32)
            rs, ls = one - half, one + half
        sw = float(np.linalg.norm(ls - rs))
        neck = (rs + ls) / 2
        rh, lh = _pt(pose, R_HIP), _pt(pose, L_HIP)
        if rh is None and lh is None:
            # hips outside the frame (close-up): a typical torso is 1.5 shoulder widths long
            down = np.array([0.0, 1.5 * max(sw, 1.0)], np.float32)
            rh, lh = rs + down * 0.95 + (sw * 0.1, 0), ls + down * 0.95 - (sw * 0.1, 0)
        elif rh is None or lh is None:
            one = rh if rh is not None else lh
            half = np.array([sw * 0.3, 0.0], np.float32)
            rh, lh = one - half, one + half
        hip = (rh + lh) / 2
        torso = float(max(np.linalg.norm(hip - neck), 1.0))
        return cls(neck, hip, (rs, ls), (rh, lh), torso, max(sw, torso * 0.4))


def _capsule(mask: np.ndarray, points: Sequence[np.ndarray | None], radius: float) -> None:
    """Draw a thick polyline through the available points (skips missing links)."""
    r = max(1, round(radius))
    for a, b in itertools.pairwise(points):
        if a is None or b is None:
            continue
        cv2.line(mask, _ip(a), _ip(b), 1, thickness=2 * r)
        cv2.circle(mask, _ip(a), r, 1, -1)
        cv2.circle(mask, _ip(b), r, 1, -1)


def _ip(p: np.ndarray) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def _shrink(poly: np.ndarray, factor: float, factor_y: float | None = None) -> np.ndarray:
    centre = poly.mean(axis=0)
    scale = np.array([factor, factor if factor_y is None else factor_y], np.float32)
    return centre + (poly - centre) * scale


def _fill_poly(mask: np.ndarray, poly: np.ndarray) -> None:
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)


# --- head and skin -------------------------------------------------------------------------------


def _head_zone(
    size: tuple[int, int],
    pose: PoseResult | None,
    face_box: tuple[int, int, int, int] | None,
    scale: float,
) -> np.ndarray:
    """Face and hair: an ellipse around the face keypoints and the detected face box."""
    width, height = size
    zone = np.zeros((height, width), np.uint8)
    if face_box is not None:
        x0, y0, x1, y1 = (v * scale for v in face_box)
        fw, fh = x1 - x0, y1 - y0
        centre = ((x0 + x1) / 2, y0 + fh * 0.45)
        axes = (fw * 0.75, fh * 0.95)
        cv2.ellipse(zone, _ip(np.array(centre)), _ip(np.array(axes)), 0, 0, 360, 1, -1)
    if pose is not None:
        face_pts = [_pt(pose, i) for i in (NOSE, R_EYE, L_EYE, R_EAR, L_EAR)]
        pts = np.array([p for p in face_pts if p is not None])
        if len(pts) >= 2:
            centre = pts.mean(axis=0)
            spread = float(np.ptp(pts[:, 0])) if len(pts) > 2 else 0.0
            body = _Body.from_pose(pose)
            ref = body.shoulder_width * 0.32 if body else spread
            r = max(spread * 0.75, ref, 4.0)
            # the head ellipse is taller than wide and extends up for hair
            cv2.ellipse(
                zone,
                _ip(centre - (0, r * 0.35)),
                _ip(np.array((r * 1.05, r * 1.4))),
                0,
                0,
                360,
                1,
                -1,
            )
    return zone > 0


def _skin_likelihood(
    work: np.ndarray,
    pose: PoseResult | None,
    face_box: tuple[int, int, int, int] | None,
    scale: float,
) -> np.ndarray:
    """Per-pixel skin likelihood from a colour model sampled on the face (YCrCb).

    Sampling the seller's model's own face adapts to every skin tone; a generic skin range
    is the fallback when no face is visible (back view, cropped head).
    """
    ycc = cv2.cvtColor(work, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    sample = _face_sample(ycc, pose, face_box, scale)
    crcb = ycc[..., 1:]
    if sample is not None and len(sample) >= 20:
        mean = np.median(sample[:, 1:], axis=0)
        cov = np.cov(sample[:, 1:].T) + np.eye(2) * 6.0
        inv = np.linalg.inv(cov)
        d = crcb - mean
        d2 = np.einsum("...i,ij,...j->...", d, inv, d)
        like = np.exp(-0.5 * d2 / 2.0)  # widened: arms are lit differently from the face
        y_ref = float(np.median(sample[:, 0]))
        lum = ycc[..., 0]
        like *= ((lum > y_ref * 0.35) & (lum < min(255.0, y_ref * 1.6 + 20))).astype(np.float32)
    else:
        cr, cb = crcb[..., 0], crcb[..., 1]
        like = ((cr > 135) & (cr < 175) & (cb > 80) & (cb < 130)).astype(np.float32) * 0.8
    return like.astype(np.float32)


def _face_sample(
    ycc: np.ndarray,
    pose: PoseResult | None,
    face_box: tuple[int, int, int, int] | None,
    scale: float,
) -> np.ndarray | None:
    h, w = ycc.shape[:2]
    if face_box is not None:
        x0, y0, x1, y1 = (v * scale for v in face_box)
        cx, cy = (x0 + x1) / 2, y0 + (y1 - y0) * 0.6
        rx, ry = (x1 - x0) * 0.22, (y1 - y0) * 0.18
    elif pose is not None and pose.has(NOSE) and pose.has(R_EYE) and pose.has(L_EYE):
        nose, re, le = _pt(pose, NOSE), _pt(pose, R_EYE), _pt(pose, L_EYE)
        eye_d = float(np.linalg.norm(le - re))
        cx, cy = float(nose[0]), float(nose[1]) + eye_d * 0.1
        rx, ry = eye_d * 0.5, eye_d * 0.35
    else:
        return None
    xa, xb = int(max(0, cx - rx)), int(min(w, cx + rx + 1))
    ya, yb = int(max(0, cy - ry)), int(min(h, cy + ry + 1))
    if xb - xa < 2 or yb - ya < 2:
        return None
    return ycc[ya:yb, xa:xb].reshape(-1, 3)


# --- backends ------------------------------------------------------------------------------------


class ClassicalBackend:
    """Pose geometry + person mask + skin/face exclusion + colour models. No weights needed."""

    name = "classical"

    def available(self) -> bool:
        return True

    def trimap(self, ctx: Context, category: str) -> np.ndarray:
        if ctx.pose is None:
            return _object_trimap(ctx)
        body = _Body.from_pose(ctx.pose)
        if body is None:
            return _object_trimap(ctx)
        return _pose_trimap(ctx, body, category)


def _object_trimap(ctx: Context) -> np.ndarray:
    """No person: the whole foreground object is the garment."""
    labels = np.where(ctx.person, PR_FG, BG).astype(np.uint8)
    core = cv2.erode(ctx.person.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    labels[core] = FG
    return labels


def _limb_masks(ctx: Context, body: _Body) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arm capsules, leg capsules, and hand/foot zones (bool)."""
    h, w = ctx.work.shape[:2]
    pose = ctx.pose
    assert pose is not None
    arms = np.zeros((h, w), np.uint8)
    legs = np.zeros((h, w), np.uint8)
    ends = np.zeros((h, w), np.uint8)
    sw = body.shoulder_width
    rs, ls = body.shoulders
    rh, lh = body.hips
    for sh, el, wr in (
        (rs, _pt(pose, R_ELBOW), _pt(pose, R_WRIST)),
        (ls, _pt(pose, L_ELBOW), _pt(pose, L_WRIST)),
    ):
        _capsule(arms, [sh, el, wr], sw * 0.16)
        if wr is not None:
            # the hand extends past the wrist, along the forearm
            hand = wr + (wr - el) * 0.3 if el is not None else wr
            _capsule(ends, [wr + (hand - wr) * 0.3, hand], sw * 0.14)
    for hp, kn, an in (
        (rh, _pt(pose, R_KNEE), _pt(pose, R_ANKLE)),
        (lh, _pt(pose, L_KNEE), _pt(pose, L_ANKLE)),
    ):
        _capsule(legs, [hp, kn, an], sw * 0.17)
        if an is not None:
            down = np.array([0, body.torso * 0.12], np.float32)
            _capsule(ends, [an + down * 0.4, an + down], sw * 0.18)
    return arms > 0, legs > 0, ends > 0


def _relative_rows(h: int, body: _Body) -> np.ndarray:
    """Row position in torso units: 0 at the shoulder line, 1 at the hips (column vector)."""
    yy = np.arange(h, dtype=np.float32)[:, None]
    return (yy - float(body.neck[1])) / body.torso


def _ankle_level(pose: PoseResult, body: _Body) -> float:
    ys = [p[1] for p in (_pt(pose, R_ANKLE), _pt(pose, L_ANKLE)) if p is not None]
    if not ys:
        knees = [p[1] for p in (_pt(pose, R_KNEE), _pt(pose, L_KNEE)) if p is not None]
        if knees:
            return (max(knees) - float(body.neck[1])) / body.torso + 0.95
        return 2.9  # typical adult: ankles ~2.9 torso lengths below the shoulders
    return (max(ys) - float(body.neck[1])) / body.torso


def _band_prior(category: str, rel: np.ndarray, ankle: float) -> np.ndarray:
    """Log-odds that a row holds this category, from where garments sit on a body."""

    def ramp(x: np.ndarray, x0: float, x1: float, v0: float, v1: float) -> np.ndarray:
        t = np.clip((x - x0) / (x1 - x0), 0.0, 1.0)
        return v0 + (v1 - v0) * t

    above_neck = ramp(rel, -0.3, -0.05, -4.0, 0.0)  # collars reach a little above the shoulders
    below_feet = ramp(rel, ankle - 0.05, ankle + 0.15, 0.0, -4.0)
    if category == "top":
        body = ramp(rel, 0.85, 1.45, 1.0, -4.0)
    elif category == "bottom":
        body = ramp(rel, 0.55, 0.95, -4.0, 1.0)
        above_neck = np.zeros_like(rel)
    elif category == "dress":
        body = ramp(rel, ankle - 0.3, ankle, 0.8, 0.2)
    else:
        body = np.ones_like(rel)
    return (body + above_neck + below_feet).astype(np.float32)


_BINS = 16
#: uniform share mixed into both colour histograms: a colour seen in neither seed set then
#: scores ~0 and the body prior decides (instead of noise in near-empty bins)
_FLOOR = 0.5
#: the torso seed's width relative to the shoulder-hip quadrilateral: narrow, so that an open
#: jacket's fronts stay outside the seed of the top worn under it
_CORE_X = 0.45
#: colour-model rounds: each re-learns from the pixels the previous round accepted
_ROUNDS = 2
#: GrabCut may only move the outline by this many working pixels
_BAND = 2


def _quantise(rgb: np.ndarray) -> np.ndarray:
    q = (rgb // (256 // _BINS)).astype(np.int32)
    return (q[..., 0] * _BINS + q[..., 1]) * _BINS + q[..., 2]


def _colour_log_ratio(index: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """log p(colour | garment) - log p(colour | not garment), from seed histograms."""
    from scipy.ndimage import gaussian_filter

    def density(sel: np.ndarray) -> np.ndarray:
        hist = np.bincount(index[sel], minlength=_BINS**3).astype(np.float32)
        hist = gaussian_filter(hist.reshape(_BINS, _BINS, _BINS), sigma=0.8).ravel()
        floor = _FLOOR * max(hist.sum(), 1.0) / hist.size
        return (hist + floor + 1e-3) / (hist.sum() + (floor + 1e-3) * hist.size)

    ratio = np.log(density(fg)) - np.log(density(bg))
    return np.clip(ratio[index], -5.0, 5.0).astype(np.float32)


def _dilate(mask: np.ndarray, size: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((size, size), np.uint8)) > 0


def _pose_trimap(ctx: Context, body: _Body, category: str) -> np.ndarray:
    """Garment labels for a posed person.

    Seeds: the category's core (torso for tops/dresses, thighs for bottoms) is garment; the
    head, skin on limbs, hands and the *other* garment's core are not. Colour histograms learnt
    from those seeds (inside the person only) plus a row prior (where this category sits on a
    body) score every person pixel; two rounds re-learn from what was accepted, keeping only
    regions connected to the core. GrabCut then only polishes the outline.
    """
    h, w = ctx.work.shape[:2]
    pose = ctx.pose
    assert pose is not None
    person = ctx.person
    ring = _dilate(person, 9) & ~_dilate(person, 3)
    arms, legs, ends = _limb_masks(ctx, body)
    rel = _relative_rows(h, body)
    ankle = _ankle_level(pose, body)

    core = _category_seeds(ctx, body, category) & person & ~ctx.head
    skin = (ctx.skin > 0.5) & person
    # a skin-coloured garment (beige, nude, pink): skin colour says nothing on the torso then
    skin_like_garment = core.any() and skin[core].mean() > 0.4
    if not skin_like_garment:
        core &= ~skin
    rel_full = np.broadcast_to(rel, (h, w))
    distal = ends | (arms & (rel_full > 0.35)) | (legs & (rel_full > 1.6))
    skin_bg = skin & (distal | (rel_full < 0.35)) if skin_like_garment else skin

    feet = ends & (rel_full > 1.5)
    bg_seed = ring | ctx.head | skin_bg | (ends & ~feet) | (feet & skin)
    for other in _category_bg_seeds(ctx, body, category):
        bg_seed |= other & person
    bg_seed &= ~core
    if ctx.include is not None:
        core |= ctx.include
        bg_seed &= ~ctx.include
    if ctx.exclude is not None:
        bg_seed |= ctx.exclude
        core &= ~ctx.exclude

    index = _quantise(ctx.work)
    prior = np.broadcast_to(_band_prior(category, rel, ankle), (h, w))
    inside = _dilate(person, 3)
    in_bg = bg_seed & inside & ~ring
    fg_now = core.copy()
    # background outside the person is left out of the colour model on purpose: the person
    # mask already separates it, and street colours (white cars, grey walls) would otherwise
    # vote against garment pixels of the same colour
    bg_now = in_bg
    for _ in range(_ROUNDS):
        if fg_now.sum() >= 20 and bg_now.sum() >= 20:
            colour = _colour_log_ratio(index, fg_now, bg_now)
        else:
            colour = np.zeros((h, w), np.float32)
        score = cv2.GaussianBlur(colour + prior, (0, 0), 1.0)
        grown = inside & (score > 0) & ~bg_seed | core
        grown = _connected_to(grown, core)
        fg_now = grown
        bg_now = (inside & ~grown) | in_bg

    return _boundary_trimap(fg_now, core, bg_seed, _BAND)


def _boundary_trimap(
    fg: np.ndarray, core: np.ndarray, bg_seed: np.ndarray, band: int
) -> np.ndarray:
    """GrabCut labels that only let pixels near the current outline change.

    GrabCut re-learns its colour models from the whole image, which drags garment pixels that
    resemble the street background out of the mask; confining it to a thin band around the
    outline keeps the body decisions and still snaps the edge to the photo's contours.
    """
    k = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    sure_fg = cv2.erode(fg.astype(np.uint8), k) > 0
    maybe = cv2.dilate(fg.astype(np.uint8), k) > 0
    labels = np.full(fg.shape, BG, np.uint8)
    labels[maybe] = PR_BG
    labels[fg] = PR_FG
    labels[sure_fg] = FG
    labels[bg_seed & ~core] = BG
    labels[core] = FG
    return labels


def _connected_to(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    count, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    keep = np.zeros(count, bool)
    keep[np.unique(comp[seeds & mask])] = True
    keep[0] = False
    return keep[comp]


def _category_seeds(ctx: Context, body: _Body, category: str) -> np.ndarray:
    """Definite garment pixels: torso core for tops/dresses, thigh cores for bottoms."""
    h, w = ctx.work.shape[:2]
    pose = ctx.pose
    assert pose is not None
    seeds = np.zeros((h, w), np.uint8)
    rs, ls = body.shoulders
    rh, lh = body.hips
    t = body.torso
    down = np.array([0.0, t], np.float32)
    if category in ("top", "dress", "full_outfit"):
        # torso core: between shoulders and hips, inset so it stays on the garment
        upper_r, upper_l = rs + down * 0.2, ls + down * 0.2
        lower_r, lower_l = rh - down * 0.1, lh - down * 0.1
        core = _shrink(np.array([upper_r, upper_l, lower_l, lower_r]), _CORE_X, 0.6)
        _fill_poly(seeds, core)
    if category in ("dress", "full_outfit"):
        # the pelvis area is covered by a dress, skirt or trousers
        pelvis = _shrink(np.array([rh, lh, lh + down * 0.3, rh + down * 0.3]), 0.6)
        _fill_poly(seeds, pelvis)
    if category in ("bottom", "full_outfit"):
        for hp, kn in ((rh, _pt(pose, R_KNEE)), (lh, _pt(pose, L_KNEE))):
            if kn is None:
                kn = hp + down * 0.9
            _capsule(
                seeds, [hp + (kn - hp) * 0.1, hp + (kn - hp) * 0.55], body.shoulder_width * 0.07
            )
        pelvis = _shrink(np.array([rh, lh, lh + down * 0.2, rh + down * 0.2]), 0.6)
        _fill_poly(seeds, pelvis)
    return seeds > 0


def _category_bg_seeds(ctx: Context, body: _Body, category: str) -> list[np.ndarray]:
    """Definite non-garment pixels that depend on the category (the other garment's core)."""
    h, w = ctx.work.shape[:2]
    pose = ctx.pose
    assert pose is not None
    rs, ls = body.shoulders
    rh, lh = body.hips
    t = body.torso
    down = np.array([0.0, t], np.float32)
    out: list[np.ndarray] = []
    if category == "top":
        lower = np.zeros((h, w), np.uint8)
        for hp, kn in ((rh, _pt(pose, R_KNEE)), (lh, _pt(pose, L_KNEE))):
            if kn is None:
                continue
            _capsule(lower, [hp + (kn - hp) * 0.6, kn], body.shoulder_width * 0.08)
        out.append(lower > 0)
    if category == "bottom":
        upper = np.zeros((h, w), np.uint8)
        box = np.array([rs + down * 0.15, ls + down * 0.15, ls + down * 0.5, rs + down * 0.5])
        _fill_poly(upper, _shrink(box, 0.6))
        out.append(upper > 0)
    return out


class ClothModelBackend:
    """U2-Net cloth parsing (rembg's ``u2net_cloth_seg``: background/upper/lower/full body).

    We run the ONNX file with onnxruntime and rembg's exact preprocessing instead of going
    through ``rembg.new_session``: rembg's import compiles numba code for ~50 s, and its session
    would try to re-download the file when the checksum differs. The weights file is
    ``<model_root>/segmentation/u2net_cloth_seg.onnx``.
    """

    name = "cloth"
    #: output channels of u2net_cloth_seg
    _CLASSES = {"top": (1,), "bottom": (2,), "dress": (3,), "full_outfit": (1, 2, 3)}

    def __init__(self, model_root: Path | None) -> None:
        self.path = Path(model_root) / CLOTH_MODEL_FILE if model_root else None

    def available(self) -> bool:
        return self.path is not None and self.path.is_file()

    def _session(self) -> Any:
        if not self.available():
            raise ModelMissingError(
                "The garment segmentation model is missing: expected "
                f"{self.path or CLOTH_MODEL_FILE} under the model root. Install it, or use the "
                "classical backend."
            )
        path = self.path
        assert path is not None

        def load() -> Any:
            import onnxruntime as ort

            return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

        return models.get(f"onnx:{path}", load)

    def class_map(self, work: np.ndarray) -> np.ndarray:
        """Per-pixel class (0 background, 1 upper, 2 lower, 3 full body) at work resolution."""
        session = self._session()
        inp = session.get_inputs()[0]
        side = 768
        resized = cv2.resize(work, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        resized /= max(float(resized.max()), 1e-6)
        mean = np.array((0.485, 0.456, 0.406), np.float32)
        std = np.array((0.229, 0.224, 0.225), np.float32)
        tensor = ((resized - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
        logits = session.run(None, {inp.name: tensor})[0][0]  # (C, side, side)
        classes = np.argmax(logits, axis=0).astype(np.uint8)
        h, w = work.shape[:2]
        return cv2.resize(classes, (w, h), interpolation=cv2.INTER_NEAREST)

    def trimap(self, ctx: Context, category: str) -> np.ndarray:
        classes = self.class_map(ctx.work)
        hit = np.isin(classes, self._CLASSES[category]).astype(np.uint8)
        if category == "dress":
            # a dress the model reads as top + skirt is still one garment
            hit |= np.isin(classes, (1, 2)).astype(np.uint8) & ctx.person.astype(np.uint8)
        labels = np.where(hit > 0, PR_FG, PR_BG).astype(np.uint8)
        core = cv2.erode(hit, np.ones((7, 7), np.uint8)) > 0
        far = cv2.dilate(hit, np.ones((9, 9), np.uint8)) == 0
        labels[core] = FG
        labels[far] = BG
        return labels


# --- segformer: learned human / clothes parsing --------------------------------------------------


def _label_key(name: object) -> str:
    """A label name reduced to lower-case letters and digits: "Upper-clothes" -> "upperclothes"."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


# Parser label names by role, as reduced by ``_label_key``. ATR (mattmdjaga/segformer_b2_clothes:
# Background, Hat, Hair, Sunglasses, Upper-clothes, Skirt, Pants, Dress, Belt, Left-shoe,
# Right-shoe, Face, Left-leg, Right-leg, Left-arm, Right-arm, Bag, Scarf), LIP and CIHP (which add
# Coat, Jumpsuits, Glove, Socks, Torso-skin) spell them differently; anything else (hat, shoes,
# socks, glove, bag, background) is never garment but not forced out either.
_UPPER_NAMES = frozenset(
    {"upperclothes", "upperclothing", "uppercloth", "top", "tops", "shirt", "tshirt", "blouse"}
)
_COAT_NAMES = frozenset({"coat", "coats", "jacket", "outerwear"})
_ONE_PIECE_NAMES = frozenset({"dress", "dresses", "jumpsuit", "jumpsuits", "romper"})
_SKIRT_NAMES = frozenset({"skirt", "skirts"})
_PANTS_NAMES = frozenset({"pants", "trousers", "shorts", "jeans", "leggings", "lowerclothes"})
#: clothing that is part of a full outfit (a saree's drape, a kurta set's belt) but of no
#: single-garment category
_OUTFIT_EXTRA_NAMES = frozenset({"belt", "scarf"})
#: definite background; the head labels also join the context's head zone, so they are removed
#: again at full resolution after refinement
_HEAD_NAMES = frozenset({"face", "hair", "head", "sunglasses", "glasses", "eyeglasses"})
_SKIN_NAMES = frozenset(
    {
        "leftarm", "rightarm", "arm", "arms", "lefthand", "righthand", "hand", "hands",
        "leftleg", "rightleg", "leg", "legs", "leftfoot", "rightfoot", "foot", "feet",
        "torsoskin", "skin", "neck",
    }
)  # fmt: skip

#: p(garment) at or above which a pixel is definite garment (after a 2 px erosion)
_P_SURE = 0.85
#: ... probable garment
_P_HIT = 0.5
#: ... probable background (GrabCut may still take it); below it, definite background unless
#: it lies within 3 px of the probable garment
_P_DOUBT = 0.2
#: dress: when the parser's Dress covers less than this share of Dress + Upper-clothes + Skirt,
#: the seller's one-piece was read as a top and a skirt
_ONE_PIECE_SHARE = 0.25


@dataclass(frozen=True)
class ParsingLabels:
    """Which output channels of a human parser play which role, found by label name."""

    names: tuple[str, ...]
    upper: tuple[int, ...]
    coat: tuple[int, ...]
    one_piece: tuple[int, ...]
    skirt: tuple[int, ...]
    pants: tuple[int, ...]
    outfit_extra: tuple[int, ...]
    head: tuple[int, ...]
    skin: tuple[int, ...]

    @classmethod
    def from_id2label(cls, id2label: dict[Any, str]) -> ParsingLabels:
        count = max(int(k) for k in id2label) + 1
        names = [""] * count
        for key, value in id2label.items():
            names[int(key)] = str(value)

        def ids(group: frozenset[str]) -> tuple[int, ...]:
            return tuple(i for i, n in enumerate(names) if _label_key(n) in group)

        labels = cls(
            names=tuple(names),
            upper=ids(_UPPER_NAMES),
            coat=ids(_COAT_NAMES),
            one_piece=ids(_ONE_PIECE_NAMES),
            skirt=ids(_SKIRT_NAMES),
            pants=ids(_PANTS_NAMES),
            outfit_extra=ids(_OUTFIT_EXTRA_NAMES),
            head=ids(_HEAD_NAMES),
            skin=ids(_SKIN_NAMES),
        )
        if not (labels.upper or labels.one_piece or labels.skirt or labels.pants):
            raise InferenceError(
                "The clothes-parsing model's labels ("
                + ", ".join(names)
                + ") name no garment we know (Upper-clothes, Dress, Skirt, Pants, Coat, "
                "Jumpsuits...): it is not a human/clothes parser."
            )
        return labels

    @property
    def clothing(self) -> tuple[int, ...]:
        return self.upper + self.coat + self.one_piece + self.skirt + self.pants + self.outfit_extra

    @property
    def never(self) -> tuple[int, ...]:
        return self.head + self.skin

    def targets(self, category: str, *, top_includes_coat: bool = True) -> tuple[int, ...]:
        """The labels that are the garment of a canonical ``category``."""
        if category == "top":
            return self.upper + (self.coat if top_includes_coat else ())
        if category == "bottom":
            return self.skirt + self.pants
        if category == "dress":
            return self.one_piece
        if category == "full_outfit":
            return self.clothing
        raise ValueError(f"unknown canonical garment category {category!r}")


def _prob_sum(probs: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    if not ids:
        return np.zeros(probs.shape[1:], np.float32)
    return probs[list(ids)].sum(axis=0)


def parsing_trimap(
    probs: np.ndarray,
    labels: ParsingLabels,
    category: str,
    *,
    top_includes_coat: bool = True,
) -> np.ndarray:
    """GrabCut labels from a parser's per-class probabilities (C x H x W, summing to 1).

    - p(garment) is the category's labels summed: from ``_P_SURE`` (2 px inside) it is definite
      garment, from ``_P_HIT`` probable garment, from ``_P_DOUBT`` or within 3 px of the
      probable garment probable background, elsewhere definite background;
    - face, hair and skin (arms, legs, hands, torso skin) are definite background wherever they
      hold half the probability or more;
    - dress: when the parser found (almost) no Dress/Jumpsuits but Upper-clothes and/or Skirt,
      that is how it read the seller's one-piece, and they are the dress. When it did find a
      Dress, Upper-clothes/Skirt regions touching it are probable garment: a bodice or a panel
      read apart keeps the dress's colours and stays; a jacket over the dress usually does not
      and GrabCut drops it.
    """
    garment = _prob_sum(probs, labels.targets(category, top_includes_coat=top_includes_coat))
    secondary = np.zeros(garment.shape, bool)
    parts = labels.upper + labels.skirt
    if category == "dress" and parts:
        winner = probs.argmax(axis=0)
        dress_area = np.isin(winner, labels.one_piece)
        parts_area = np.isin(winner, parts)
        n_dress, n_parts = int(dress_area.sum()), int(parts_area.sum())
        if n_parts and n_dress < _ONE_PIECE_SHARE * (n_dress + n_parts):
            garment = garment + _prob_sum(probs, parts)
        elif n_dress and n_parts:
            secondary = _connected_to(dress_area | parts_area, dress_area) & parts_area
    never = _prob_sum(probs, labels.never) >= 0.5

    hit = garment >= _P_HIT
    sure = cv2.erode((garment >= _P_SURE).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    near = _dilate(hit | secondary, 7) | (garment >= _P_DOUBT)
    out = np.full(garment.shape, BG, np.uint8)
    out[near] = PR_BG
    out[hit | secondary] = PR_FG
    out[sure] = FG
    out[never] = BG
    return out


@dataclass
class _Preprocessing:
    """What SegformerImageProcessor would do, from preprocessor_config.json, with PIL + numpy.

    The image-processor classes are not used: some transformers versions route them through
    torchvision, which this project must not install.
    """

    size: tuple[int, int] | None  # (width, height); None: keep the aspect ratio
    shortest_edge: int | None
    resample: Image.Resampling
    rescale: float | None
    mean: np.ndarray | None
    std: np.ndarray | None

    @classmethod
    def from_folder(cls, folder: Path) -> _Preprocessing:
        path = folder / "preprocessor_config.json"
        cfg: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        size: tuple[int, int] | None = (512, 512)
        shortest: int | None = None
        raw = cfg.get("size", {"height": 512, "width": 512})
        if not cfg.get("do_resize", True):
            size = None
        elif isinstance(raw, int | float):
            size = (int(raw), int(raw))
        elif "height" in raw and "width" in raw:
            size = (int(raw["width"]), int(raw["height"]))
        elif "shortest_edge" in raw:
            size, shortest = None, int(raw["shortest_edge"])
        rescale = float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else None
        mean = std = None
        if cfg.get("do_normalize", True):
            mean = np.broadcast_to(
                np.asarray(cfg.get("image_mean", (0.485, 0.456, 0.406)), np.float32), (3,)
            )
            std = np.broadcast_to(
                np.asarray(cfg.get("image_std", (0.229, 0.224, 0.225)), np.float32), (3,)
            )
        resample = Image.Resampling(int(cfg.get("resample", Image.Resampling.BILINEAR)))
        return cls(size, shortest, resample, rescale, mean, std)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 HxWx3 -> float32 1x3xH'xW' model input."""
        img = Image.fromarray(rgb)
        target = self.size
        if target is None and self.shortest_edge:
            scale = self.shortest_edge / min(img.size)
            target = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        if target is not None and target != img.size:
            img = img.resize(target, resample=self.resample)
        arr = np.asarray(img, np.float32)
        if self.rescale is not None:
            arr = arr * self.rescale
        if self.mean is not None and self.std is not None:
            arr = (arr - self.mean) / self.std
        return np.ascontiguousarray(arr.transpose(2, 0, 1)[None], dtype=np.float32)


@dataclass
class LoadedParser:
    """A loaded SegFormer parser: model on its device, label roles, preprocessing."""

    model: Any
    labels: ParsingLabels
    preprocess: _Preprocessing
    device: str
    dtype: Any

    def probabilities(self, rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Per-class probabilities (C x height x width, float32) for ``rgb`` at ``size`` (w, h).

        The logits (a quarter of the input resolution) are upsampled bilinearly, in fp32 even
        when the model runs in fp16, then soft-maxed.
        """
        import torch
        import torch.nn.functional as F

        pixels = torch.from_numpy(self.preprocess(rgb)).to(device=self.device, dtype=self.dtype)
        with torch.inference_mode():
            logits = self.model(pixel_values=pixels).logits.float()
            logits = F.interpolate(
                logits, size=(size[1], size[0]), mode="bilinear", align_corners=False
            )
            probs = torch.softmax(logits, dim=1)[0]
        return probs.cpu().numpy().astype(np.float32, copy=False)


class SegformerBackend:
    """A SegFormer human/clothes parser (transformers ``SegformerForSemanticSegmentation``).

    Weights: ``<model_root>/segmentation/segformer-clothes/``, a ``save_pretrained`` folder
    (config.json with ``id2label``, model.safetensors, preprocessor_config.json), e.g.
    ``mattmdjaga/segformer_b2_clothes`` (ATR labels) or a LIP/CIHP parser. Labels are matched to
    our categories by name (:class:`ParsingLabels`), so any of those label sets works.

    Runs on ``device`` (``cpu`` in fp32; ``cuda``/``cuda:N`` in fp16; ``auto``), loaded once per
    process and device through ``cache.models``. Its trimap keeps the shared pipeline: seller
    hints still override it and GrabCut still snaps the outline to the photo. The parser's own
    face, hair and sunglasses are added to the context's head zone, so they stay out of the final
    mask even where the face detector missed them (seller include hints still win there).
    """

    name = "segformer"

    def __init__(
        self,
        model_root: Path | str | None,
        *,
        device: str = "cpu",
        top_includes_coat: bool = True,
    ) -> None:
        self.folder = Path(model_root) / SEGFORMER_DIR if model_root else None
        self.device = device
        #: a "top" is the outermost upper garment: Coat (LIP/CIHP) counts as top
        self.top_includes_coat = top_includes_coat

    def available(self) -> bool:
        return (
            self.folder is not None
            and (self.folder / "config.json").is_file()
            and (self.folder / "model.safetensors").is_file()
        )

    def missing_error(self) -> ModelMissingError:
        where = self.folder if self.folder is not None else f"<model root>/{SEGFORMER_DIR}"
        return ModelMissingError(
            f"The clothes-parsing model (segformer) is missing: expected the folder {where} "
            "holding config.json, model.safetensors and preprocessor_config.json. Install it "
            f"with `{SEGFORMER_INSTALL_COMMAND}`, or choose another segmentation backend "
            "(auto, cloth, classical)."
        )

    def cache_key(self) -> str:
        """The key of the loaded model in ``cache.models`` (one per folder and device)."""
        from .registry import resolve_device

        if self.folder is None:
            raise self.missing_error()
        device, _ = resolve_device(self.device)
        return f"segformer:{self.folder.resolve()}:{device}"

    def load(self) -> LoadedParser:
        """The parser, loaded on the first call in this process (per folder and device)."""
        if not self.available():
            raise self.missing_error()
        from .registry import resolve_device

        folder = self.folder
        assert folder is not None
        key = self.cache_key()
        device, dtype = resolve_device(self.device)

        def loader() -> LoadedParser:
            from safetensors import SafetensorError
            from transformers import SegformerForSemanticSegmentation

            def broken(reason: str) -> ModelMissingError:
                return ModelMissingError(
                    f"The clothes-parsing model in {folder} could not be loaded ({reason}). "
                    f"Reinstall it with `{SEGFORMER_INSTALL_COMMAND}`."
                )

            try:
                model, info = SegformerForSemanticSegmentation.from_pretrained(
                    str(folder), local_files_only=True, dtype=dtype, output_loading_info=True
                )
            except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
                raise broken(str(exc)) from exc
            # transformers fills weights absent from the file with random values and only warns:
            # a truncated or mismatched checkpoint would give confident nonsense
            missing = sorted(info.get("missing_keys") or ())
            if missing:
                raise broken(
                    f"{len(missing)} weights missing from model.safetensors: {missing[:3]}"
                )
            if info.get("mismatched_keys"):
                raise broken(f"weights of the wrong shape: {sorted(info['mismatched_keys'])[:3]}")
            model.to(device).eval()
            return LoadedParser(
                model=model,
                labels=ParsingLabels.from_id2label(model.config.id2label),
                preprocess=_Preprocessing.from_folder(folder),
                device=device,
                dtype=dtype,
            )

        return models.get(key, loader)

    def trimap(self, ctx: Context, category: str) -> np.ndarray:
        parser = self.load()
        # the model sees the full-resolution photo (resized to its input size), not ctx.work
        probs = parser.probabilities(ctx.full, ctx.size)
        if parser.labels.head:
            head = _prob_sum(probs, parser.labels.head)
            ctx.head = ctx.head | (head >= 0.5)
            height, width = ctx.full.shape[:2]
            head_full = cv2.resize(head, (width, height), interpolation=cv2.INTER_LINEAR)
            ctx.head_full = ctx.head_full | (head_full >= 0.5)
        return parsing_trimap(
            probs, parser.labels, category, top_includes_coat=self.top_includes_coat
        )


# --- backend choice ------------------------------------------------------------------------------

_SEGFORMER_NAMES = ("segformer", "segformer-clothes", "segformer_clothes")


def available_backends(model_root: Path | None = None) -> list[str]:
    """Backends whose weights are present, best first (``auto`` takes the first)."""
    names = ["classical"]
    if ClothModelBackend(model_root).available():
        names.insert(0, "cloth")
    if SegformerBackend(model_root).available():
        names.insert(0, "segformer")
    return names


def _choose_backend(name: str, model_root: Path | None, device: str = "cpu") -> MaskBackend:
    if name == "auto":
        segformer = SegformerBackend(model_root, device=device)
        if segformer.available():
            return segformer
        cloth = ClothModelBackend(model_root)
        return cloth if cloth.available() else ClassicalBackend()
    if name == "classical":
        return ClassicalBackend()
    if name in ("cloth", "rembg", "u2net_cloth_seg"):
        cloth = ClothModelBackend(model_root)
        cloth._session()  # raises ModelMissingError with the expected path
        return cloth
    if name in _SEGFORMER_NAMES:
        segformer = SegformerBackend(model_root, device=device)
        if not segformer.available():
            raise segformer.missing_error()
        return segformer
    raise ValueError(f"unknown segmentation backend {name!r}")


# --- constraints and refinement ------------------------------------------------------------------


def _apply_hard_constraints(labels: np.ndarray, ctx: Context) -> np.ndarray:
    """Face/hair is never garment; seller hints are definite, whatever the backend said."""
    labels = labels.copy()
    labels[ctx.head] = BG
    if ctx.include is not None:
        labels[ctx.include] = FG
    if ctx.exclude is not None:
        labels[ctx.exclude] = BG
    return labels


def _full_size(ctx: Context) -> tuple[int, int]:
    return ctx.full.shape[1], ctx.full.shape[0]


def _grabcut(work: np.ndarray, labels: np.ndarray, iterations: int = 2) -> np.ndarray:
    """GrabCut from a label map; returns the refined label map (BG/FG/PR_*)."""
    mask = labels.copy()
    fg_like = np.isin(mask, (FG, PR_FG))
    bg_like = np.isin(mask, (BG, PR_BG))
    if fg_like.sum() < 10 or bg_like.sum() < 10:
        return mask  # GrabCut needs samples of both; nothing to refine
    bgr = cv2.cvtColor(work, cv2.COLOR_RGB2BGR)
    prior = int(fg_like.sum())
    # GrabCut seeds its colour models (k-means) from OpenCV's global RNG, so the same photo gave
    # different masks depending on what ran before in the process, and about 1 state in 8
    # collapsed a product shot to ~1% of its garment. A fixed seed makes masks reproducible; a
    # collapse (the garment shrinks to a sliver of what the backend proposed) retries with the
    # next seed. A collapse under every seed is real (a blank photo has no garment) and is kept.
    refined = mask
    for seed in _GRABCUT_SEEDS:
        cv2.setRNGSeed(seed)
        refined = labels.copy()
        bgd = np.zeros((1, 65), np.float64)
        fgd = np.zeros((1, 65), np.float64)
        cv2.grabCut(bgr, refined, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        if np.isin(refined, (FG, PR_FG)).sum() >= _GRABCUT_COLLAPSE * prior:
            return refined
    return refined


def _clean(refined: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Binary garment (bool): keep components holding definite seeds, fill small holes."""
    fg = np.isin(refined, (FG, PR_FG)).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, comp, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if count <= 1:
        return fg > 0
    seeded = np.unique(comp[(seeds == FG) & (fg > 0)])
    areas = stats[1:, cv2.CC_STAT_AREA]
    biggest = areas.max()
    keep = np.zeros(count, bool)
    for i in range(1, count):
        if i in seeded or stats[i, cv2.CC_STAT_AREA] >= 0.2 * biggest:
            keep[i] = True
    fg = keep[comp]
    return _fill_small_holes(fg, max_fraction=0.01)


def _fill_small_holes(mask: np.ndarray, max_fraction: float) -> np.ndarray:
    inv = (~mask).astype(np.uint8)
    count, comp, stats, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
    limit = max_fraction * mask.size
    out = mask.copy()
    h, w = mask.shape
    for i in range(1, count):
        x, y, cw, ch, area = stats[i]
        touches_border = x == 0 or y == 0 or x + cw == w or y + ch == h
        if not touches_border and area <= limit:
            out[comp == i] = True
    return out


def _largest_component(labels: np.ndarray) -> np.ndarray:
    fg = np.isin(labels, (FG, PR_FG)).astype(np.uint8)
    count, comp, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if count <= 1:
        return fg > 0
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return _fill_small_holes(comp == best, max_fraction=0.05)


def _upsample(mask: np.ndarray, ctx: Context) -> np.ndarray:
    """Working-resolution mask -> full resolution, edges snapped to the photo's edges."""
    height, width = ctx.full.shape[:2]
    soft = mask.astype(np.float32)
    if soft.shape != (height, width):
        soft = cv2.resize(soft, (width, height), interpolation=cv2.INTER_LINEAR)
    guide = cv2.cvtColor(ctx.full, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    radius = max(2, round(2 / max(ctx.scale, 1e-3)))
    snapped = cv2.ximgproc.guidedFilter(guide, soft, radius, 1e-3)
    return np.where(snapped >= 0.5, 255, 0).astype(np.uint8)


def _final_constraints(mask: np.ndarray, ctx: Context, hints: MaskHints | None) -> np.ndarray:
    mask = mask.copy()
    mask[ctx.head_full] = 0
    if hints is not None and not hints.is_empty():
        include, exclude = hints.rasterize(_full_size(ctx))
        mask[include] = 255
        mask[exclude] = 0
    return mask


def feather(mask: np.ndarray, width: float | None = None) -> np.ndarray:
    """Alpha that is 255 on the mask and fades to 0 over ``width`` pixels outside it."""
    height, w = mask.shape[:2]
    if width is None:
        width = max(2.0, FEATHER_FRACTION * float(np.hypot(height, w)))
    outside = (mask == 0).astype(np.uint8)
    if not outside.any():
        return np.full_like(mask, 255)
    dist = cv2.distanceTransform(outside, cv2.DIST_L2, 3)
    alpha = np.clip(1.0 - dist / width, 0.0, 1.0)
    return np.round(alpha * 255).astype(np.uint8)


# --- quality -------------------------------------------------------------------------------------


def assess_quality(mask: np.ndarray, ctx: Context) -> dict[str, Any]:
    on = mask > 0
    area = float(on.mean())
    inside = float((on & (ctx.person_full > 0)).sum() / max(on.sum(), 1))
    sharp = edge_sharpness(ctx.full, mask)
    pose_conf = float(ctx.pose.confidence) if ctx.pose is not None else 0.0
    flags: list[str] = []
    if area < 0.03:
        flags.append("Mask covers under 3% of the photo")
    if area > 0.7:
        flags.append("Mask covers over 70% of the photo")
    if ctx.has_person and inside < 0.95:
        flags.append("Garment mask extends outside the person")
    if not ctx.has_person:
        flags.append("No person found: the mask is the main object in the photo")
    elif pose_conf < 0.6:
        flags.append("The body pose is uncertain")
    if sharp < 0.25:
        flags.append("Mask edges do not follow the garment's outline")
    count = cv2.connectedComponents(on.astype(np.uint8))[0] - 1
    if count > 3:
        flags.append(f"The mask is split into {count} pieces")
    return {
        "mask_area_fraction": round(area, 4),
        "mask_person_overlap": round(inside, 4),
        "edge_sharpness": round(sharp, 4),
        "pose_confidence": round(pose_conf, 4),
        "components": int(count),
        "flags": flags,
        "low_quality": bool(
            flags and flags != ["No person found: the mask is the main object in the photo"]
        ),
    }


def edge_sharpness(rgb: np.ndarray, mask: np.ndarray) -> float:
    """Fraction of the mask outline lying within 2 px of a visible edge in the photo (0..1)."""
    on = (mask > 0).astype(np.uint8)
    outline = cv2.morphologyEx(on, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    if not outline.any():
        return 0.0
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 40, 120)
    near = cv2.dilate(edges, np.ones((5, 5), np.uint8)) > 0
    return float((near & outline).sum() / outline.sum())


# --- hints rasterisation and mask files ----------------------------------------------------------


def _any(mask: np.ndarray | None) -> bool:
    return mask is not None and bool(np.any(mask))


def _paint(
    strokes: Sequence[Stroke], brushed: np.ndarray | None, size: tuple[int, int]
) -> np.ndarray:
    width, height = size
    canvas = np.zeros((height, width), np.uint8)
    if brushed is not None and brushed.any():
        b = brushed if brushed.ndim == 2 else brushed[..., 0]
        if b.shape != (height, width):
            b = cv2.resize(b.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
        canvas[b > 0] = 1
    for stroke in strokes:
        pts = [np.array(p, np.float32) for p in stroke.points]
        if len(pts) == 1:
            cv2.circle(canvas, _ip(pts[0]), max(1, round(stroke.radius)), 1, -1)
        else:
            _capsule(canvas, pts, stroke.radius)
    return canvas > 0


def mask_to_png(mask: np.ndarray) -> bytes:
    """A 0/255 (or alpha) uint8 mask as 8-bit greyscale PNG bytes, no metadata."""
    arr = np.asarray(mask)
    arr = np.where(arr, 255, 0).astype(np.uint8) if arr.dtype == bool else arr.astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def mask_from_png(data: bytes, *, binary: bool = True) -> np.ndarray:
    """PNG bytes -> uint8 HxW mask (0/255 when ``binary``; any mode is reduced to one channel)."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        if img.mode in ("RGBA", "LA"):
            arr = np.asarray(img.getchannel("A"))
        else:
            arr = np.asarray(img.convert("L"))
    if binary:
        return np.where(arr >= 128, 255, 0).astype(np.uint8)
    return arr.astype(np.uint8)
