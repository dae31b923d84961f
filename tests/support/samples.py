"""The sample photos kept outside the repository, and the ground truth of their parsing set.

Shared by the inference tests and ``bench/analysis.py``, so both score garment masks against the
same label groups. Django-free: the inference tests run without settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]

#: garment category -> the labels of ``parsing/labels.json`` that make it (samples/SOURCES.md)
GROUPS = {
    "dress": {"dress", "romper"},
    "top": {
        "blouse", "shirt", "t-shirt", "top", "sweater", "sweatshirt", "hoodie", "cardigan",
        "jumper", "vest", "bodysuit",
    },
    "bottom": {"skirt", "pants", "jeans", "shorts", "leggings"},
}  # fmt: skip
#: worn over a top: the photo's "upper garment" seen from outside
OUTERWEAR = {"coat", "jacket", "blazer", "cape", "suit"}


def samples_path() -> Path:
    """``$STUDIO_SAMPLES_DIR``, else ``shared/samples`` beside the repository."""
    env = os.environ.get("STUDIO_SAMPLES_DIR")
    return Path(env) if env else REPO.parent / "shared" / "samples"


def parsing_labels(samples: Path, key: str) -> np.ndarray:
    """The per-pixel label ids of parsing photo ``key`` (indexes into labels.json's names)."""
    return np.asarray(Image.open(samples / "parsing" / "labels" / f"{key}.png"))


def label_mask(labels: np.ndarray, names: Sequence[str], wanted: Iterable[str]) -> np.ndarray:
    """True where a pixel's label is one of ``wanted``; ``names`` is labels.json's label list."""
    return np.isin(labels, [names.index(n) for n in wanted])
