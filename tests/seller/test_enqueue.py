"""Jobs are enqueued only after commit, with deterministic unique ids."""

from __future__ import annotations

import pytest
from django.db import transaction

from core.queues import enqueue_now, fetch_job, get_queue
from seller.models import Shoot, ShootStatus
from seller.services import shoot_start_analysis
from tests.factories import shoot_in_status

pytestmark = pytest.mark.django_db(transaction=True)


def test_rolled_back_transaction_enqueues_nothing(redis_conn):
    shoot = shoot_in_status(ShootStatus.UPLOADED)
    with pytest.raises(RuntimeError), transaction.atomic():
        shoot_start_analysis(shoot=shoot)
        assert get_queue("analysis").count == 0  # not before commit either
        raise RuntimeError("request failed after the service ran")
    assert get_queue("analysis").count == 0
    assert Shoot.objects.get(pk=shoot.pk).status == ShootStatus.UPLOADED


def test_committed_transaction_enqueues_once_with_deterministic_id(redis_conn):
    shoot = shoot_in_status(ShootStatus.UPLOADED)
    shoot = shoot_start_analysis(shoot=shoot)
    job_id = f"shoot-{shoot.pk}-analysis-1"
    assert shoot.analysis_job_id == job_id
    assert get_queue("analysis").job_ids == [job_id]
    job = fetch_job(job_id)
    assert job.func_name == "seller.jobs.analyze_shoot"
    assert job.args == (shoot.pk, 1)


def test_enqueueing_the_same_job_id_twice_is_a_no_op(redis_conn):
    enqueue_now("default", "tests.support.jobs.sleep_job", (0,), "same-id")
    enqueue_now("default", "tests.support.jobs.sleep_job", (0,), "same-id")
    assert get_queue("default").job_ids == ["same-id"]


def test_redis_down_at_commit_does_not_fail_the_request(settings, redis_conn):
    """The shoot is committed; the reconciler recovers the job later (see test_reconcile)."""
    settings.RQ_QUEUES = {
        name: {**conf, "URL": "redis://127.0.0.1:1/1"} for name, conf in settings.RQ_QUEUES.items()
    }
    shoot = shoot_in_status(ShootStatus.UPLOADED)
    shoot = shoot_start_analysis(shoot=shoot)
    assert Shoot.objects.get(pk=shoot.pk).status == ShootStatus.ANALYZING
    assert shoot.analysis_job_id == f"shoot-{shoot.pk}-analysis-1"
