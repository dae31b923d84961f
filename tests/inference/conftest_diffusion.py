"""Session fixtures for the diffusion-engine tests: tiny model sets, built once per session.

Test modules pull these in with ``from tests.inference.conftest_diffusion import *``. Importing a
session fixture into several modules makes pytest treat each copy as its own fixture, so the build
itself is memoised here at module level: the tiny sets are built once per test process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation.inference.tiny import make_tiny_models

__all__ = [
    "samples_persons",
    "single_torch_thread",
    "tiny_model_root",
    "tiny_sd15",
    "tiny_sdxl",
    "tiny_svd",
    "torso_mask",
]

_BUILT: dict[str, Path] = {}
SAMPLES_DIR = Path(os.environ.get("STUDIO_SAMPLES_DIR", "/work/shared/samples"))


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread() -> Iterator[None]:
    """Tiny models are too small to gain from two threads, and on a busy 2-core machine the
    OpenMP threads spin-wait on each other: one thread made this suite ~10x faster under load.
    Restored after each module, so other tests keep torch's default."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "root" not in _BUILT:
        root = tmp_path_factory.mktemp("tiny-models")
        make_tiny_models(root)
        _BUILT["root"] = root
    return _BUILT["root"]


@pytest.fixture(scope="session")
def tiny_sd15(tiny_model_root: Path) -> Path:
    return tiny_model_root / "tiny-sd15"


@pytest.fixture(scope="session")
def tiny_sdxl(tiny_model_root: Path) -> Path:
    return tiny_model_root / "tiny-sdxl"


@pytest.fixture(scope="session")
def tiny_svd(tiny_model_root: Path) -> Path:
    return tiny_model_root / "tiny-svd"


@pytest.fixture(scope="session")
def samples_persons() -> Path:
    path = SAMPLES_DIR / "persons"
    if not path.is_dir():
        pytest.skip(f"sample photos not found at {path} (set STUDIO_SAMPLES_DIR)")
    return path


def torso_mask(size: tuple[int, int]) -> np.ndarray:
    """A stand-in garment mask: an ellipse over the middle of the frame (255 = garment).

    The real garment segmentation is tested elsewhere; these tests only need *a* keep-region.
    """
    import cv2

    w, h = size
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, int(h * 0.45)), (int(w * 0.22), int(h * 0.2)), 0, 0, 360, 255, -1)
    return mask


def solid(size: tuple[int, int], color: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", size, color)
