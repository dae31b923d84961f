"""Real RQ worker processes and the reconciler: no shoot stays stuck when a worker dies."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.queues import enqueue_now, fetch_job, get_queue, get_redis
from facelibrary.models import FaceReference
from facelibrary.services import reference_upload
from generation.inference.skeleton import standard_pose
from generation.reconcile import job_state, reconcile
from generation.workers import read_model_stats
from seller.masks import mask_correct
from seller.models import MaskCorrection, Shoot, ShootEvent, ShootStatus
from seller.services import shoot_start_analysis
from tests.conftest import wait_for
from tests.facelibrary.factories import DraftFaceFactory
from tests.factories import SellerFactory, shoot_in_status
from tests.seller.test_pages_builders import analysed_shoot

pytestmark = pytest.mark.django_db(transaction=True)


def _analyzing_shoot_running(func_path: str, args: tuple) -> Shoot:
    """A shoot in ``analyzing`` whose current job id runs ``func_path`` (a stand-in job)."""
    shoot = shoot_start_analysis(shoot=shoot_in_status(ShootStatus.UPLOADED))
    # Replace the real analysis job with a slow one under the same deterministic id.
    get_queue("analysis").remove(shoot.analysis_job_id)
    fetch_job(shoot.analysis_job_id).delete()
    enqueue_now("analysis", func_path, args, shoot.analysis_job_id)
    return shoot


def test_real_worker_process_runs_a_job_end_to_end(start_worker, redis_conn):
    enqueue_now("default", "tests.support.jobs.use_cached_model", (1.0,), "e2e-job")
    worker = start_worker("default", burst=True)
    assert worker.wait(timeout=120) == 0, worker.log()
    job = fetch_job("e2e-job")
    assert job.get_status() == "finished"
    assert isinstance(job.return_value(), float)


def test_model_keeping_worker_loads_its_model_once_for_many_jobs(start_worker, redis_conn):
    for n in range(5):
        enqueue_now("gpu", "tests.support.jobs.use_cached_model", (float(n),), f"model-job-{n}")
    worker = start_worker("gpu", burst=True)
    assert worker.wait(timeout=120) == 0, worker.log()
    assert all(fetch_job(f"model-job-{n}").get_status() == "finished" for n in range(5))
    assert read_model_stats(get_redis(), worker.name) == {"test-linear": 1}


def test_worker_killed_mid_job_is_detected_and_the_shoot_reenqueued(start_worker, redis_conn):
    shoot = _analyzing_shoot_running("tests.support.jobs.sleep_job", (60,))
    worker = start_worker("analysis", burst=False)
    wait_for(
        lambda: fetch_job(shoot.analysis_job_id).get_status() == "started", message="job start"
    )
    assert job_state(shoot.analysis_job_id) == "alive"
    worker.kill()  # SIGKILL: no cleanup, the job stays "started" in Redis

    assert job_state(shoot.analysis_job_id) == "abandoned"
    report = reconcile()
    shoot.refresh_from_db()
    assert report.reenqueued == [f"shoot {shoot.pk}"]
    assert shoot.status == ShootStatus.ANALYZING
    assert shoot.analysis_attempts == 2
    assert shoot.analysis_job_id == f"shoot-{shoot.pk}-analysis-2"
    assert shoot.analysis_job_id in get_queue("analysis").job_ids
    note = ShootEvent.objects.filter(shoot=shoot).last().note
    assert "abandoned" in note and "re-enqueued" in note


def test_job_removed_from_redis_is_reenqueued(redis_conn):
    shoot = shoot_start_analysis(shoot=shoot_in_status(ShootStatus.UPLOADED))
    redis_conn.flushdb()  # Redis restarted without persistence
    assert job_state(shoot.analysis_job_id) == "missing"
    reconcile()
    shoot.refresh_from_db()
    assert shoot.analysis_attempts == 2
    assert get_queue("analysis").job_ids == [shoot.analysis_job_id]


def test_shoot_is_failed_with_a_reason_once_attempts_are_spent(settings, redis_conn):
    settings.JOB_MAX_ATTEMPTS = 1
    shoot = shoot_start_analysis(shoot=shoot_in_status(ShootStatus.UPLOADED))
    redis_conn.flushdb()
    report = reconcile()
    shoot.refresh_from_db()
    assert report.failed == [f"shoot {shoot.pk}"]
    assert shoot.status == ShootStatus.ANALYSIS_FAILED
    assert "did not complete after 1 attempts" in shoot.last_error


def test_live_queued_job_is_left_alone(redis_conn):
    shoot = shoot_start_analysis(shoot=shoot_in_status(ShootStatus.UPLOADED))
    report = reconcile()
    shoot.refresh_from_db()
    assert report.checked == 1 and not report.reenqueued and not report.failed
    assert shoot.analysis_attempts == 1


def test_reconciler_runs_as_a_job_on_a_real_worker(start_worker, redis_conn):
    shoot = shoot_start_analysis(shoot=shoot_in_status(ShootStatus.UPLOADED))
    get_queue("analysis").empty()  # the job is lost
    enqueue_now("default", "generation.jobs.reconcile", (), "reconcile-now")
    worker = start_worker("default", burst=True)
    assert worker.wait(timeout=120) == 0, worker.log()
    shoot.refresh_from_db()
    assert shoot.analysis_attempts == 2
    assert fetch_job("reconcile-now").return_value()["reenqueued"] == [f"shoot {shoot.pk}"]


# --- the seller's mask corrections ---------------------------------------------------------------


def _pending_correction() -> MaskCorrection:
    """A seller's correction, recorded and queued on the analysis queue (its job not run)."""
    shoot = analysed_shoot(SellerFactory())
    photo = shoot.photos.get()
    pose = standard_pose(shoot.category, (photo.width, photo.height))
    photo.analyses.update(keypoints=pose.to_dict())  # a real pose record for the worker
    return mask_correct(photo=photo, exclude_strokes=[[[5, 5], [40, 8]]], brush_radius=6)


def test_lost_mask_correction_is_reenqueued_and_then_applied(start_worker, redis_conn):
    correction = _pending_correction()
    report = reconcile()  # its job is queued: nothing to repair
    assert report.checked == 1 and not report.reenqueued and not report.failed

    redis_conn.flushdb()  # Redis restarted without persistence: the job is gone
    assert job_state(correction.job_id) == "missing"
    report = reconcile()
    correction.refresh_from_db()
    assert report.reenqueued == [f"mask correction {correction.pk}"]
    assert correction.status == MaskCorrection.Status.PENDING and correction.attempts == 2
    assert correction.job_id == f"mask-correction-{correction.pk}-2"
    assert get_queue("analysis").job_ids == [correction.job_id]

    worker = start_worker("analysis", burst=True)
    assert worker.wait(timeout=180) == 0, worker.log()
    correction.refresh_from_db()
    assert correction.status == MaskCorrection.Status.DONE, correction.error
    assert correction.result.version == 2 and correction.result.is_chosen
    assert correction.result.hints["exclude"][0]["radius"] == 6.0


def test_mask_correction_fails_with_a_reason_the_seller_sees_once_attempts_are_spent(
    client, settings, redis_conn
):
    settings.JOB_MAX_ATTEMPTS = 1
    correction = _pending_correction()
    redis_conn.flushdb()
    report = reconcile()
    correction.refresh_from_db()
    assert report.failed == [f"mask correction {correction.pk}"]
    assert correction.status == MaskCorrection.Status.FAILED and correction.finished_at
    assert "could not be applied after 1 attempts" in correction.error
    assert "Paint it again." in correction.error

    photo = correction.photo
    client.force_login(photo.shoot.seller.user)
    poll = reverse("seller:mask_panel", args=[photo.shoot_id, photo.pk])
    page = client.get(f"{poll}?correction={correction.pk}", HTTP_HX_REQUEST="true")
    assert "could not be applied after 1 attempts" in page.content.decode()
    assert "hx-trigger" not in page.content.decode()  # no more polling: the editor is back


# --- face reference photos waiting for the quality gate ------------------------------------------


def _pending_reference(samples_dir) -> FaceReference:
    """A reference photo uploaded through the admin: stored, its gate job queued (not run)."""
    data = (samples_dir / "faces" / "face04.png").read_bytes()
    upload = SimpleUploadedFile("portrait.png", data, content_type="image/png")
    return reference_upload(face=DraftFaceFactory(), upload=upload, actor=None)


def test_lost_gate_job_is_reenqueued_and_the_worker_then_checks_the_photo(
    start_worker, redis_conn, samples_dir
):
    reference = _pending_reference(samples_dir)
    assert get_queue("analysis").job_ids == [reference.gate_job_id]
    redis_conn.flushdb()  # Redis restarted without persistence: the job is gone
    report = reconcile()
    reference.refresh_from_db()
    assert report.reenqueued == [f"face reference {reference.pk}"]
    assert reference.gate_pending and reference.gate_attempts == 2
    assert get_queue("analysis").job_ids == [f"face-reference-{reference.pk}-gate-2"]

    worker = start_worker("analysis", burst=True)
    assert worker.wait(timeout=180) == 0, worker.log()
    reference.refresh_from_db()
    assert reference.gate_status == FaceReference.GateStatus.CHECKED
    assert reference.gate_passed and reference.is_primary, reference.failure_messages


def test_gate_that_never_ran_fails_with_a_reason_once_attempts_are_spent(
    settings, redis_conn, samples_dir
):
    settings.JOB_MAX_ATTEMPTS = 1
    reference = _pending_reference(samples_dir)
    redis_conn.flushdb()
    report = reconcile()
    reference.refresh_from_db()
    assert report.failed == [f"face reference {reference.pk}"]
    assert reference.gate_status == FaceReference.GateStatus.ERROR and not reference.gate_passed
    (message,) = reference.failure_messages
    assert message.startswith("The quality gate did not complete after 1 attempts")
