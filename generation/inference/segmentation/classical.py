"""Step 2, the ``classical`` backend: pose geometry, person mask, skin and face exclusion and
colour models; no weights needed. Without a person, the main object in the photo."""

from __future__ import annotations

import cv2
import numpy as np

from ..pose import (
    L_ANKLE,
    L_ELBOW,
    L_KNEE,
    L_WRIST,
    R_ANKLE,
    R_ELBOW,
    R_KNEE,
    R_WRIST,
    PoseResult,
)
from .context import Context
from .primitives import (
    BG,
    FG,
    PR_BG,
    PR_FG,
    _Body,
    _capsule,
    _connected_to,
    _dilate,
    _fill_poly,
    _pt,
    _shrink,
)


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
