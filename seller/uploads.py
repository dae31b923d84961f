"""Creating a shoot from uploaded photos.

Every file is validated and decoded first (``generation.inference.intake``), before anything is
stored: one bad file refuses the whole upload with a message per file, and nothing is written.
Files are then written to storage outside the transaction (slow I/O), and the rows that point to
them are created in one transaction; if anything fails, the files are deleted again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from core.files import StoredFiles, safe_display_name, sha256, stored_files
from generation.inference.errors import InvalidImageError
from generation.inference.intake import IntakeResult, encode_png, load_upload

from .models import Seller, Shoot, ShootPhoto
from .services import shoot_start_analysis

MAX_PHOTOS_PER_SHOOT = 8
ALLOWED_EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp"}


class UploadFailed(Exception):
    """The photos were fine but could not be stored (e.g. disk full). Nothing was kept."""


class UploadRejected(Exception):
    """One or more files were refused; ``errors`` maps each file name to its reason."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in errors))


@dataclass
class PreparedPhoto:
    original_name: str
    original_bytes: bytes
    intake: IntakeResult
    working_png: bytes


def _read_bounded(upload) -> bytes:
    """Read at most one byte past the limit, so a huge file is refused without reading it all."""
    upload.seek(0)
    return upload.read(settings.UPLOAD_MAX_BYTES + 1)


def prepare_photos(files: Sequence) -> list[PreparedPhoto]:
    if not files:
        raise UploadRejected([("", "Add at least one photo of the garment.")])
    if len(files) > MAX_PHOTOS_PER_SHOOT:
        raise UploadRejected([("", f"Upload at most {MAX_PHOTOS_PER_SHOOT} photos per shoot.")])
    prepared, errors = [], []
    for upload in files:
        name = safe_display_name(getattr(upload, "name", ""))
        try:
            data = _read_bounded(upload)
            intake = load_upload(
                data,
                max_bytes=settings.UPLOAD_MAX_BYTES,
                max_pixels=settings.UPLOAD_MAX_PIXELS,
            )
        except InvalidImageError as exc:
            errors.append((name, str(exc)))
            continue
        prepared.append(PreparedPhoto(name, data, intake, encode_png(intake.image)))
    if errors:
        raise UploadRejected(errors)
    return prepared


def _store_photo(photo: PreparedPhoto, files: StoredFiles) -> tuple[str, str]:
    extension = ALLOWED_EXTENSIONS[photo.intake.original_format.lower()]
    original = files.store("originals", photo.original_bytes, extension)
    working = files.store("photos", photo.working_png, "png")
    return original, working


def shoot_create(
    *,
    seller: Seller,
    sku: str,
    title: str,
    category: str,
    scene: str,
    files: Sequence,
    actor=None,
) -> Shoot:
    """Validate the photos, store them, create the shoot and start its analysis."""
    prepared = prepare_photos(files)
    try:
        with stored_files() as written:
            stored = [_store_photo(photo, written) for photo in prepared]
            with transaction.atomic():
                shoot = Shoot.objects.create(
                    seller=seller, sku=sku, title=title, category=category, scene=scene
                )
                for position, (photo, (original, working)) in enumerate(
                    zip(prepared, stored, strict=True)
                ):
                    ShootPhoto.objects.create(
                        shoot=shoot,
                        original=original,
                        image=working,
                        original_name=photo.original_name,
                        original_format=photo.intake.original_format,
                        sha256=sha256(photo.original_bytes),
                        position=position,
                    )
                return shoot_start_analysis(shoot=shoot, actor=actor)
    except OSError as exc:
        raise UploadFailed(
            "The photos could not be saved right now (storage full or unavailable). "
            "Nothing was kept; please try again later."
        ) from exc
