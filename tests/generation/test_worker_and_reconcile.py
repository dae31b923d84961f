"""Real RQ worker processes and the reconciler: no shoot stays stuck when a worker dies."""

from __future__ import annotations

import pytest

from config.queues import enqueue_now, fetch_job, get_queue, get_redis
from generation.reconcile import job_state, reconcile
from generation.workers import read_model_stats
from seller.models import Shoot, ShootEvent, ShootStatus
from seller.services import shoot_start_analysis
from tests.conftest import wait_for
from tests.factories import shoot_in_status

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
