"""Builders for seller page tests: shoots at every stage with real image files in storage.

Shared by test_pages*.py, test_isolation.py, test_web_imports.py, the browser tests,
bench/pages.py and bench/web_rss.py. They write rows directly (test set-up only); the code under
test changes state through services.
"""

from __future__ import annotations

import io
import struct
import zlib

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image, ImageDraw, ImageOps

from facelibrary.models import Consent, Face, FaceReference
from generation.models import Asset, GenerationJob, GenerationRun
from seller.models import (
    MaskVersion,
    PhotoAnalysis,
    Seller,
    Shoot,
    ShootPhoto,
    ShootStatus,
)
from tests.factories import FaceFactory, ShootFactory

S = ShootStatus
PHOTO_SIZE = (120, 160)
FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64


def image_bytes(size=PHOTO_SIZE, color=(180, 60, 90), fmt="PNG", mode="RGB") -> bytes:
    image = Image.new(mode, size, color)
    ImageDraw.Draw(image).ellipse(
        (size[0] // 4, size[1] // 5, 3 * size[0] // 4, 4 * size[1] // 5), fill="white"
    )
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def mask_bytes(size=PHOTO_SIZE) -> bytes:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle(
        (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4), fill=255
    )
    out = io.BytesIO()
    mask.save(out, format="PNG")
    return out.getvalue()


def bomb_png(width: int = 40_000, height: int = 40_000) -> bytes:
    """A tiny PNG whose header claims gigapixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def upload(name: str, data: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def save(prefix: str, data: bytes, ext: str) -> str:
    return default_storage.save(f"{prefix}/test.{ext}", ContentFile(data))


def add_photo(shoot: Shoot, *, size=PHOTO_SIZE, position: int = 0) -> ShootPhoto:
    data = image_bytes(size)
    return ShootPhoto.objects.create(
        shoot=shoot,
        original=save("originals", data, "png"),
        image=save("photos", data, "png"),
        width=size[0],
        height=size[1],
        original_name=f"dress-{position}.png",
        original_format="PNG",
        sha256="0" * 64,
        position=position,
    )


def add_analysis(photo: ShootPhoto, *, pose: bool = True, attempt: int = 1) -> PhotoAnalysis:
    keypoints = {"keypoints": [[10.0, 10.0, 0.9]] * 18} if pose else None
    return PhotoAnalysis.objects.create(
        photo=photo,
        attempt=attempt,
        keypoints=keypoints,
        pose_source=PhotoAnalysis.PoseSource.DETECTED if pose else "",
        pose_image=save("analysis", image_bytes(PHOTO_SIZE, (0, 0, 0)), "png") if pose else "",
        flags=[] if pose else ["No body pose found in this photo: choose a standard pose."],
        low_quality=not pose,
    )


def add_mask(
    photo: ShootPhoto, *, version: int = 1, chosen: bool = True, analysis=None
) -> MaskVersion:
    if chosen:
        photo.masks.filter(is_chosen=True).update(is_chosen=False)
    return MaskVersion.objects.create(
        photo=photo,
        analysis=analysis,
        version=version,
        source=MaskVersion.Source.AUTO if version == 1 else MaskVersion.Source.CORRECTED,
        mask=save("masks", mask_bytes(), "png"),
        is_chosen=chosen,
    )


def place(shoot: Shoot, status: str, *, note: str = "") -> Shoot:
    """Put the shoot in ``status`` with a matching timeline event (set-up only)."""
    shoot.events.create(from_status=shoot.status, to_status=status, note=note)
    Shoot.objects.filter(pk=shoot.pk).update(status=status, status_changed_at=timezone.now())
    shoot.refresh_from_db()
    return shoot


def analysed_shoot(seller: Seller, *, status: str = S.MASK_REVIEW, **kwargs) -> Shoot:
    """A shoot with one photo, its analysis and an automatic mask."""
    shoot = ShootFactory(seller=seller, **kwargs)
    place(shoot, S.ANALYZING, note="started")
    Shoot.objects.filter(pk=shoot.pk).update(analysis_attempts=1)
    photo = add_photo(shoot)
    analysis = add_analysis(photo)
    add_mask(photo, analysis=analysis)
    return place(shoot, status, note="1 photo(s) analysed") if status != S.ANALYZING else shoot


FACE_LOOKS = [
    {
        "gender_presentation": "feminine",
        "age_band": "25-34",
        "skin_tone": 3,
        "region_tags": ["east_asia"],
    },
    {
        "gender_presentation": "masculine",
        "age_band": "35-44",
        "skin_tone": 7,
        "region_tags": ["sub_saharan_africa"],
    },
    {
        "gender_presentation": "feminine",
        "age_band": "45-54",
        "skin_tone": 5,
        "region_tags": ["south_asia"],
    },
    {
        "gender_presentation": "androgynous",
        "age_band": "18-24",
        "skin_tone": 9,
        "region_tags": ["latin_america"],
    },
]


def active_faces(n: int, *, portraits: list[bytes] | None = None) -> list[Face]:
    """Faces a seller can pick: active, with a valid consent and a primary reference photo."""
    faces = []
    for index in range(n):
        look = FACE_LOOKS[index % len(FACE_LOOKS)]
        face = FaceFactory(status=Face.Status.ACTIVE, consent=False, **_valid_look(look))
        Consent.objects.create(face=face, licence_terms="Test release.")
        portrait = portraits[index % len(portraits)] if portraits else None
        thumb = portrait or image_bytes((96, 96), (120 + 20 * index, 90, 140))
        FaceReference.objects.create(
            face=face,
            image=save("faces", thumb, "png"),
            thumbnail=save("faces/thumbs", _square_thumb(thumb), "jpg"),
            width=96,
            height=96,
            source_sha256=f"{index:064d}",
            is_primary=True,
            gate_passed=True,
        )
        faces.append(face)
    return faces


def _valid_look(look: dict) -> dict:
    """Only the attributes whose values the current Face model knows."""
    valid = {}
    for name, value in look.items():
        if name == "region_tags":
            valid[name] = value
            continue
        field = Face._meta.get_field(name)
        if value in {choice for choice, _ in field.flatchoices}:
            valid[name] = value
    return valid


def _square_thumb(data: bytes, side: int = 256) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = ImageOps.fit(image, (side, side))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def add_run(
    shoot: Shoot, faces: list[Face], *, variants: int = 1, job_status: str = "succeeded"
) -> GenerationRun:
    done = job_status not in GenerationJob.ACTIVE_STATUSES
    run = GenerationRun.objects.create(
        shoot=shoot,
        status=GenerationRun.Status.SUCCEEDED if done else GenerationRun.Status.ACTIVE,
    )
    for face in faces:
        for variant in range(variants):
            GenerationJob.objects.create(
                run=run,
                face=face,
                variant=variant,
                seed=1000 + variant,
                status=job_status,
                progress_step=4 if done else 1,
                progress_total=4,
                seconds_per_image=2.5 if done else None,
                finished_at=timezone.now() if done else None,
            )
    return run


def add_asset(job: GenerationJob, *, kind: str = "image", status: str = "generated") -> Asset:
    image = image_bytes(PHOTO_SIZE, (40, 90, 160))
    if kind == "image":
        file, poster = save("assets", image, "png"), ""
    else:
        file, poster = save("assets", FAKE_MP4, "mp4"), save("assets", image, "png")
    asset = Asset.objects.create(
        job=job,
        kind=kind,
        file=file,
        poster=poster,
        width=PHOTO_SIZE[0],
        height=PHOTO_SIZE[1],
        checksum="0" * 64,
    )
    if status != "generated":
        Asset.objects.filter(pk=asset.pk).update(status=status)
        asset.refresh_from_db()
    return asset


def reviewed_shoot(
    seller: Seller, *, faces: int = 2, variants: int = 2, video: bool = False, **kwargs
) -> Shoot:
    """A shoot in seller review with images (and optionally videos) for each face x variant."""
    shoot = analysed_shoot(seller, status=S.FACE_SELECTION, **kwargs)
    place(shoot, S.GENERATING)
    run = add_run(shoot, active_faces(faces), variants=variants)
    for job in run.jobs.all():
        add_asset(job)
        if video:
            add_asset(job, kind="video")
    return place(shoot, S.SELLER_REVIEW, note="images generated")


def seller_page_urls(
    *, mask_shoot: Shoot, photo: ShootPhoto, face_shoot: Shoot, review: Shoot, asset: Asset
) -> dict[str, str]:
    """The seller's main pages by name: the dashboard, the new-shoot form, a shoot in mask review
    (``mask_shoot``, with its ``photo``), its mask editor, mask and photo files, the face page of
    ``face_shoot``, the results of ``review`` and the large view of one of its ``asset``s."""
    return {
        "dashboard": reverse("seller:dashboard"),
        "new shoot": reverse("seller:shoot_new"),
        "shoot": reverse("seller:shoot", args=[mask_shoot.pk]),
        "mask editor": reverse("seller:mask_review", args=[mask_shoot.pk]),
        "mask file": reverse("seller:mask_file", args=[mask_shoot.pk, photo.masks.get().pk]),
        "photo file": reverse("seller:photo_file", args=[mask_shoot.pk, photo.pk, "image"]),
        "faces": reverse("seller:faces", args=[face_shoot.pk]),
        "results": reverse("seller:results", args=[review.pk]),
        "asset": reverse("seller:asset", args=[review.pk, asset.pk]),
    }
