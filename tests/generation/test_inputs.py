"""generation.inputs.job_inputs: the runner and the QA checks agree on what a job generated from."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from generation.inference.errors import InferenceError
from generation.inputs import job_inputs
from generation.runner import build_request, job_settings
from qa import admin as qa_admin
from qa import checks
from seller.masks import mask_choose_version
from seller.models import MaskVersion, PhotoAnalysis, Shoot, ShootPhoto, ShootStatus
from tests.factories import shoot_in_status
from tests.qa.factories import add_photo, make_asset, png, store

pytestmark = pytest.mark.django_db

SIZE = (96, 128)


def _mask(left: int) -> np.ndarray:
    mask = np.zeros((SIZE[1], SIZE[0]), dtype=np.uint8)
    mask[20:100, left : left + 30] = 255
    return mask


def _photo(shoot: Shoot, grey: int) -> ShootPhoto:
    """A photo (one flat colour, so each is recognisable) with mask v1 chosen and a pose."""
    photo = add_photo(shoot, Image.new("RGB", SIZE, (grey, grey, grey)), _mask(10))
    PhotoAnalysis.objects.create(
        photo=photo, pose_image=store(png(Image.new("RGB", SIZE, (0, 0, grey))), "png", "analysis")
    )
    return photo


def _add_mask(photo: ShootPhoto, version: int, left: int) -> MaskVersion:
    return MaskVersion.objects.create(
        photo=photo, version=version, mask=store(png(_mask(left)), "png", "masks")
    )


@pytest.fixture
def shoot() -> Shoot:
    """Two photos in mask review; the second photo has a second, not yet chosen, mask version."""
    shoot = shoot_in_status(ShootStatus.MASK_REVIEW)
    _photo(shoot, 60)
    _add_mask(_photo(shoot, 200), 2, left=50)
    return shoot


def _runner_saw(job) -> tuple[np.ndarray, np.ndarray]:
    request = build_request(job, job_settings(job))
    return np.asarray(request.image), np.asarray(request.garment_mask)


def _qa_saw(asset) -> tuple[np.ndarray, np.ndarray]:
    inputs = checks.gather_inputs(asset)
    return np.asarray(inputs.original), inputs.mask


def _assert_both_used(asset, photo: ShootPhoto, mask: MaskVersion) -> None:
    used = job_inputs(asset.job)
    assert (used.photo, used.mask) == (photo, mask)
    expected_image = np.asarray(Image.open(photo.image.path).convert("RGB"))
    expected_mask = np.asarray(Image.open(mask.mask.path).convert("L"))
    for image, garment in (_runner_saw(asset.job), _qa_saw(asset)):
        assert np.array_equal(image, expected_image)
        assert np.array_equal(garment, expected_mask)
    review = SimpleNamespace(asset=asset)  # the QA review page shows the same two files
    assert qa_admin.media_file(review, "original").name == photo.image.name
    assert qa_admin.media_file(review, "mask").name == mask.mask.name


def test_without_recorded_inputs_both_use_the_first_photo_and_its_chosen_mask(shoot):
    first = shoot.photos.first()
    asset = make_asset(shoot)
    _assert_both_used(asset, first, first.masks.get(is_chosen=True))


def test_recorded_inputs_are_what_both_use_after_the_seller_picks_another_mask(shoot):
    second = shoot.photos.last()
    v1, v2 = second.masks.get(version=1), second.masks.get(version=2)
    asset = make_asset(shoot, job_settings={"photo_id": second.pk, "mask_id": v1.pk})

    mask_choose_version(mask=v2)  # the seller now prefers v2; the job was made with v1

    assert second.masks.get(is_chosen=True) == v2
    _assert_both_used(asset, second, v1)


def test_a_recorded_photo_without_a_recorded_mask_uses_its_chosen_mask(shoot):
    second = shoot.photos.last()
    asset = make_asset(shoot)
    asset.job.run.settings = {"photo_id": second.pk}  # recorded on the run: applies to its jobs
    asset.job.run.save(update_fields=["settings"])
    mask_choose_version(mask=second.masks.get(version=2))
    asset.refresh_from_db()
    _assert_both_used(asset, second, second.masks.get(version=2))


def test_stale_or_foreign_recorded_ids_fall_back_to_the_shoot(shoot):
    first, second = shoot.photos.all()
    # a photo id that no longer exists, a mask id of another photo: neither is used
    asset = make_asset(shoot, job_settings={"photo_id": 10**9, "mask_id": second.masks.first().pk})
    _assert_both_used(asset, first, first.masks.get(is_chosen=True))


def test_the_runner_refuses_a_shoot_without_a_chosen_mask_and_the_checks_say_so(shoot):
    first = shoot.photos.first()
    MaskVersion.objects.filter(photo=first).update(is_chosen=False)
    asset = make_asset(shoot)
    with pytest.raises(InferenceError, match="no confirmed mask"):
        build_request(asset.job, job_settings(asset.job))
    inputs = checks.gather_inputs(asset)
    assert inputs.mask is None and inputs.notes == ["no_garment_mask"]
