"""Redis restarts (losing every queued job) and outages: the database brings the work back."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from config.queues import get_queue
from generation.reconcile import reconcile
from seller.models import Shoot, ShootStatus
from seller.uploads import shoot_create
from tests.factories import SellerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _upload(samples_dir) -> Shoot:
    path = samples_dir / "persons" / "shop_tank.jpg"
    return shoot_create(
        seller=SellerFactory(),
        sku="R-1",
        title="Tank",
        category="top",
        scene="studio_white",
        files=[SimpleUploadedFile(path.name, path.read_bytes())],
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
