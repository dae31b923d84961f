"""Safe image intake: every refused kind of file, and every accepted-and-normalised one.

All inputs are built in memory (here and by the upload corpus of the security tests); nothing
is downloaded.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from generation.inference.errors import InvalidImageError
from generation.inference.intake import encode_jpeg, encode_png, load_upload, sniff_format
from tests.security.corpus import encode, gradient, png_bomb


def _refused(data: bytes, **kwargs) -> str:
    with pytest.raises(InvalidImageError) as info:
        load_upload(data, **kwargs)
    message = str(info.value)
    # a message for a person: no Pillow wording, no exception class names
    for raw in ("cannot identify", "PIL", "Traceback", "Error", "truncated"):
        assert raw not in message, message
    return message


# --- refused -------------------------------------------------------------------------------------


def test_empty_file_is_refused():
    assert _refused(b"") == "The file is empty."


def test_random_bytes_are_refused():
    rng = np.random.default_rng(1)
    message = _refused(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert message == "This file is not a JPEG, PNG or WebP image."


def test_truncated_jpeg_is_refused():
    data = encode(gradient((640, 480)), "JPEG", quality=90)
    message = _refused(data[: len(data) // 2])
    assert "damaged or incomplete" in message


def test_jpeg_cut_inside_its_header_is_refused():
    data = encode(gradient(), "JPEG")
    assert "damaged or incomplete" in _refused(data[:40])


def test_truncated_png_is_refused():
    data = encode(gradient((640, 480)), "PNG")
    assert "damaged or incomplete" in _refused(data[: len(data) // 2])


def test_png_decompression_bomb_is_refused_from_its_header():
    bomb = png_bomb()
    assert len(bomb) < 1_000_000  # small on disk...
    message = _refused(bomb)  # ...but 900 megapixels once decoded
    assert message == "The image is 30000x30000 pixels; the limit is 40 megapixels."


def test_pillow_bomb_guard_is_the_second_line_of_defence():
    # with our own limit lifted, Pillow's DecompressionBombError must still become a clean refusal
    message = _refused(png_bomb(), max_pixels=10**12)
    assert "too many pixels" in message


def test_oversize_file_is_refused():
    data = encode(gradient((1200, 900)), "PNG")
    message = _refused(data, max_bytes=len(data) - 1)
    assert message.startswith("The file is ") and "the limit is" in message


def test_default_size_limit_is_25_megabytes():
    message = _refused(b"\xff\xd8\xff" + b"\x00" * (25 * 2**20))
    assert "the limit is 25 MB" in message


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script>'
        b"</svg>",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    ],
)
def test_svg_named_jpg_is_refused(payload):
    message = _refused(payload)  # the name "photo.jpg" never matters: we sniff the bytes
    assert "SVG" in message and "not a JPEG, PNG or WebP" in message


def test_html_named_jpg_is_refused():
    message = _refused(b"\xef\xbb\xbf  <!DOCTYPE html><html><body>hi</body></html>")
    assert "web page" in message


def test_gif_is_refused():
    assert "GIF" in _refused(encode(gradient(), "GIF"))


def test_animated_gif_is_refused():
    frames = [gradient(), gradient().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert "GIF" in _refused(data)


def test_animated_png_is_refused():
    frames = [gradient(), gradient().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    assert "Animated" in _refused(data)


def test_animated_webp_is_refused():
    frames = [gradient(), gradient().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    assert "Animated" in _refused(data)


def test_other_image_formats_are_refused():
    for fmt in ("BMP", "TIFF"):
        assert _refused(encode(gradient(), fmt)) == "This file is not a JPEG, PNG or WebP image."


def test_tiny_image_is_refused():
    assert "at least" in _refused(encode(gradient((8, 8)), "PNG"))


# --- accepted and normalised ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepted_formats(fmt):
    result = load_upload(encode(gradient(), fmt))
    assert result.original_format == fmt
    assert result.image.mode == "RGB"
    assert result.image.size == result.original_size == (320, 240)
    assert result.scale == 1.0
    assert sniff_format(encode(gradient(), fmt)) == fmt


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (200, 100), (0, 255, 255, 0))  # pure red in CMYK
    result = load_upload(encode(cmyk, "JPEG", quality=95))
    assert result.image.mode == "RGB"
    r, g, b = np.asarray(result.image)[50, 100].tolist()
    assert r > 200 and g < 60 and b < 60


def test_16_bit_png_is_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 256, dtype=np.float64)[None, :].repeat(64, 0).astype(np.uint16)
    img = Image.fromarray(ramp)
    result = load_upload(encode(img, "PNG"))
    arr = np.asarray(result.image)
    assert arr.dtype == np.uint8 and arr.shape == (64, 256, 3)
    assert arr[0, 0, 0] == 0 and arr[0, -1, 0] == 255
    assert 120 <= arr[0, 128, 0] <= 135  # mid-grey stays mid-grey (clipping would give 255)


def test_palette_png_with_transparency_is_composited_on_white():
    img = Image.new("P", (100, 100), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(1, (50, 0, 100, 100))  # right half: palette index 1 (blue)
    data = encode(img, "PNG", transparency=0)  # index 0 (the red left half) is transparent
    arr = np.asarray(load_upload(data).image)
    assert arr[50, 10].tolist() == [255, 255, 255]
    assert arr[50, 90].tolist() == [0, 0, 255]


def test_rgba_is_composited_on_white():
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:, :50, 3] = 0  # left half fully transparent
    rgba[:, 50:, 3] = 128  # right half half transparent
    arr = np.asarray(load_upload(encode(Image.fromarray(rgba), "PNG")).image)
    assert arr[10, 10].tolist() == [255, 255, 255]
    r, g, b = arr[10, 90].tolist()
    assert r == 255 and 120 <= g <= 135 and 120 <= b <= 135


def test_greyscale_and_la_become_rgb():
    grey = Image.new("L", (64, 64), 90)
    assert np.asarray(load_upload(encode(grey, "PNG")).image)[0, 0].tolist() == [90, 90, 90]
    la = Image.new("LA", (64, 64), (0, 0))
    assert np.asarray(load_upload(encode(la, "PNG")).image)[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied():
    # stored landscape: left half red, right half blue; orientation 6 = "rotate 90 clockwise"
    arr = np.zeros((100, 200, 3), np.uint8)
    arr[:, :100] = (255, 0, 0)
    arr[:, 100:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(arr), "JPEG", quality=95, exif=exif.tobytes())
    result = load_upload(data)
    assert result.image.size == (100, 200)  # now portrait
    assert result.original_size == (100, 200)
    out = np.asarray(result.image)
    assert out[20, 50, 0] > 200 and out[20, 50, 2] < 60  # top: red
    assert out[180, 50, 2] > 200 and out[180, 50, 0] < 60  # bottom: blue


def test_large_image_is_downscaled_to_max_side():
    data = encode(gradient((6000, 4000)), "JPEG", quality=80)  # 24 MP: allowed
    result = load_upload(data)
    assert result.original_size == (6000, 4000)
    assert result.image.size == (2048, 1365)
    assert result.scale == pytest.approx(2048 / 6000, rel=1e-6)
    small = load_upload(data, max_side=512)
    assert small.image.size == (512, 341)


def test_metadata_is_stripped():
    exif = Image.Exif()
    exif[0x010F] = "SellerPhone"  # Make
    exif[0x0131] = "Secret Editor 1.0"  # Software
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(gradient(), "JPEG", exif=exif.tobytes(), icc_profile=icc, comment=b"gps here")
    result = load_upload(data)
    assert result.image.info == {}
    for encoded in (encode_jpeg(result.image), encode_png(result.image)):
        assert b"SellerPhone" not in encoded and b"Secret Editor" not in encoded
        assert b"gps here" not in encoded
        with Image.open(io.BytesIO(encoded)) as reopened:
            assert "exif" not in reopened.info
            assert "icc_profile" not in reopened.info
            assert not reopened.getexif()


def test_png_text_chunks_are_stripped():
    from PIL import PngImagePlugin

    meta = PngImagePlugin.PngInfo()
    meta.add_text("Author", "Jane Seller, 12 Private Street")
    result = load_upload(encode(gradient(), "PNG", pnginfo=meta))
    assert b"Private Street" not in encode_png(result.image)


def test_encode_helpers_round_trip():
    img = gradient()
    assert Image.open(io.BytesIO(encode_png(img))).size == img.size
    assert Image.open(io.BytesIO(encode_jpeg(img, quality=80))).format == "JPEG"
