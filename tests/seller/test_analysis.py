"""The analysis stage through the real upload path, on real photos, with real workers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from core.files import open_mask
from core.transitions import TransitionNotAllowed
from seller.analysis import NO_POSE_FLAG
from seller.masks import (
    InvalidCorrection,
    mask_choose_version,
    mask_correct,
    shoot_use_standard_pose,
)
from seller.models import (
    MaskCorrection,
    MaskVersion,
    PhotoAnalysis,
    Shoot,
    ShootPhoto,
    ShootStatus,
)
from seller.services import shoot_confirm_mask
from seller.uploads import UploadRejected, shoot_create
from tests.factories import SellerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def upload(path: Path) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes(), content_type="image/jpeg")


def create(seller, *paths: Path, category: str = "dress") -> Shoot:
    return shoot_create(
        seller=seller,
        sku="SKU-1",
        title="Test dress",
        category=category,
        scene="studio_white",
        files=[upload(p) for p in paths],
    )


@pytest.fixture
def sync_queue(settings):
    settings.QUEUE_MODE = "sync"


def test_upload_runs_analysis_and_produces_pose_and_mask(samples_dir, sync_queue):
    shoot = create(SellerFactory(), samples_dir / "persons" / "street_0223.jpg")
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.MASK_REVIEW, shoot.last_error
    photo = shoot.photos.get()
    analysis = photo.analyses.get()
    assert analysis.pose_source == PhotoAnalysis.PoseSource.DETECTED
    assert len(analysis.keypoints["keypoints"]) == 18
    mask = open_mask(photo.masks.get(is_chosen=True).mask)
    assert mask.shape == (photo.height, photo.width)
    assert set(np.unique(mask)) <= {0, 255}
    person = open_mask(analysis.person_mask)
    inside = (mask > 0) & (person > 0)
    assert inside.sum() / max(1, (mask > 0).sum()) > 0.95
    assert 0.03 < (mask > 0).mean() < 0.6


def test_analysis_in_a_real_worker_process(samples_dir, start_worker):
    shoot = create(SellerFactory(), samples_dir / "persons" / "shop_knitdress.jpg")
    worker = start_worker("analysis", burst=True)
    assert worker.wait(timeout=240) == 0, worker.log()
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.MASK_REVIEW, shoot.last_error + worker.log()
    assert MaskVersion.objects.filter(photo__shoot=shoot, is_chosen=True).count() == 1


def test_photo_without_a_person_offers_a_standard_pose(samples_dir, sync_queue):
    shoot = create(SellerFactory(), samples_dir / "garments" / "flatlay_dress.jpg")
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.MASK_REVIEW
    analysis = shoot.photos.get().analyses.get()
    assert NO_POSE_FLAG in analysis.flags and analysis.low_quality
    with pytest.raises(TransitionNotAllowed, match="standard pose"):
        shoot_confirm_mask(shoot=shoot)
    shoot_use_standard_pose(shoot=shoot)
    latest = shoot.photos.get().analyses.first()
    assert latest.pose_source == PhotoAnalysis.PoseSource.TEMPLATE and latest.pose_image
    shoot = shoot_confirm_mask(shoot=Shoot.objects.get(pk=shoot.pk))
    assert shoot.status == ShootStatus.FACE_SELECTION


def applied(correction: MaskCorrection) -> MaskVersion:
    """The mask version the (sync mode) analysis worker made from a correction."""
    correction.refresh_from_db()
    assert correction.status == MaskCorrection.Status.DONE, correction.error
    return correction.result


def test_exclude_and_include_strokes_are_hard_constraints_and_versions_are_kept(
    samples_dir, sync_queue
):
    shoot = create(SellerFactory(), samples_dir / "persons" / "street_0223.jpg")
    photo = ShootPhoto.objects.get(shoot=shoot)
    first = open_mask(photo.masks.get(is_chosen=True).mask)
    ys, xs = np.nonzero(first)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    # Exclude a horizontal band through the middle of the garment.
    stroke = [[float(x), float(cy)] for x in range(int(xs.min()), int(xs.max()) + 1, 4)]
    v2 = applied(mask_correct(photo=photo, exclude_strokes=[stroke], brush_radius=6))
    second = open_mask(v2.mask)
    assert v2.version == 2 and v2.is_chosen and v2.source == MaskVersion.Source.CORRECTED
    assert second[cy, cx] == 0
    assert second[cy - 3 : cy + 4, int(xs.min()) : int(xs.max())].max() == 0
    # Include a point in the background corner: it becomes garment.
    v3 = applied(mask_correct(photo=photo, include_strokes=[[[5.0, 5.0]]], brush_radius=4))
    third = open_mask(v3.mask)
    assert third[5, 5] == 255 and third[cy, cx] == 0  # the earlier exclusion is kept
    assert photo.masks.count() == 3
    assert photo.masks.filter(is_chosen=True).get().version == 3
    mask_choose_version(mask=photo.masks.get(version=1))
    assert photo.masks.get(is_chosen=True).version == 1
    assert shoot.events.filter(note__startswith="Mask corrected").count() == 2


def test_malformed_strokes_are_refused(samples_dir, sync_queue):
    shoot = create(SellerFactory(), samples_dir / "persons" / "street_0223.jpg")
    photo = shoot.photos.get()
    for bad in ([["a", "b"]], "not a list", [[]]):
        with pytest.raises(InvalidCorrection):
            mask_correct(photo=photo, exclude_strokes=[bad] if bad != "not a list" else bad)
    assert photo.masks.count() == 1


def _png(mode: str, size=(64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, format="PNG")
    return out.getvalue()


def test_one_bad_file_refuses_the_whole_upload_and_stores_nothing(
    samples_dir, settings, sync_queue
):
    media = Path(settings.MEDIA_ROOT)
    before = {p for p in media.rglob("*") if p.is_file()}
    good = upload(samples_dir / "persons" / "street_0223.jpg")
    bad = SimpleUploadedFile("dress.jpg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    with pytest.raises(UploadRejected) as refused:
        shoot_create(
            seller=SellerFactory(),
            sku="S",
            title="T",
            category="dress",
            scene="studio_white",
            files=[good, bad],
        )
    [(name, reason)] = refused.value.errors
    assert name == "dress.jpg" and "not a JPEG, PNG or WebP image" in reason
    assert not Shoot.objects.exists()
    assert {p for p in media.rglob("*") if p.is_file()} == before
