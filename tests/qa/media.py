"""Real-image test media: paste-backs, deliberate garment alterations, short mp4 clips."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from generation.inference import composite


def pasted_back(photo: Image.Image, mask: np.ndarray) -> Image.Image:
    """What the engine produces: a different picture with the real garment pasted back."""
    generated = photo.filter(ImageFilter.GaussianBlur(6)).transpose(Image.FLIP_LEFT_RIGHT)
    return composite.paste_garment(photo, generated, mask)


def altered_garment(result: Image.Image, mask: np.ndarray, size: int = 40) -> Image.Image:
    """``result`` with a ``size`` px square painted over the middle of the garment."""
    core = composite.erode(composite.as_bool_mask(mask), size)
    ys, xs = np.nonzero(core)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    altered = result.copy()
    half = size // 2
    ImageDraw.Draw(altered).rectangle(
        [cx - half, cy - half, cx + half - 1, cy + half - 1], fill=(200, 30, 30)
    )
    return altered


def shifted_frames(image: Image.Image, n: int, step: tuple[float, float] = (1.5, 0.7)):
    """``n`` frames of a slow camera drift over ``image`` (even size, as x264 needs)."""
    arr = np.asarray(image.convert("RGB"))
    arr = arr[: arr.shape[0] // 2 * 2, : arr.shape[1] // 2 * 2]
    frames = []
    for i in range(n):
        matrix = np.float32([[1, 0, i * step[0]], [0, 1, i * step[1]]])
        frames.append(
            cv2.warpAffine(
                arr, matrix, (arr.shape[1], arr.shape[0]), borderMode=cv2.BORDER_REPLICATE
            )
        )
    return frames


def mp4_bytes(frames: list[np.ndarray], fps: int = 7) -> bytes:
    import os
    import tempfile

    import imageio_ffmpeg

    height, width = frames[0].shape[:2]
    handle, path = tempfile.mkstemp(suffix=".mp4")
    os.close(handle)
    try:
        writer = imageio_ffmpeg.write_frames(
            path, (width, height), fps=fps, quality=9, macro_block_size=2
        )
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame[:height, :width]))
        writer.close()
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)
