"""Automatic checks of stored assets (ORM rows + real image files), and the default-queue job."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from core.queues import fetch_job, get_queue
from facelibrary.models import FaceReference
from generation.inference import composite
from generation.inference.qa_metrics import face_embedding
from generation.models import Asset
from qa import checks
from qa.models import AssetCheck
from qa.models import CheckName as C
from qa.services import checks_job_id, run_checks_for_asset, schedule_asset_checks
from seller.models import ShootStatus
from seller.review import asset_seller_approve
from tests.conftest import wait_for
from tests.factories import FaceFactory, shoot_in_status
from tests.qa.factories import add_photo, make_asset, parsing_sample

from .media import altered_garment, mp4_bytes, shifted_frames

pytestmark = pytest.mark.django_db


def _rendered(photo: Image.Image, mask: np.ndarray) -> Image.Image:
    """A stand-in for a generated image: the scene re-lit (so every pixel outside the garment
    differs), with the real garment pasted back exactly like the engine does."""
    relit = ImageEnhance.Brightness(photo).enhance(1.12)
    return composite.paste_garment(photo, relit, mask)


def _face_with_reference(image: Image.Image):
    face = FaceFactory()
    FaceReference.objects.create(
        face=face,
        image="refs/x.png",
        thumbnail="refs/x.png",
        is_primary=True,
        embedding=face_embedding(image),
    )
    return face


@pytest.fixture
def scene(samples_dir):
    """A shoot in seller review with a real photo and its garment mask, and the model's face
    (the same person) in the face library."""
    photo, mask = parsing_sample(samples_dir, "0002")
    shoot = shoot_in_status(ShootStatus.SELLER_REVIEW)
    add_photo(shoot, photo, mask)
    # the library photo: the model's face cropped and enlarged, like a curator's upload
    face = _face_with_reference(photo.crop((211, 36, 367, 192)).resize((468, 468)))
    return shoot, photo, mask, face


def _results(asset: Asset) -> dict[str, AssetCheck]:
    return {c.name: c for c in AssetCheck.objects.filter(asset=asset)}


def test_unaltered_paste_back_passes_every_check(scene):
    shoot, photo, mask, face = scene
    asset = make_asset(shoot, image=_rendered(photo, mask), face=face)
    assert run_checks_for_asset(asset_id=asset.pk) == len(checks.IMAGE_NAMES)
    found = _results(asset)
    assert set(found) == set(checks.IMAGE_NAMES)
    failing = {name: (c.score, c.flags) for name, c in found.items() if c.passed is not True}
    assert failing == {}
    garment = found[C.GARMENT_CHANGED]
    assert garment.score == 0 and garment.details["changed_pixels_exact"] == 0
    assert (garment.min_value, garment.max_value) == (None, 0.002)  # stored with its threshold
    assert found[C.FACE_IDENTITY].score < 0.45


def test_altered_garment_is_caught(scene):
    shoot, photo, mask, face = scene
    asset = make_asset(shoot, image=altered_garment(_rendered(photo, mask), mask), face=face)
    run_checks_for_asset(asset_id=asset.pk)
    found = _results(asset)
    assert found[C.GARMENT_CHANGED].passed is False
    assert found[C.GARMENT_CHANGED].details["changed_pixels_exact"] >= 1600
    assert found[C.FACE_IDENTITY].passed is True  # the rest of the picture is fine


def test_someone_elses_face_is_a_mismatch(scene, samples_dir):
    shoot, photo, mask, _ = scene
    stranger = _face_with_reference(Image.open(samples_dir / "faces/face07.png"))
    asset = make_asset(shoot, image=_rendered(photo, mask), face=stranger)
    run_checks_for_asset(asset_id=asset.pk)
    identity = _results(asset)[C.FACE_IDENTITY]
    assert identity.passed is False and identity.score > 0.6


def test_no_face_is_flagged_and_no_reference_is_not_applicable(scene, samples_dir):
    shoot, photo, mask, _ = scene
    flatlay = Image.open(samples_dir / "garments/flatlay_dress.jpg").convert("RGB")
    no_face = make_asset(shoot, image=flatlay.resize(photo.size), face=FaceFactory())
    no_reference = make_asset(shoot, image=_rendered(photo, mask), face=FaceFactory())
    run_checks_for_asset(asset_id=no_face.pk)
    run_checks_for_asset(asset_id=no_reference.pk)
    missing = _results(no_face)[C.FACE_IDENTITY]
    assert (missing.passed, missing.flags) == (False, ["no_face"])
    unknown = _results(no_reference)[C.FACE_IDENTITY]
    assert (unknown.passed, unknown.flags) == (None, ["no_reference"])


def test_video_checks_on_a_real_clip(scene, samples_dir):
    shoot, photo, _mask, face = scene
    steady = mp4_bytes(shifted_frames(photo, 8))
    other, _ = parsing_sample(samples_dir, "0011")
    swapped = mp4_bytes(shifted_frames(photo, 4) + shifted_frames(other.resize(photo.size), 4))
    good = make_asset(shoot, kind=Asset.Kind.VIDEO, video=steady, image=photo, face=face)
    bad = make_asset(shoot, kind=Asset.Kind.VIDEO, video=swapped, image=photo, face=face)
    run_checks_for_asset(asset_id=good.pk)
    run_checks_for_asset(asset_id=bad.pk)
    ok, broken = _results(good), _results(bad)
    assert set(ok) == set(checks.VIDEO_NAMES)
    assert ok[C.VIDEO_GARMENT].passed and ok[C.VIDEO_IDENTITY].passed
    assert ok[C.FACE_IDENTITY].passed
    assert broken[C.VIDEO_GARMENT].passed is False
    assert broken[C.VIDEO_IDENTITY].passed is False


def test_an_unreadable_asset_records_errors_instead_of_crashing(scene):
    shoot, *_ = scene
    asset = make_asset(shoot)
    Asset.objects.filter(pk=asset.pk).update(file="assets/missing.png")
    run_checks_for_asset(asset_id=asset.pk)
    found = _results(asset)
    assert set(found) == set(checks.IMAGE_NAMES)
    assert all(c.passed is None and c.flags == ["error"] for c in found.values())
    assert all(c.errored and c.verdict == "error" for c in found.values())


def test_a_shoot_without_mask_still_gets_the_other_checks(samples_dir):
    photo, _ = parsing_sample(samples_dir, "0002")
    shoot = shoot_in_status(ShootStatus.SELLER_REVIEW)
    add_photo(shoot, photo, None)
    asset = make_asset(shoot, image=photo)
    run_checks_for_asset(asset_id=asset.pk)
    found = _results(asset)
    assert found[C.GARMENT_CHANGED].flags == ["no_garment_mask"]
    assert found[C.SHARPNESS].passed is True


def test_rerunning_replaces_the_rows(scene):
    shoot, photo, mask, face = scene
    asset = make_asset(shoot, image=_rendered(photo, mask), face=face)
    run_checks_for_asset(asset_id=asset.pk)
    run_checks_for_asset(asset_id=asset.pk)
    assert AssetCheck.objects.filter(asset=asset).count() == len(checks.IMAGE_NAMES)


def test_reference_embedding_prefers_the_stored_one():
    class Face:
        embedding = [0.5] * 128

    assert checks.reference_embedding_for(Face()) == [0.5] * 128
    assert checks.reference_embedding_for(None) is None


@pytest.mark.django_db(transaction=True)
def test_seller_approval_runs_the_checks_on_the_default_queue(
    samples_dir, start_worker, redis_conn
):
    photo, mask = parsing_sample(samples_dir, "0002")
    shoot = shoot_in_status(ShootStatus.SELLER_REVIEW)
    add_photo(shoot, photo, mask)
    asset = make_asset(shoot, image=_rendered(photo, mask))
    asset_seller_approve(asset=asset, actor=shoot.seller.user)
    # enqueued after commit, on the default queue, under a deterministic id
    assert get_queue("default").job_ids == [checks_job_id(asset.pk)]
    # scheduling the same asset again (e.g. when the shoot goes to QA) is a no-op
    schedule_asset_checks(asset_ids=[asset.pk])
    assert get_queue("default").count == 1

    worker = start_worker("default", burst=True)
    assert worker.wait(timeout=300) == 0, worker.log()
    assert fetch_job(checks_job_id(asset.pk)).get_status() == "finished", worker.log()
    found = wait_for(lambda: _results(asset), message="check rows")
    assert found[C.GARMENT_CHANGED].passed is True
