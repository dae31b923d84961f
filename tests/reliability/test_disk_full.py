"""The media disk fills up: every stage fails with a clear message, keeps no half-written file
and no row pointing at a missing one, and goes on normally once space is freed.

MEDIA_ROOT is a real 8 MB tmpfs (``small_media``), filled with ballast so that a write fails
with a real ENOSPC, at a chosen point (nothing fits / the first file fits, the next one not).
The job bodies run in-process: the same code an RQ worker runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core import files as imagefiles
from generation.models import Asset, GenerationJob
from generation.services import shoot_retry_generation, shoot_start_generation
from seller import analysis
from seller.models import MaskVersion, PhotoAnalysis, Shoot, ShootPhoto, ShootStatus
from seller.services import shoot_retry_analysis
from seller.uploads import UploadFailed
from tests.factories import FaceFactory
from tests.generation.test_runner import FAST, confirmed_shoot
from tests.reliability.appside import django_query, media_consistency
from tests.reliability.conftest import BALLAST_DIR
from tests.support.shoots import upload_shoot

pytestmark = pytest.mark.django_db(transaction=True)

PHOTO = "street_0223.jpg"
PAGE = 4096


def _pages(size: int) -> int:
    return -(-size // PAGE) * PAGE


def _upload(samples_dir: Path) -> Shoot:
    return upload_shoot(
        samples_dir / "persons" / PHOTO, sku="DISK-1", title="Floral dress", category="dress"
    )


def _consistent(small_media) -> None:
    report = media_consistency(django_query, small_media.path, ignore=(BALLAST_DIR,))
    assert report["orphans"] == [] and report["missing"] == [], report


def test_upload_that_does_not_fit_is_refused_with_nothing_kept(small_media, samples_dir, settings):
    original = (samples_dir / "persons" / PHOTO).read_bytes()
    # Room for the original but not for the working PNG: the second write dies half-way.
    small_media.fill(leave=_pages(len(original)) + 64 * 1024)

    with pytest.raises(UploadFailed, match="storage full"):
        _upload(samples_dir)

    assert not Shoot.objects.exists() and not ShootPhoto.objects.exists()
    assert small_media.files() == []  # neither the original nor the partial PNG is left

    small_media.empty()
    settings.QUEUE_MODE = "sync"  # the same upload now goes all the way to mask review
    shoot = _upload(samples_dir)
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.MASK_REVIEW, shoot.last_error
    _consistent(small_media)


@pytest.mark.parametrize(
    ("leave", "stored_before_failure"),
    [(0, 0), (12 * 1024, 1)],  # the first mask PNG is ~5 KB, the second ~8 KB
    ids=["nothing-fits", "first-file-fits"],
)
def test_analysis_results_that_do_not_fit_fail_the_shoot_clearly_and_it_can_be_retried(
    leave, stored_before_failure, small_media, samples_dir, settings, redis_conn, monkeypatch
):
    settings.QUEUE_MODE = "rq"  # upload now; the job body runs below, as the worker would
    shoot = _upload(samples_dir)
    uploaded = small_media.files()
    assert len(uploaded) == 2
    small_media.fill(leave=leave)
    stored: list[str] = []
    real_store = imagefiles.store

    def recording_store(*args, **kwargs) -> str:
        name = real_store(*args, **kwargs)
        stored.append(name)
        return name

    # every write of the job goes through core.files.store (StoredFiles.store calls it)
    monkeypatch.setattr(imagefiles, "store", recording_store)

    analysis.run_analysis(shoot_id=shoot.pk, attempt=shoot.analysis_attempts)

    # The failure hit where this case meant it to (not before the first write, or after all).
    assert len(stored) == stored_before_failure, stored

    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.ANALYSIS_FAILED
    assert "could not be saved" in shoot.last_error and "storage" in shoot.last_error
    assert not PhotoAnalysis.objects.filter(photo__shoot=shoot).exists()
    assert not MaskVersion.objects.filter(photo__shoot=shoot).exists()
    assert small_media.files() == uploaded  # no mask, pose or partial file left

    small_media.empty()
    settings.QUEUE_MODE = "sync"
    shoot_retry_analysis(shoot=shoot)
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.MASK_REVIEW, shoot.last_error
    photo = shoot.photos.get()
    assert photo.analyses.count() == 1 and photo.masks.filter(is_chosen=True).count() == 1
    _consistent(small_media)


def test_generated_asset_that_does_not_fit_fails_the_job_clearly_and_can_be_retried(
    small_media, samples_dir, settings, tiny_models
):
    shoot = confirmed_shoot(samples_dir, settings, name=PHOTO)  # upload + analysis on the tmpfs
    before = small_media.files()
    small_media.fill(leave=64 * 1024)  # the image PNG starts to be written and cannot finish

    settings.QUEUE_MODE = "sync"
    shoot_start_generation(shoot=shoot, faces=[FaceFactory()], run_settings=FAST)

    job = GenerationJob.objects.get(run__shoot=shoot)
    shoot.refresh_from_db()
    assert job.status == GenerationJob.Status.FAILED and job.error_code == "storage", job.error
    assert "could not be saved" in job.error
    assert shoot.status == ShootStatus.GENERATION_FAILED and shoot.last_error == job.error
    assert not Asset.objects.filter(job__run__shoot=shoot).exists()
    assert small_media.files() == before

    small_media.empty()
    shoot_retry_generation(shoot=shoot)
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.SELLER_REVIEW, shoot.last_error
    assert Asset.objects.filter(job__run__shoot=shoot).count() == 1
    _consistent(small_media)
