"""Faults in generation: a gpu worker SIGKILLed mid-job loses nothing and duplicates nothing."""

from __future__ import annotations

import pytest

from core.queues import fetch_job
from generation.models import Asset, GenerationJob
from generation.reconcile import job_state, reconcile
from generation.services import shoot_start_generation
from seller.models import ShootStatus
from tests.conftest import wait_for
from tests.factories import FaceFactory
from tests.generation.test_runner import confirmed_shoot

pytestmark = pytest.mark.django_db(transaction=True)

SLOW = {"steps": 60, "max_side": 128, "video": False}


def test_gpu_worker_killed_mid_job_is_recovered_without_lost_or_duplicate_assets(
    samples_dir, settings, tiny_models, start_worker
):
    shoot = confirmed_shoot(samples_dir, settings)
    run = shoot_start_generation(shoot=shoot, faces=[FaceFactory()], run_settings=SLOW)
    job = run.jobs.get()
    first = start_worker("gpu", burst=False)

    def running_with_progress() -> bool:
        job.refresh_from_db()
        return job.status == GenerationJob.Status.RUNNING and job.progress_step >= 2

    wait_for(running_with_progress, timeout=180, message="the job to be mid-way")
    first.kill()
    assert job_state(job.rq_job_id) == "abandoned"

    report = reconcile()
    job.refresh_from_db()
    assert report.reenqueued == [f"job {job.pk}"]
    assert job.status == GenerationJob.Status.QUEUED and job.attempts == 2
    assert fetch_job(job.rq_job_id).get_status() == "queued"

    second = start_worker("gpu", burst=True)
    assert second.wait(timeout=300) == 0, second.log()
    job.refresh_from_db()
    shoot.refresh_from_db()
    assert job.status == GenerationJob.Status.SUCCEEDED
    assert shoot.status == ShootStatus.SELLER_REVIEW
    assert Asset.objects.filter(job=job).count() == 1  # exactly one image, no duplicate


def test_late_result_of_a_superseded_attempt_is_dropped(samples_dir, settings, tiny_models):
    """The old attempt wakes up after the reconciler gave the job a new one: it cannot write."""
    from generation.runner import run_generation_job
    from generation.services import generation_job_reenqueue

    shoot = confirmed_shoot(samples_dir, settings)
    run = shoot_start_generation(shoot=shoot, faces=[FaceFactory()], run_settings=SLOW)
    job = run.jobs.get()
    generation_job_reenqueue(job=job, note="test: lost")  # attempt 2 now owns the job
    run_generation_job(job_id=job.pk, attempt=1)  # the stale attempt
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.QUEUED and job.attempts == 2
    assert not Asset.objects.filter(job=job).exists()
