"""Box geometry shared by the detectors (faces, hands). Boxes are (left, top, right, bottom)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = Sequence[float] | np.ndarray


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes; 0.0 when they do not overlap."""
    inter_w = min(a[2], b[2]) - max(a[0], b[0])
    inter_h = min(a[3], b[3]) - max(a[1], b[1])
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    inter = inter_w * inter_h
    # overlapping boxes have a positive union (at least the intersection), so no zero check
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union)
