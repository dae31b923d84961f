"""Shoots made the way a seller makes one, for tests that need the real upload path."""

from __future__ import annotations

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from seller.models import Seller, Shoot
from seller.uploads import shoot_create
from tests.factories import SellerFactory


def upload_shoot(
    *photos: Path,
    sku: str,
    title: str,
    category: str,
    seller: Seller | None = None,
) -> Shoot:
    """``shoot_create`` with these photo files (stored, normalised, analysis enqueued as the
    queue mode says), for ``seller`` or a new one, in the studio_white scene."""
    return shoot_create(
        seller=seller or SellerFactory(),
        sku=sku,
        title=title,
        category=category,
        scene="studio_white",
        files=[SimpleUploadedFile(path.name, path.read_bytes()) for path in photos],
    )
