"""Safe intake of an uploaded photo.

A seller's upload is untrusted bytes. Before any model sees it we:

1. check its size (empty, too large);
2. sniff the real format from the magic bytes (JPEG, PNG and WebP only, whatever the file name);
3. read the dimensions from the header *before* decoding, so a decompression bomb (a tiny file
   that inflates to gigapixels) is refused without allocating its pixels;
4. decode fully (a truncated file raises: ``LOAD_TRUNCATED_IMAGES`` stays off);
5. apply the EXIF orientation, convert to sRGB/RGB (alpha composited on white, CMYK, 16-bit,
   palette, greyscale), downscale to a working size, and drop every piece of metadata.

Every refusal is an :class:`InvalidImageError` whose message can be shown to the seller as is.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import InvalidImageError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")

_NOT_AN_IMAGE = "This file is not a JPEG, PNG or WebP image."
_DAMAGED = "The image file is damaged or incomplete; please export it again and re-upload."


@dataclass(frozen=True)
class IntakeResult:
    """A decoded, normalised, metadata-free working copy of an upload."""

    #: RGB working copy (long side <= max_side), no metadata
    image: Image.Image
    #: "JPEG", "PNG" or "WEBP" (sniffed from the bytes, not the file name)
    original_format: str
    #: (width, height) of the upload after EXIF orientation, before downscaling
    original_size: tuple[int, int]
    #: working size / original size (1.0 when no downscale happened)
    scale: float

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def load_upload(
    data: bytes,
    *,
    max_bytes: int = 25 * 2**20,
    max_pixels: int = 40_000_000,
    max_side: int = 2048,
    min_side: int = 32,
) -> IntakeResult:
    """Validate and decode an uploaded photo; raise InvalidImageError with a human message."""
    _check_byte_size(data, max_bytes)
    fmt = sniff_format(data)
    width, height = _header_size(data, fmt)
    _check_dimensions(width, height, max_pixels=max_pixels, min_side=min_side)

    img = _open_and_decode(data, fmt, max_side=max_side)
    img = _apply_orientation(img)
    original_size = _oriented_size(img, width, height)
    rgb = _to_rgb(img)
    working, scale = _downscale(rgb, original_size, max_side)
    return IntakeResult(
        image=_strip_metadata(working),
        original_format=fmt,
        original_size=original_size,
        scale=scale,
    )


# --- size and format ---------------------------------------------------------------------------


def _check_byte_size(data: bytes, max_bytes: int) -> None:
    if not data:
        raise InvalidImageError("The file is empty.")
    if len(data) > max_bytes:
        raise InvalidImageError(
            f"The file is {_mb(len(data))}; the limit is {_mb(max_bytes)}. "
            "Please upload a smaller photo."
        )


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n % 2**20 else f"{n // 2**20} MB"


def sniff_format(data: bytes) -> str:
    """Return "JPEG", "PNG" or "WEBP" from the magic bytes, or raise InvalidImageError."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        raise InvalidImageError("GIF files are not accepted. " + _NOT_AN_IMAGE)
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<"):
        # SVG and HTML can carry scripts; we never treat markup as an image
        kind = "an SVG drawing" if b"<svg" in data[:4096].lower() else "a web page or text file"
        raise InvalidImageError(f"This file is {kind}, not a photo. " + _NOT_AN_IMAGE)
    raise InvalidImageError(_NOT_AN_IMAGE)


# --- header dimensions (read before decoding: bomb guard) ---------------------------------------


def _header_size(data: bytes, fmt: str) -> tuple[int, int]:
    """Width and height from the file header, without decoding any pixels."""
    try:
        if fmt == "PNG":
            size = _png_size(data)
        elif fmt == "JPEG":
            size = _jpeg_size(data)
        else:
            size = _webp_size(data)
    except (struct.error, IndexError, ValueError):
        size = None
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise InvalidImageError(_DAMAGED)
    return size


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR":
        return None
    if b"acTL" in data[: data.find(b"IDAT") if b"IDAT" in data else len(data)]:
        raise InvalidImageError("Animated images are not accepted. Please upload a single photo.")
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # walk the marker segments until a start-of-frame (SOF0..SOF15 except DHT/JPG/DAC)
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        if marker == 0xDA:  # start of scan before any frame header: broken
            return None
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        flags = data[20]
        if flags & 0x02:  # animation bit
            raise InvalidImageError(
                "Animated images are not accepted. Please upload a single photo."
            )
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return w, h
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def _check_dimensions(width: int, height: int, *, max_pixels: int, min_side: int) -> None:
    if width * height > max_pixels:
        raise InvalidImageError(
            f"The image is {width}x{height} pixels; the limit is {_mp(max_pixels)} megapixels."
        )
    if min(width, height) < min_side:
        raise InvalidImageError(
            f"The image is {width}x{height} pixels; each side must be at least {min_side} pixels."
        )


def _mp(pixels: int) -> str:
    value = pixels / 1_000_000
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


# --- decoding ------------------------------------------------------------------------------------


def _open_and_decode(data: bytes, fmt: str, *, max_side: int) -> Image.Image:
    """Decode every pixel; any Pillow failure becomes a human message."""
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning becomes an error: our header check should already have
            # refused such files, this is the second line of defence
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
            if getattr(img, "n_frames", 1) > 1 or getattr(img, "is_animated", False):
                raise InvalidImageError(
                    "Animated images are not accepted. Please upload a single photo."
                )
            if fmt == "JPEG":
                # let libjpeg decode at 1/2, 1/4 or 1/8 size when we will downscale anyway:
                # much faster and smaller for 40 MP phone photos
                img.draft("RGB", (max_side, max_side))
            img.load()
    except InvalidImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImageError(
            "The image has too many pixels to be processed safely. Please upload a smaller photo."
        ) from exc
    except UnidentifiedImageError as exc:
        raise InvalidImageError(_NOT_AN_IMAGE) from exc
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, IndexError) as exc:
        raise InvalidImageError(_DAMAGED) from exc
    except MemoryError as exc:
        raise InvalidImageError("The image is too large to be processed.") from exc
    return img


def _apply_orientation(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:
        return img


def _oriented_size(img: Image.Image, header_w: int, header_h: int) -> tuple[int, int]:
    """The upload's full-resolution size as the seller sees it (after EXIF rotation).

    JPEG draft decoding may have shrunk ``img``; the header size is the truth, swapped when the
    orientation turned the picture by 90 degrees.
    """
    swapped = (img.width >= img.height) != (header_w >= header_h) and header_w != header_h
    return (header_h, header_w) if swapped else (header_w, header_h)


# --- colour normalisation ------------------------------------------------------------------------

_SRGB = None


def _srgb_profile() -> ImageCms.ImageCmsProfile:
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return _SRGB


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any decoded mode -> 8-bit sRGB RGB; transparency is composited on white."""
    img = _from_high_bit_depth(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    icc = img.info.get("icc_profile")
    if icc and img.mode in ("RGB", "CMYK"):
        converted = _icc_to_srgb(img, icc)
        if converted is not None:
            return converted
    return img.convert("RGB")


def _from_high_bit_depth(img: Image.Image) -> Image.Image:
    """16-bit ('I;16', 'I') and float ('F') greyscale -> 8-bit 'L' by proper scaling.

    Pillow's own ``convert("L")`` clips 16-bit values at 255, which turns most photos white.
    """
    if img.mode not in ("I", "F") and not img.mode.startswith("I;16"):
        return img
    arr = np.asarray(img, dtype=np.float64)
    peak = float(arr.max()) if arr.size else 0.0
    if img.mode == "F" and peak <= 1.0:
        arr = arr * 255.0
    elif peak > 255:
        arr = arr / 257.0  # 0..65535 -> 0..255 exactly
    out = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return Image.fromarray(out)


def _icc_to_srgb(img: Image.Image, icc: bytes) -> Image.Image | None:
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(img, src, _srgb_profile(), outputMode="RGB")
    except Exception:
        return None


# --- size and metadata ---------------------------------------------------------------------------


def _downscale(
    img: Image.Image, original_size: tuple[int, int], max_side: int
) -> tuple[Image.Image, float]:
    long_side = max(img.size)
    if long_side > max_side:
        factor = max_side / long_side
        new_size = (max(1, round(img.width * factor)), max(1, round(img.height * factor)))
        img = img.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    scale = max(img.size) / max(original_size)
    return img, scale


def _strip_metadata(img: Image.Image) -> Image.Image:
    """A fresh RGB image with the same pixels and no info (EXIF, ICC, XMP, text chunks)."""
    clean = Image.frombytes("RGB", img.size, img.tobytes())
    clean.info = {}
    return clean


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes of ``image`` with no metadata (for derived files: masks, crops, controls)."""
    buf = io.BytesIO()
    _bare(image).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def encode_jpeg(image: Image.Image, quality: int = 92) -> bytes:
    """JPEG bytes of ``image`` with no metadata (no EXIF, ICC or comments)."""
    buf = io.BytesIO()
    rgb = image if image.mode in ("RGB", "L") else image.convert("RGB")
    _bare(rgb).save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def _bare(image: Image.Image) -> Image.Image:
    bare = image.copy()
    bare.info = {}
    return bare
