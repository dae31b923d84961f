"""The bad-input corpus through the real upload path: the new-shoot page, as a signed-in seller,
multipart with a CSRF token, exactly as a browser posts it.

For every refused kind the page names the problem in words a seller understands (HTTP 422), and
nothing is kept: no Shoot or ShootPhoto row and no file under MEDIA_ROOT. For every accepted but
normalised kind the shoot is created and its stored working image is 8-bit RGB, free of metadata
and the right way up; the stored files have server-chosen names inside MEDIA_ROOT.

tests/inference/test_intake.py checks the same kinds at the function level; this file proves the
view, the form, the service and storage hold together (e.g. the form refuses before the service
decodes; nothing is written before every file passed).
"""

from __future__ import annotations

import html
import io
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from seller.models import Shoot, ShootPhoto
from tests.security import corpus as c
from tests.security.conftest import csrf_token

pytestmark = pytest.mark.django_db
NEW_SHOOT = "/shoots/new/"
NOT_AN_IMAGE = "This file is not a JPEG, PNG or WebP image."
DAMAGED = "The image file is damaged or incomplete; please export it again and re-upload."


def test_new_shoot_url_is_the_one_the_corpus_posts_to():
    assert reverse("seller:shoot_new") == NEW_SHOOT


def fields(**overrides) -> dict:
    return {"sku": "SKU-1", "title": "Linen shirt", "category": "top", "scene": "studio_white"} | (
        overrides
    )


def post_shoot(client: Client, data: dict, files: list[SimpleUploadedFile], **extra):
    """POST the new-shoot form like the browser: multipart, with the page's CSRF token."""
    token = csrf_token(client, NEW_SHOOT)
    return client.post(NEW_SHOOT, {**data, "photos": files, "csrfmiddlewaretoken": token}, **extra)


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def rows() -> tuple[int, int]:
    return Shoot.objects.count(), ShootPhoto.objects.count()


# --- refused -------------------------------------------------------------------------------------


@dataclass
class Refused:
    """One bad request: its files (name, bytes builder, content type), form fields, and the
    words the seller must see."""

    kind: str
    files: list[tuple[str, Callable[[], bytes], str]]
    expect: list[str]
    data: dict = field(default_factory=dict)


def one(name: str, build: Callable[[], bytes], content_type: str = "image/jpeg"):
    return [(name, build, content_type)]


GOOD = ("good.jpg", c.jpeg, "image/jpeg")

REFUSED = [
    Refused("empty file", one("empty.jpg", lambda: b""), ["empty.jpg: the file is empty."]),
    Refused("truncated JPEG", one("cut.jpg", c.truncated_jpeg), [f"cut.jpg: {DAMAGED}"]),
    Refused("truncated PNG", one("cut.png", c.truncated_png, "image/png"), [f"cut.png: {DAMAGED}"]),
    Refused(
        "PNG decompression bomb (900 MP in 100 KB)",
        one("bomb.png", c.png_bomb, "image/png"),
        ["bomb.png: The image is 30000x30000 pixels; the limit is 40 megapixels."],
    ),
    Refused(
        "100 megapixel image",
        one("big.png", c.png_100_megapixels, "image/png"),
        ["big.png: The image is 10000x10000 pixels; the limit is 40 megapixels."],
    ),
    Refused(
        "JPEG whose header claims 100 MP over a tiny body",
        one("liar.jpg", lambda: c.jpeg_header_claims(10_000, 10_000)),
        ["liar.jpg: The image is 10000x10000 pixels; the limit is 40 megapixels."],
    ),
    Refused(
        "PNG with a zTXt chunk that inflates to 64 MB",
        one("text-bomb.png", c.png_text_bomb, "image/png"),
        [f"text-bomb.png: {DAMAGED}"],
    ),
    Refused(
        "SVG with a script, named .jpg",
        one("photo.jpg", lambda: c.SVG),
        ["photo.jpg: This file is an SVG drawing, not a photo."],
    ),
    Refused(
        "HTML page named .png",
        one("photo.png", lambda: c.HTML, "image/png"),
        ["photo.png: This file is a web page or text file, not a photo."],
    ),
    Refused(
        "animated GIF",
        one("spin.gif", lambda: c.animated("GIF"), "image/gif"),
        ["spin.gif: GIF files are not accepted."],
    ),
    Refused(
        "animated PNG",
        one("spin.png", lambda: c.animated("PNG"), "image/png"),
        ["spin.png: Animated images are not accepted. Please upload a single photo."],
    ),
    Refused(
        "animated WebP",
        one("spin.webp", lambda: c.animated("WEBP"), "image/webp"),
        ["spin.webp: Animated images are not accepted. Please upload a single photo."],
    ),
    Refused(
        "TIFF",
        one("scan.tiff", lambda: c.encode(c.gradient(), "TIFF"), "image/tiff"),
        [f"scan.tiff: {NOT_AN_IMAGE}"],
    ),
    Refused(
        "BMP",
        one("paint.bmp", lambda: c.encode(c.gradient(), "BMP"), "image/bmp"),
        [f"paint.bmp: {NOT_AN_IMAGE}"],
    ),
    Refused("ZIP named .jpg", one("photos.jpg", c.zip_archive), [f"photos.jpg: {NOT_AN_IMAGE}"]),
    Refused("PDF named .jpg", one("catalog.jpg", lambda: c.PDF), [f"catalog.jpg: {NOT_AN_IMAGE}"]),
    Refused("EXE named .jpg", one("setup.jpg", lambda: c.EXE), [f"setup.jpg: {NOT_AN_IMAGE}"]),
    Refused(
        "iPhone HEIC", one("IMG_0001.heic", lambda: c.HEIC), [f"IMG_0001.heic: {NOT_AN_IMAGE}"]
    ),
    Refused(
        "random bytes named .jpg", one("noise.jpg", c.random_bytes), [f"noise.jpg: {NOT_AN_IMAGE}"]
    ),
    Refused(
        "1 x 1 image",
        one("dot.png", lambda: c.png((1, 1)), "image/png"),
        ["dot.png: The image is 1x1 pixels; each side must be at least 32 pixels."],
    ),
    Refused(
        "a good photo and a bad one: the whole upload is refused",
        [GOOD, ("bad.jpg", c.truncated_jpeg, "image/jpeg")],
        [f"bad.jpg: {DAMAGED}"],
    ),
    Refused(
        "9 photos (the limit is 8)",
        [(f"p{i}.jpg", c.jpeg, "image/jpeg") for i in range(9)],
        ["Up to 8 photos per shoot; you added 9."],
    ),
    Refused("no photo at all", [], ["Add at least one photo of the garment."]),
    Refused(
        "path traversal in the file name",
        one("../../../../etc/cron.d/evil.jpg", lambda: c.SVG),
        ["evil.jpg: This file is an SVG drawing"],
    ),
    Refused(
        "Windows path traversal in the file name",
        one("..\\..\\windows\\evil.jpg", lambda: c.SVG),
        ["evil.jpg: This file is an SVG drawing"],
    ),
    Refused(
        "unicode file name",
        one("платье-👗-ドレス.jpg", c.truncated_jpeg),
        [f"платье--ドレス.jpg: {DAMAGED}"],  # the emoji is dropped from the label
    ),
    Refused(
        "NUL and control characters in the file name",
        one("front\x00.jpg\x07", c.truncated_jpeg),
        [f"front.jpg: {DAMAGED}"],
    ),
    Refused(
        "300-character file name",
        one("a" * 296 + ".jpg", c.truncated_jpeg),
        [DAMAGED, "a" * 100],
    ),
    Refused(
        "SKU of 10,000 characters",
        [GOOD],
        ["Ensure this value has at most 64 characters (it has 10000)."],
        {"sku": "S" * 10_000},
    ),
    Refused(
        "title of 10,000 characters",
        [GOOD],
        ["Ensure this value has at most 200 characters (it has 10000)."],
        {"title": "T" * 10_000},
    ),
    Refused(
        "category that does not exist",
        [GOOD],
        ["Select a valid choice. sweater is not one of the available choices."],
        {"category": "sweater"},
    ),
    Refused(
        "scene that does not exist",
        [GOOD],
        ["Select a valid choice. moon is not one of the available choices."],
        {"scene": "moon"},
    ),
    Refused("blank SKU", [GOOD], ["This field is required."], {"sku": "   "}),
]


@pytest.mark.parametrize("case", REFUSED, ids=lambda case: case.kind)
def test_bad_upload_is_refused_with_a_clear_message_and_nothing_is_kept(
    seller_client, new_media, case
):
    files = [SimpleUploadedFile(name, build(), ctype) for name, build, ctype in case.files]
    before = rows()
    response = post_shoot(seller_client, fields(**case.data), files)
    text = page_text(response)
    assert response.status_code == 422, (case.kind, response.status_code)
    assert "Please fix the problems marked below." in text
    for expected in case.expect:
        assert expected in text, (case.kind, expected)
    for raw in ("Traceback", "PIL", "cannot identify", "Exception"):
        assert raw not in text
    assert rows() == before
    assert new_media() == set()


def test_the_corpus_has_at_least_twenty_kinds():
    assert len({case.kind for case in REFUSED}) >= 20


@pytest.mark.parametrize(
    ("name", "size", "shown"),
    [
        # 26 MB against the real 25 MB default: streamed to a temporary file (over
        # FILE_UPLOAD_MAX_MEMORY_SIZE), refused by size
        ("huge.jpg", 26 * 2**20, "26.0 MB"),
        # 25 MB + 1 byte used to read "the file is 25.0 MB; the limit is 25 MB": rounded up now
        ("edge.jpg", 25 * 2**20 + 1, "25.1 MB"),
    ],
)
def test_a_file_over_the_upload_limit_is_refused_without_decoding(
    seller_client, new_media, name, size, shown
):
    """Refused by its size alone, and never written to media storage."""
    oversize = b"\xff\xd8\xff\xe0" + b"\x00" * (size - 4)  # a JPEG header, then padding
    response = post_shoot(seller_client, fields(), [SimpleUploadedFile(name, oversize)])
    assert response.status_code == 422
    assert f"{name}: the file is {shown}; the limit is 25 MB." in page_text(response)
    assert rows() == (0, 0) and new_media() == set()


# --- Django's own request limits answer cleanly (400, never 500) ---------------------------------


def test_a_form_field_over_data_upload_max_memory_size_is_a_400(seller_client, new_media):
    """DATA_UPLOAD_MAX_MEMORY_SIZE (5 MB) caps the non-file part of the body."""
    response = post_shoot(
        seller_client, fields(title="x" * (6 * 2**20)), [SimpleUploadedFile("a.jpg", c.jpeg())]
    )
    assert response.status_code == 400
    assert rows() == (0, 0) and new_media() == set()


def test_an_urlencoded_body_over_the_limit_is_a_400(seller_client):
    token = csrf_token(seller_client, NEW_SHOOT)
    body = f"csrfmiddlewaretoken={token}&title=" + "x" * (6 * 2**20)
    response = seller_client.post(NEW_SHOOT, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


def test_more_files_than_data_upload_max_number_files_is_a_400(seller_client, new_media):
    files = [SimpleUploadedFile(f"p{i}.jpg", b"\xff\xd8\xff") for i in range(101)]
    response = post_shoot(seller_client, fields(), files)
    assert response.status_code == 400
    assert rows() == (0, 0) and new_media() == set()


def test_a_broken_multipart_body_is_a_400(seller_client, new_media):
    csrf_token(seller_client, NEW_SHOOT)
    response = seller_client.post(
        NEW_SHOOT,
        b"--nope\r\nContent-Disposition: form-data; name=photos\r\n\r\n",
        content_type="multipart/form-data",  # no boundary
    )
    assert response.status_code == 400, response.status_code
    assert new_media() == set()


def test_a_form_posted_without_multipart_asks_for_photos(seller_client, new_media):
    """Wrong request content type (the browser lost enctype): a clear form error, not a 500."""
    token = csrf_token(seller_client, NEW_SHOOT)
    response = seller_client.post(
        NEW_SHOOT,
        urlencode(fields(csrfmiddlewaretoken=token, photos="front.jpg")),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 422
    assert "Add at least one photo of the garment." in page_text(response)
    assert new_media() == set()


def test_a_photo_over_file_upload_max_memory_size_is_still_accepted(seller_client, new_media):
    """A legitimate 6 MB photo goes through a temporary file instead of memory and is fine."""
    data = c.noise_png((1500, 1400))
    assert len(data) > 5 * 2**20
    response = post_shoot(
        seller_client, fields(), [SimpleUploadedFile("big.png", data, "image/png")]
    )
    assert response.status_code == 302, page_text(response)[:2000]
    assert Shoot.objects.count() == 1 and len(new_media()) == 2


# --- XSS in shown fields -------------------------------------------------------------------------

SCRIPT = '<script>alert("xss")</script>'
IMG = "<img src=x onerror=alert(1)>"


def test_html_in_title_and_sku_is_escaped_everywhere_it_is_shown(seller_client, seller):
    response = post_shoot(
        seller_client,
        fields(sku="<b>SKU</b>", title=f"Dress {SCRIPT}{IMG}"),
        [SimpleUploadedFile("front.jpg", c.jpeg())],
        follow=True,
    )
    shoot = Shoot.objects.get(seller=seller)
    assert shoot.title == f"Dress {SCRIPT}{IMG}"  # stored as typed; escaped when shown
    pages = [response]  # the shoot page with the "Shoot <b>SKU</b> created" message
    for url in (
        reverse("seller:dashboard"),
        reverse("seller:dashboard") + "?q=Dress",
        reverse("seller:shoot", args=[shoot.pk]),
    ):
        pages.append(seller_client.get(url))
    for page in pages:
        body = page.content.decode()
        assert page.status_code == 200
        assert SCRIPT not in body and IMG not in body and "<b>SKU</b>" not in body
        assert "&lt;script&gt;" in body and "&lt;b&gt;SKU&lt;/b&gt;" in body


def test_html_in_a_refused_form_is_escaped_when_echoed(seller_client):
    response = post_shoot(
        seller_client,
        fields(title=f'">{SCRIPT}', category=SCRIPT),
        [SimpleUploadedFile(f"{IMG}.jpg", c.SVG)],
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert SCRIPT not in body and IMG not in body
    assert "is not one of the available choices" in body  # the category value, escaped
    assert "This file is an SVG drawing" in body


# --- accepted, normalised, stored safely ---------------------------------------------------------

UUID_NAME = re.compile(r"^(originals|photos)/[0-9a-f]{32}\.(jpg|png|webp)$")


def png_chunk_types(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    kinds, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        kinds.append(data[i + 4 : i + 8])
        i += 12 + length
    return kinds


def working_image(photo: ShootPhoto) -> tuple[Image.Image, bytes]:
    with default_storage.open(photo.image.name, "rb") as handle:
        data = handle.read()
    image = Image.open(io.BytesIO(data))
    image.load()
    return image, data


def assert_clean_working_copy(photo: ShootPhoto) -> Image.Image:
    """8-bit RGB PNG with pixel chunks only: no EXIF, ICC, text, time or gamma metadata."""
    image, data = working_image(photo)
    assert image.format == "PNG" and image.mode == "RGB"
    assert set(png_chunk_types(data)) == {b"IHDR", b"IDAT", b"IEND"}
    assert not image.getexif() and "icc_profile" not in image.info
    return image


def accept(client, name: str, data: bytes, content_type: str = "image/jpeg", **extra) -> Shoot:
    response = post_shoot(client, fields(), [SimpleUploadedFile(name, data, content_type)], **extra)
    assert response.status_code == 302, page_text(response)[:3000]
    shoot = Shoot.objects.get()
    assert response["Location"] == reverse("seller:shoot", args=[shoot.pk])
    return shoot


@dataclass
class Accepted:
    kind: str
    name: str
    build: Callable[[], bytes]
    content_type: str
    stored_format: str  # what the bytes really are, whatever the name or content type said
    size: tuple[int, int]


ACCEPTED = [
    Accepted("CMYK JPEG", "cmyk.jpg", c.cmyk_jpeg, "image/jpeg", "JPEG", (200, 100)),
    Accepted("16-bit PNG", "deep.png", c.sixteen_bit_png, "image/png", "PNG", (256, 64)),
    Accepted("palette PNG with transparency", "pal.png", c.palette_png, "image/png", "PNG", (100, 100)),  # noqa: E501
    Accepted("RGBA PNG", "alpha.png", c.rgba_png, "image/png", "PNG", (64, 64)),
    Accepted("EXIF-rotated JPEG", "rotated.jpg", c.rotated_jpeg, "image/jpeg", "JPEG", (80, 120)),
    Accepted("60 KB EXIF with GPS", "gps.jpg", c.huge_exif_jpeg, "image/jpeg", "JPEG", (320, 240)),
    Accepted("WebP that is really a PNG", "photo.webp", c.png, "image/webp", "PNG", (320, 240)),
    Accepted("JPEG named .png", "photo.png", c.jpeg, "image/png", "JPEG", (320, 240)),
    Accepted("real WebP", "photo.webp", c.webp, "image/webp", "WEBP", (320, 240)),
    Accepted("PNG sent as text/html", "photo.png", c.png, "text/html", "PNG", (320, 240)),
    Accepted("JPEG sent as an executable", "photo.jpg", c.jpeg, "application/x-msdownload", "JPEG", (320, 240)),  # noqa: E501
    Accepted("PNG + ZIP polyglot (trailing garbage)", "poly.png", c.png_with_trailing_garbage, "image/png", "PNG", (320, 240)),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda case: case.kind)
def test_awkward_but_valid_photo_is_accepted_normalised_and_stored_safely(
    seller_client, new_media, case
):
    shoot = accept(seller_client, case.name, case.build(), case.content_type)
    photo = shoot.photos.get()
    image = assert_clean_working_copy(photo)
    assert image.size == case.size == (photo.width, photo.height)
    assert photo.original_format == case.stored_format
    # Only two files, server-named, inside MEDIA_ROOT; the extension comes from the real format.
    assert new_media() == {photo.original.name, photo.image.name}
    assert UUID_NAME.match(photo.original.name) and UUID_NAME.match(photo.image.name)
    extension = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[case.stored_format]
    assert photo.original.name.endswith(f".{extension}")
    with default_storage.open(photo.original.name, "rb") as handle:
        assert handle.read() == case.build()  # the original is kept byte for byte


def test_exif_rotation_is_applied_to_the_pixels(seller_client):
    shoot = accept(seller_client, "rotated.jpg", c.rotated_jpeg())
    pixels = np.asarray(assert_clean_working_copy(shoot.photos.get()))
    top, bottom = pixels[10, 40], pixels[110, 40]
    assert top[0] > 200 and top[2] < 60  # red on top
    assert bottom[2] > 200 and bottom[0] < 60  # blue below


def test_cmyk_and_palette_colours_survive_normalisation(seller_client, seller):
    shoot = accept(seller_client, "cmyk.jpg", c.cmyk_jpeg())
    r, g, b = np.asarray(assert_clean_working_copy(shoot.photos.get()))[50, 100].tolist()
    assert r > 200 and g < 60 and b < 60
    Shoot.objects.all().delete()
    shoot = accept(seller_client, "pal.png", c.palette_png(), "image/png")
    pixels = np.asarray(assert_clean_working_copy(shoot.photos.get()))
    assert pixels[50, 10].tolist() == [255, 255, 255]  # transparent: composited on white
    assert pixels[50, 90].tolist() == [0, 0, 255]


def test_gps_and_camera_serial_never_reach_the_working_copy(seller_client):
    shoot = accept(seller_client, "gps.jpg", c.huge_exif_jpeg())
    _image, data = working_image(shoot.photos.get())
    for secret in (b"SERIAL-1234567890", b"StudioTestCam", b"Exif", b"xxxxxxxx"):
        assert secret not in data


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../../../etc/passwd.png", "passwd.png"),
        ("..\\..\\boot.ini.png", "boot.ini.png"),
        ("front\x00.png", "front.png"),
        ("платье.png", "платье.png"),
        ("👗", "photo"),  # nothing usable is left of the name: a neutral one
        ("%%%", "photo"),
        ("a" * 296 + ".png", "a" * 120),
    ],
)
def test_file_names_never_reach_storage_and_are_kept_only_as_safe_labels(
    seller_client, new_media, sent, kept
):
    shoot = accept(seller_client, sent, c.png(), "image/png")
    photo = shoot.photos.get()
    assert photo.original_name == kept
    assert "/" not in photo.original_name and "\\" not in photo.original_name
    assert new_media() == {photo.original.name, photo.image.name}
    assert UUID_NAME.match(photo.original.name) and UUID_NAME.match(photo.image.name)


def test_the_original_is_served_to_its_owner_as_a_download_with_its_real_type(seller_client):
    """A PNG+ZIP polyglot sent as text/html comes back as an image/png attachment with nosniff:
    the client's content type and name never decide how a stored file is served."""
    shoot = accept(seller_client, "poly.html", c.png_with_trailing_garbage(), "text/html")
    photo = shoot.photos.get()
    response = seller_client.get(
        reverse("seller:photo_file", args=[shoot.pk, photo.pk, "original"])
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "private" in response["Cache-Control"]
