"""Bad (and awkward but acceptable) uploads, generated in memory: nothing is downloaded.

Each builder returns the bytes of one file. They are functions, not constants, so a test run
only builds the files it uses (the 900-megapixel PNG bomb takes a moment to compress).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image

# --- plain images --------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def gradient(size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A smooth colour gradient: compresses like a photo, easy to recognise after decoding."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None].repeat(w, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1).astype(np.uint8))


def jpeg(size: tuple[int, int] = (320, 240), **kwargs) -> bytes:
    return encode(gradient(size), "JPEG", quality=90, **kwargs)


def png(size: tuple[int, int] = (320, 240)) -> bytes:
    return encode(gradient(size), "PNG")


def webp(size: tuple[int, int] = (320, 240)) -> bytes:
    return encode(gradient(size), "WEBP")


def noise_png(size: tuple[int, int]) -> bytes:
    """Random pixels: PNG cannot compress them, so the file is about w * h * 3 bytes."""
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG", compress_level=1)


# --- PNG internals -------------------------------------------------------------------------------


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def bilevel_png(side: int) -> bytes:
    """A valid, fully decodable 1-bit PNG of side x side pixels, a few KB to a few 100 KB."""
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    parts = [comp.compress(row * 1000) for _ in range(side // 1000)]
    parts.append(comp.compress(row * (side % 1000)))
    parts.append(comp.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


def png_bomb() -> bytes:
    """~100 KB on disk, 900 megapixels (2.7 GB as RGB) once decoded."""
    return bilevel_png(30_000)


def png_100_megapixels() -> bytes:
    """A real 10000 x 10000 photo-sized image (small only because it is blank)."""
    return bilevel_png(10_000)


def png_text_bomb() -> bytes:
    """A normal small PNG carrying a zTXt chunk that inflates to 64 MB."""
    data = png((64, 64))
    payload = b"Comment\x00\x00" + zlib.compress(b"\x00" * (64 * 2**20), 9)
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + png_chunk(b"zTXt", payload) + data[iend:]


def truncated_png() -> bytes:
    data = png((640, 480))
    return data[: len(data) // 2]


def png_with_trailing_garbage() -> bytes:
    """A complete PNG followed by junk (a ZIP archive: the classic image/archive polyglot)."""
    return png() + zip_archive()


def sixteen_bit_png() -> bytes:
    ramp = np.linspace(0, 65535, 256, dtype=np.float64)[None, :].repeat(64, 0).astype(np.uint16)
    return encode(Image.fromarray(ramp), "PNG")


def palette_png() -> bytes:
    """A palette image with a transparent colour (index 0: transparent red, 1: blue)."""
    image = Image.new("P", (100, 100), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (50, 0, 100, 100))
    return encode(image, "PNG", transparency=0)


def rgba_png() -> bytes:
    image = Image.new("RGBA", (64, 64), (0, 128, 0, 0))  # fully transparent green
    return encode(image, "PNG")


def animated(fmt: str) -> bytes:
    frames = [gradient(), gradient().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)


# --- JPEG internals ------------------------------------------------------------------------------


def truncated_jpeg() -> bytes:
    data = jpeg((640, 480))
    return data[: len(data) // 2]


def jpeg_header_claims(width: int, height: int) -> bytes:
    """A 64 x 64 JPEG whose frame header says width x height (a tiny file "of" 100 MP)."""
    data = bytearray(jpeg((64, 64)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (200, 100), (0, 255, 255, 0)), "JPEG", quality=95)  # red


def rotated_jpeg() -> bytes:
    """Stored 120 x 80 (left half red, right half blue) with EXIF orientation 6: shown rotated
    90 degrees clockwise, i.e. 80 x 120 with red on top."""
    image = Image.new("RGB", (120, 80), (255, 0, 0))
    image.paste((0, 0, 255), (60, 0, 120, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


def huge_exif_jpeg() -> bytes:
    """A JPEG with a ~60 KB EXIF block (the most one APP1 segment holds), GPS position, camera
    serial, a long comment and an ICC-like APP2 segment: everything the working copy must drop."""
    exif = Image.Exif()
    exif[0x010F] = "StudioTestCam"  # Make
    exif[0xA431] = "SERIAL-1234567890"  # BodySerialNumber
    exif[0x010E] = "x" * 60_000  # ImageDescription
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 31.0, 12.0)  # GPSLatitudeRef, GPSLatitude
    gps[3], gps[4] = "E", (13.0, 24.0, 36.0)  # GPSLongitudeRef, GPSLongitude
    data = encode(gradient(), "JPEG", quality=90, exif=exif.tobytes())
    comment = b"\xff\xfe" + struct.pack(">H", 2 + 4000) + b"c" * 4000  # COM segment
    return data[:2] + comment + data[2:]


# --- not images at all ---------------------------------------------------------------------------

SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.cookie)</script></svg>"
)
HTML = b"\xef\xbb\xbf\n<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 48 + b"PE\x00\x00" * 16
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 200


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.txt", "not a photo")
    return out.getvalue()


def random_bytes(n: int = 5000) -> bytes:
    return np.random.default_rng(1).integers(0, 256, n, dtype=np.uint8).tobytes()
