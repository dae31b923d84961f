"""Garment paste-back: exact inside, blended at the edge, generated elsewhere; mask metrics."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from generation.inference.composite import (
    blend_alpha,
    changed_pixels_inside,
    erode,
    inpaint_mask_from_garment,
    paste_garment,
    ssim_inside,
)
from generation.inference.errors import InferenceError


def _noise(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _square_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 255
    return mask


def test_inside_eroded_mask_is_bit_exact_and_outside_is_generated() -> None:
    original, generated = _noise((80, 60), 1), _noise((80, 60), 2)
    mask = _square_mask((80, 60), (20, 15, 60, 45))
    out = paste_garment(original, generated, mask, erode_px=2, feather_px=6)

    core = erode(mask > 0, 2)
    assert out.size == original.size and out.mode == "RGB"
    assert changed_pixels_inside(original, out, core) == 0
    far = np.ones((60, 80), bool)
    far[5:55, 10:70] = False  # more than feather_px away from the garment
    assert np.array_equal(np.asarray(out)[far], np.asarray(generated)[far])


def test_edge_band_blends_between_original_and_generated() -> None:
    original = Image.new("RGB", (60, 60), (255, 255, 255))
    generated = Image.new("RGB", (60, 60), (0, 0, 0))
    mask = _square_mask((60, 60), (20, 20, 40, 40))
    out = np.asarray(paste_garment(original, generated, mask, erode_px=2, feather_px=6))
    row = out[30, :, 0]
    # inside white, just outside the garment grey, far outside black, monotone in between
    assert row[30] == 255 and row[0] == 0
    assert 0 < row[19] < 255
    assert all(row[i] <= row[i + 1] for i in range(0, 30))


def test_generated_image_is_resized_to_the_original() -> None:
    original = _noise((100, 150), 3)
    generated = _noise((64, 96), 4)
    mask = _square_mask((100, 150), (30, 40, 70, 110))
    out = paste_garment(original, generated, mask)
    assert out.size == (100, 150)
    assert changed_pixels_inside(original, out, erode(mask > 0, 2)) == 0


def test_garment_touching_the_frame_edge_is_kept() -> None:
    original, generated = _noise((40, 40), 5), _noise((40, 40), 6)
    mask = _square_mask((40, 40), (0, 20, 40, 40))  # a skirt running off the bottom edge
    out = paste_garment(original, generated, mask, erode_px=2)
    assert np.array_equal(np.asarray(out)[-1], np.asarray(original)[-1])


def test_accepts_pil_and_bool_masks_and_rejects_wrong_size() -> None:
    original, generated = _noise((30, 30), 7), _noise((30, 30), 8)
    mask = _square_mask((30, 30), (5, 5, 25, 25))
    a = paste_garment(original, generated, Image.fromarray(mask))
    b = paste_garment(original, generated, mask > 0)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(InferenceError):
        paste_garment(original, generated, np.zeros((10, 10), np.uint8))


def test_blend_alpha_is_one_inside_and_zero_far_away() -> None:
    mask = _square_mask((50, 50), (10, 10, 40, 40))
    alpha = blend_alpha(mask, erode_px=2, feather_px=4)
    assert alpha[25, 25] == 1.0 and alpha[0, 0] == 0.0
    assert 0.0 < alpha[25, 8] < 1.0


def test_inpaint_mask_is_inverse_of_the_garment_and_reaches_into_its_edge() -> None:
    mask = _square_mask((60, 60), (20, 20, 40, 40))
    repaint = np.asarray(inpaint_mask_from_garment(mask, erode_px=3)) > 0
    assert repaint[0, 0] and not repaint[30, 30]
    assert repaint[30, 21]  # inside the garment by 1 px: repainted so the seam blends
    grown = np.asarray(inpaint_mask_from_garment(mask, dilate_px=2, erode_px=0)) > 0
    assert not grown[30, 19]  # dilation keeps a margin around a tight mask


def test_changed_pixels_and_ssim_inside_a_mask() -> None:
    a = _noise((64, 64), 9)
    b = np.asarray(a).copy()
    b[:8, :8] = 0
    b_img = Image.fromarray(b)
    mask = np.zeros((64, 64), np.uint8)
    mask[:16, :16] = 255
    assert changed_pixels_inside(a, b_img, mask) == int(
        np.any(np.asarray(a)[:8, :8] != 0, -1).sum()
    )
    assert changed_pixels_inside(a, b_img, 255 - mask) == 0
    assert ssim_inside(a, a, mask) == pytest.approx(1.0)
    assert ssim_inside(a, b_img, mask) < 0.9
    with pytest.raises(InferenceError):
        ssim_inside(a, a, np.zeros((64, 64), np.uint8))
