"""Redis restarts (losing every queued job) and outages: the database brings the work back."""

from __future__ import annotations

import pytest

from core.queues import get_queue
from generation.reconcile import reconcile
from seller.models import Shoot, ShootStatus
from tests.support.shoots import upload_shoot

pytestmark = pytest.mark.django_db(transaction=True)


def _upload(samples_dir) -> Shoot:
    return upload_shoot(
        samples_dir / "persons" / "shop_tank.jpg", sku="R-1", title="Tank", category="top"
    )


def test_jobs_lost_in_a_redis_restart_are_recovered_and_finish(
    samples_dir, private_redis, start_worker
):
    shoot = _upload(samples_dir)
    assert get_queue("analysis").job_ids == [shoot.analysis_job_id]
    private_redis.restart()  # the queued job is gone
    assert get_queue("analysis").job_ids == []

    reconcile()
    shoot.refresh_from_db()
    assert shoot.analysis_attempts == 2 and get_queue("analysis").job_ids == [shoot.analysis_job_id]

    worker = start_worker("analysis", burst=True, REDIS_URL=private_redis.url)
    assert worker.wait(timeout=240) == 0, worker.log()
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.MASK_REVIEW, shoot.last_error


def test_upload_while_redis_is_down_is_kept_and_enqueued_once_redis_is_back(
    samples_dir, private_redis, start_worker
):
    private_redis.kill()
    shoot = _upload(samples_dir)  # the request succeeds; the enqueue failure is logged
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.ANALYZING

    with pytest.raises(Exception):  # noqa: B017 - any connection error: Redis is still down
        reconcile()
    private_redis.start()
    reconcile()
    worker = start_worker("analysis", burst=True, REDIS_URL=private_redis.url)
    assert worker.wait(timeout=240) == 0, worker.log()
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.MASK_REVIEW, shoot.last_error
