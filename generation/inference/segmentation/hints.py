"""The seller's hints: include and exclude strokes or brushed masks, and their rasterising.

Hints are hard constraints of the pipeline (GrabCut definite foreground/background, re-applied
at full resolution); their JSON form is what a corrected mask version stores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .primitives import _capsule, _ip


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


# --- rasterising ----------------------------------------------------------------------------------


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
