"""Short clips: Stable Video Diffusion on the tiny set, H.264 MP4 encoding, poster frames."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from generation.inference.errors import GenerationCancelled, ModelMissingError
from generation.inference.video import (
    VideoResult,
    encode_mp4,
    generate_video,
    poster_frame,
    video_dimensions,
)
from tests.inference.conftest_diffusion import *  # noqa: F403 - session fixtures


def _still(size: tuple[int, int] = (64, 64)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _clip(model_set_dir: Path, **options: Any) -> VideoResult:
    """A clip of ``_still()`` on CPU: two 64x64 frames in one step unless ``options`` say more."""
    defaults: dict[str, Any] = dict(width=64, height=64, num_frames=2, steps=1)
    return generate_video(_still(), model_set_dir=model_set_dir, device="cpu", **defaults | options)


def _probe(path: Path) -> tuple[dict, int]:
    """ffmpeg's own reading of the file: its metadata and how many frames it decodes."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    count = sum(1 for _ in reader)
    return meta, count


def _boxes(data: bytes) -> list[str]:
    """Top-level MP4 box types in file order."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        out.append(data[pos + 4 : pos + 8].decode("latin-1"))
        if size < 8:
            break
        pos += size
    return out


def test_generate_video_frames_mp4_and_poster(tiny_svd: Path, tmp_path: Path) -> None:
    steps: list[tuple[int, int]] = []
    result = _clip(
        tiny_svd,
        num_frames=4,
        fps=6,
        seed=5,
        steps=2,
        decode_chunk_size=2,
        progress=lambda i, n: steps.append((i, n)),
    )
    assert len(result.frames) == 4 and result.frames[0].size == (64, 64)
    assert steps == [(1, 2), (2, 2)]
    assert result.model_set == "tiny-svd" and result.seed == 5 and result.fps == 6

    boxes = _boxes(result.mp4)
    assert boxes[0] == "ftyp" and boxes.index("moov") < boxes.index("mdat")  # +faststart
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(result.mp4)
    meta, count = _probe(clip)
    assert meta["codec"] == "h264" and tuple(meta["size"]) == (64, 64)
    assert meta["fps"] == pytest.approx(6) and count == 4

    poster = Image.open(io.BytesIO(result.poster))
    assert poster.format == "PNG" and poster.size == (64, 64)


def test_video_is_deterministic_for_a_seed(tiny_svd: Path) -> None:
    a = _clip(tiny_svd, seed=9)
    b = _clip(tiny_svd, seed=9)
    assert all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(a.frames, b.frames, strict=True)
    )


def test_video_cancellation(tiny_svd: Path) -> None:
    seen: list[int] = []
    with pytest.raises(GenerationCancelled):
        _clip(
            tiny_svd,
            steps=3,
            progress=lambda i, n: seen.append(i),
            should_cancel=lambda: bool(seen),
        )
    assert seen == [1]


def test_missing_video_set_raises_model_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match="download_models svd"):
        generate_video(_still(), model_set_dir=tmp_path / "svd", device="cpu")


def test_encode_mp4_makes_odd_frames_even_and_writes_a_file(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (65, 47), (i * 40, 100, 200 - i * 40)) for i in range(5)]
    path = tmp_path / "odd.mp4"
    data = encode_mp4(frames, 10, path)
    assert path.read_bytes() == data
    meta, count = _probe(path)
    assert tuple(meta["size"]) == (64, 46) and count == 5
    assert "yuv420p" in meta.get("pix_fmt", "yuv420p")


def test_poster_frame_jpeg_and_dimensions() -> None:
    frames = [Image.new("RGB", (32, 32), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))]
    jpeg = Image.open(io.BytesIO(poster_frame(frames, index=1, fmt="JPEG")))
    assert jpeg.format == "JPEG" and jpeg.getpixel((16, 16))[2] > 200
    assert video_dimensions((550, 844)) == (640, 1024)
