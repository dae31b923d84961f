"""Face library fixtures: real sample photos, and degraded copies made in memory."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageFilter, ImageOps

FACE_FILES = [f"face{i:02d}.{'png' if i <= 8 else 'jpg'}" for i in range(1, 11)]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


@pytest.fixture
def face_path(samples_dir):
    def path(index: int) -> Path:
        return samples_dir / "faces" / FACE_FILES[index - 1]

    return path


@pytest.fixture
def face_bytes(face_path):
    """The original bytes of sample face N (1-10)."""

    def read(index: int) -> bytes:
        return face_path(index).read_bytes()

    return read


@pytest.fixture
def two_people_bytes(samples_dir) -> bytes:
    """Two person photos (one person each) pasted side by side."""
    left = open_rgb(samples_dir / "persons" / "shop_tank.jpg")
    right = open_rgb(samples_dir / "persons" / "shop_knitdress.jpg")
    canvas = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    return png_bytes(canvas)


@pytest.fixture
def garment_bytes(samples_dir) -> bytes:
    return (samples_dir / "garments" / "dress_floral.jpg").read_bytes()


@pytest.fixture
def tiny_face_bytes(face_path) -> bytes:
    """Face 1 shrunk to a 80 px photo on a 640x480 background: the face is ~50 px."""
    small = open_rgb(face_path(1)).resize((80, 80), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (640, 480), (200, 200, 200))
    canvas.paste(small, (280, 200))
    return png_bytes(canvas)


@pytest.fixture
def blurred_bytes(face_path) -> bytes:
    return png_bytes(open_rgb(face_path(1)).filter(ImageFilter.GaussianBlur(3)))


@pytest.fixture
def mirrored_bytes(face_path) -> bytes:
    return png_bytes(ImageOps.mirror(open_rgb(face_path(1))))


@pytest.fixture
def recrop_bytes(face_path) -> bytes:
    """Face 1 cropped tighter and scaled up: the same photo, framed differently."""
    image = open_rgb(face_path(1))
    width, height = image.size
    crop = image.crop((40, 30, width - 30, height - 50))
    return png_bytes(crop.resize((600, 600), Image.Resampling.LANCZOS))
