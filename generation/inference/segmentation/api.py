"""``segment_garment``, the entry point, and the choice of backend."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ..errors import NoPoseFoundError
from ..pose import PoseResult, estimate_pose
from .classical import ClassicalBackend
from .context import Context
from .hints import MaskHints
from .learned import ClothModelBackend, SegformerBackend
from .primitives import GRABCUT_ITERATIONS, _as_rgb, _grabcut, canonical_category
from .refine import (
    _apply_hard_constraints,
    _clean,
    _final_constraints,
    _upsample,
    assess_quality,
    feather,
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


# --- entry point ----------------------------------------------------------------------------------


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


# --- backend choice -------------------------------------------------------------------------------

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
