"""Steps 3 and 4: hard constraints, clean-up, guided upsampling, the feathered alpha, and the
quality report."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .context import Context
from .hints import MaskHints
from .primitives import BG, FEATHER_FRACTION, FG, PR_FG, _fill_small_holes


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


# --- quality --------------------------------------------------------------------------------------


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
