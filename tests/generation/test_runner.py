"""Generation jobs end to end on tiny local models: real diffusers pipelines, real workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.files import open_mask, open_rgb
from core.queues import get_redis
from generation.inference.composite import erode
from generation.models import Asset, GenerationJob, GenerationRun
from generation.services import (
    generation_job_cancel,
    shoot_retry_generation,
    shoot_start_generation,
)
from generation.workers import read_model_stats
from seller.models import Shoot, ShootStatus
from seller.services import shoot_confirm_mask
from tests.factories import FaceFactory
from tests.support.shoots import upload_shoot

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"steps": 2, "max_side": 128, "video": False}
FAST_VIDEO = {**FAST, "video": True, "video_frames": 3, "video_steps": 2, "video_max_side": 128}


def confirmed_shoot(samples_dir: Path, settings, name: str = "street_0223.jpg") -> Shoot:
    """A real photo uploaded, analysed (in-process) and its mask confirmed."""
    mode = settings.QUEUE_MODE
    settings.QUEUE_MODE = "sync"
    shoot = upload_shoot(
        samples_dir / "persons" / name, sku="SKU-G", title="Floral dress", category="dress"
    )
    settings.QUEUE_MODE = mode
    shoot = shoot_confirm_mask(shoot=Shoot.objects.get(pk=shoot.pk))
    assert shoot.status == ShootStatus.FACE_SELECTION
    return shoot


def test_generation_in_process_produces_image_and_video_with_exact_garment(
    samples_dir, settings, tiny_models
):
    shoot = confirmed_shoot(samples_dir, settings)
    settings.QUEUE_MODE = "sync"
    shoot_start_generation(shoot=shoot, faces=[FaceFactory()], variants=1, run_settings=FAST_VIDEO)
    shoot.refresh_from_db()
    job = GenerationJob.objects.get(run__shoot=shoot)
    assert shoot.status == ShootStatus.SELLER_REVIEW, job.error
    assert job.status == GenerationJob.Status.SUCCEEDED
    assert job.progress_step == job.progress_total == 4  # 2 image steps + 2 video steps
    assert job.model_hashes and job.prompt and job.seconds_per_image > 0
    image = job.assets.get(kind=Asset.Kind.IMAGE)
    video = job.assets.get(kind=Asset.Kind.VIDEO)
    assert video.file.read(12)[4:8] == b"ftyp" and video.poster

    photo = shoot.photos.get()
    original = np.asarray(open_rgb(photo.image))
    result = np.asarray(open_rgb(image.file))
    assert result.shape == original.shape
    garment = erode(open_mask(photo.masks.get(is_chosen=True).mask) > 0, 2)
    assert garment.sum() > 1000
    assert int((original[garment] != result[garment]).any(axis=-1).sum()) == 0
    # ...and the rest of the picture was really regenerated.
    assert (original[~garment] != result[~garment]).any(axis=-1).mean() > 0.5


def test_gpu_worker_process_generates_several_jobs_loading_the_pipeline_once(
    samples_dir, settings, tiny_models, start_worker
):
    shoot = confirmed_shoot(samples_dir, settings)
    shoot_start_generation(
        shoot=shoot, faces=[FaceFactory(), FaceFactory()], variants=2, run_settings=FAST
    )
    worker = start_worker("gpu", burst=True)
    assert worker.wait(timeout=300) == 0, worker.log()
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.SELLER_REVIEW, worker.log()
    assert Asset.objects.filter(job__run__shoot=shoot, kind=Asset.Kind.IMAGE).count() == 4
    loads = read_model_stats(get_redis(), worker.name)
    pipeline_loads = {key: n for key, n in loads.items() if "tiny-sd15" in key}
    assert pipeline_loads and set(pipeline_loads.values()) == {1}, loads


def test_missing_weights_fail_the_job_clearly_and_the_shoot_can_be_retried(
    samples_dir, settings, tiny_models
):
    shoot = confirmed_shoot(samples_dir, settings)
    settings.QUEUE_MODE = "sync"
    shoot_start_generation(
        shoot=shoot, faces=[FaceFactory()], run_settings={**FAST, "model_set": "sd15-missing"}
    )
    shoot.refresh_from_db()
    job = GenerationJob.objects.get(run__shoot=shoot)
    assert job.status == GenerationJob.Status.FAILED and job.error_code == "model_missing"
    assert "sd15-missing" in job.error
    assert shoot.status == ShootStatus.GENERATION_FAILED and shoot.last_error == job.error
    # Once the weights are there (here: a job setting pointing at the installed set) it retries.
    GenerationJob.objects.filter(pk=job.pk).update(settings=FAST, model_set="tiny-sd15")
    shoot_retry_generation(shoot=shoot)
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.SELLER_REVIEW
    assert GenerationRun.objects.filter(shoot=shoot).count() == 2


def test_cancelled_queued_job_ends_cancelled_and_the_run_settles(
    samples_dir, settings, tiny_models
):
    shoot = confirmed_shoot(samples_dir, settings)
    run = shoot_start_generation(shoot=shoot, faces=[FaceFactory()], run_settings=FAST)
    job = run.jobs.get()
    generation_job_cancel(job=job)
    job.refresh_from_db()
    shoot.refresh_from_db()
    assert job.status == GenerationJob.Status.CANCELLED
    assert shoot.status == ShootStatus.GENERATION_FAILED


def _single_job_shoot(samples_dir, settings, **run_settings):
    shoot = confirmed_shoot(samples_dir, settings)
    settings.QUEUE_MODE = "sync"
    shoot_start_generation(
        shoot=shoot, faces=[FaceFactory()], run_settings={**FAST, **run_settings}
    )
    shoot.refresh_from_db()
    return shoot, GenerationJob.objects.get(run__shoot=shoot)


def test_corrupt_weight_file_fails_the_job_with_a_checksum_message(
    samples_dir, settings, tiny_models
):
    import shutil

    corrupt = tiny_models / "tiny-sd15-corrupt"
    if not corrupt.exists():
        shutil.copytree(tiny_models / "tiny-sd15", corrupt)
        weights = next(corrupt.glob("unet/*.safetensors"))
        data = bytearray(weights.read_bytes())
        data[-100:] = bytes(100)  # flip the tail: same size, different content
        weights.write_bytes(bytes(data))
    shoot, job = _single_job_shoot(samples_dir, settings, model_set="tiny-sd15-corrupt")
    assert job.status == GenerationJob.Status.FAILED and job.error_code == "model_checksum"
    assert "unet" in job.error
    assert shoot.status == ShootStatus.GENERATION_FAILED


def test_out_of_memory_fails_the_job_with_advice(samples_dir, settings, tiny_models, monkeypatch):
    from generation.inference.errors import OutOfMemoryError

    def oom(*args, **kwargs):
        raise OutOfMemoryError("The GPU ran out of memory at 1024x1536; retry at a smaller size.")

    monkeypatch.setattr("generation.runner.generate", oom)
    shoot, job = _single_job_shoot(samples_dir, settings)
    assert job.status == GenerationJob.Status.FAILED and job.error_code == "out_of_memory"
    assert "smaller size" in job.error and shoot.status == ShootStatus.GENERATION_FAILED
    monkeypatch.undo()
    shoot_retry_generation(shoot=shoot)
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.SELLER_REVIEW


def test_cancelling_a_running_job_stops_between_steps(
    samples_dir, settings, tiny_models, monkeypatch
):
    """The seller cancels while step 1 is done: the real pipeline stops, nothing is stored."""
    from generation import runner, services

    real_progress = services.generation_job_progress

    def cancel_after_first_step(*, job_id, step, total):
        if step == 1:
            GenerationJob.objects.filter(pk=job_id).update(cancel_requested=True)
        return real_progress(job_id=job_id, step=step, total=total)

    monkeypatch.setattr(runner, "generation_job_progress", cancel_after_first_step)
    shoot, job = _single_job_shoot(samples_dir, settings, steps=6)
    assert job.status == GenerationJob.Status.CANCELLED and job.error_code == "cancelled"
    assert job.progress_step < 6
    assert not job.assets.exists()
    assert shoot.status == ShootStatus.GENERATION_FAILED  # its only job was cancelled


def test_seller_cancels_a_whole_generation_from_the_shoot_page(samples_dir, settings, tiny_models):
    from django.test import Client
    from django.urls import reverse

    shoot = confirmed_shoot(samples_dir, settings)
    run = shoot_start_generation(
        shoot=shoot, faces=[FaceFactory(), FaceFactory()], run_settings=FAST
    )
    client = Client()
    client.force_login(shoot.seller.user)
    response = client.post(reverse("seller:cancel_generation", args=[shoot.pk]))
    assert response.status_code == 302
    assert set(run.jobs.values_list("status", flat=True)) == {GenerationJob.Status.CANCELLED}
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.GENERATION_FAILED
