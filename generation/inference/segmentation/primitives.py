"""Building blocks of every step: garment categories, GrabCut labels and the working size,
image and body-geometry helpers, GrabCut, connected components, and mask PNG files."""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from ..pose import L_HIP, L_SHOULDER, R_HIP, R_SHOULDER, PoseResult

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


def canonical_category(category: str) -> str:
    key = category.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in CATEGORIES:
        raise ValueError(f"unknown garment category {category!r}; expected one of {CATEGORIES}")
    return _CATEGORY_ALIASES.get(key, key)


def _as_rgb(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("expected an RGB image")
    return np.ascontiguousarray(image, dtype=np.uint8)


# --- geometry helpers -----------------------------------------------------------------------------


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


def _dilate(mask: np.ndarray, size: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((size, size), np.uint8)) > 0


def _connected_to(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    count, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    keep = np.zeros(count, bool)
    keep[np.unique(comp[seeds & mask])] = True
    keep[0] = False
    return keep[comp]


# --- GrabCut and connected components -------------------------------------------------------------


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


# --- mask files -----------------------------------------------------------------------------------


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
