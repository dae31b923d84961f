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

Modules (each imports only the ones above it; this package only re-exports):

- ``primitives``: categories, GrabCut labels and working size, geometry, GrabCut, mask files;
- ``hints``: the seller's strokes and brushed masks, rasterised;
- ``context``: step 1;
- ``classical`` and ``learned`` (``cloth``, ``segformer``): step 2;
- ``refine``: steps 3 and 4, and the quality report;
- ``api``: ``segment_garment`` and the choice of backend.
"""

from .api import MaskBackend, SegmentationResult, available_backends, segment_garment
from .classical import ClassicalBackend
from .context import Context
from .hints import MaskHints, Stroke
from .learned import (
    CLOTH_MODEL_FILE,
    SEGFORMER_DIR,
    SEGFORMER_INSTALL_COMMAND,
    ClothModelBackend,
    LoadedParser,
    ParsingLabels,
    SegformerBackend,
    parsing_trimap,
)
from .primitives import (
    BG,
    CATEGORIES,
    FEATHER_FRACTION,
    FG,
    GRABCUT_ITERATIONS,
    PR_BG,
    PR_FG,
    WORK_SIDE,
    canonical_category,
    mask_from_png,
    mask_to_png,
)
from .refine import assess_quality, edge_sharpness, feather

__all__ = [
    "BG",
    "CATEGORIES",
    "CLOTH_MODEL_FILE",
    "FEATHER_FRACTION",
    "FG",
    "GRABCUT_ITERATIONS",
    "PR_BG",
    "PR_FG",
    "SEGFORMER_DIR",
    "SEGFORMER_INSTALL_COMMAND",
    "WORK_SIDE",
    "ClassicalBackend",
    "ClothModelBackend",
    "Context",
    "LoadedParser",
    "MaskBackend",
    "MaskHints",
    "ParsingLabels",
    "SegformerBackend",
    "SegmentationResult",
    "Stroke",
    "assess_quality",
    "available_backends",
    "canonical_category",
    "edge_sharpness",
    "feather",
    "mask_from_png",
    "mask_to_png",
    "parsing_trimap",
    "segment_garment",
]
