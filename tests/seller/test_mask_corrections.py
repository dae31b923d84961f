"""Mask corrections go through the analysis worker: the web records them, the page polls.

The segmentation itself (strokes as hard constraints, versions kept) is tested on real photos
in ``test_analysis.py``; here: the request, the queue, the polling panel and the failure cases.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.queues import fetch_job, get_queue
from seller.analysis import CORRECTION_TOO_LATE, run_mask_correction
from seller.masks import CorrectionPending, mask_correct
from seller.models import MaskCorrection, ShootStatus
from seller.selectors import photo_review
from tests.factories import SellerFactory
from tests.seller.test_pages_builders import add_mask, analysed_shoot, place

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
STROKE = json.dumps([[[10, 10], [30, 12]]])


@pytest.fixture
def seller():
    return SellerFactory()


@pytest.fixture
def seller_client(client, seller):
    client.force_login(seller.user)
    return client


@pytest.fixture
def rq_mode(settings, redis_conn):
    settings.QUEUE_MODE = "rq"
    return redis_conn


def post_correction(client, shoot, photo, capture, **extra):
    with capture(execute=True):
        return client.post(
            reverse("seller:mask_correct", args=[shoot.pk, photo.pk]),
            {"exclude_strokes": STROKE, "brush_radius": 6} | extra,
            **HTMX,
        )


def test_a_correction_is_queued_for_the_analysis_worker_and_the_panel_polls(
    seller_client, seller, rq_mode, django_capture_on_commit_callbacks
):
    shoot = analysed_shoot(seller)
    photo = shoot.photos.get()
    response = post_correction(seller_client, shoot, photo, django_capture_on_commit_callbacks)
    correction = MaskCorrection.objects.get(photo=photo)
    page = response.content.decode()
    assert response.status_code == 200
    assert correction.status == MaskCorrection.Status.PENDING
    stroke = {"points": [[10.0, 10.0], [30.0, 12.0]], "radius": 6.0}  # Stroke.to_dict() form
    assert correction.hints == {"include": [], "exclude": [stroke]}
    assert (correction.include_count, correction.exclude_count) == (0, 1)
    assert correction.job_id == f"mask-correction-{correction.pk}-1"
    assert get_queue("analysis").job_ids == [correction.job_id]
    assert fetch_job(correction.job_id).func_name == "seller.jobs.correct_mask"
    assert photo.masks.count() == 1  # nothing made in the web process
    poll = reverse("seller:mask_panel", args=[shoot.pk, photo.pk])
    assert f'hx-get="{poll}?correction={correction.pk}"' in page and 'hx-trigger="every 1s"' in page
    assert "Refining the mask with your corrections" in page
    assert "data-canvas" not in page and "Apply corrections" not in page  # no editing meanwhile


def test_a_second_correction_waits_for_the_first(
    seller_client, seller, rq_mode, django_capture_on_commit_callbacks
):
    shoot = analysed_shoot(seller)
    photo = shoot.photos.get()
    post_correction(seller_client, shoot, photo, django_capture_on_commit_callbacks)
    response = post_correction(seller_client, shoot, photo, django_capture_on_commit_callbacks)
    assert "still being applied" in response.content.decode()
    assert MaskCorrection.objects.filter(photo=photo).count() == 1
    with pytest.raises(CorrectionPending):
        mask_correct(photo=photo, exclude_strokes=[[[1, 1]]])


def test_a_stale_pending_correction_does_not_block_the_next_one(seller, rq_mode):
    """A correction whose job was lost (e.g. Redis restarted) does not lock the photo, even
    where no reconciler runs to re-enqueue it."""
    shoot = analysed_shoot(seller)
    photo = shoot.photos.get()
    lost = mask_correct(photo=photo, exclude_strokes=[[[1, 1]]])
    MaskCorrection.objects.filter(pk=lost.pk).update(
        queued_at=timezone.now() - MaskCorrection.STALE_AFTER - timedelta(seconds=1)
    )
    assert not photo_review(seller, shoot.pk, photo.pk).correcting  # the editor is back
    again = mask_correct(photo=photo, exclude_strokes=[[[2, 2]]])
    lost.refresh_from_db()
    assert lost.status == MaskCorrection.Status.FAILED and "took too long" in lost.error
    assert again.status == MaskCorrection.Status.PENDING
    assert again.hints["exclude"] == [{"points": [[2.0, 2.0]], "radius": 12.0}]


def test_polling_shows_the_new_version_or_the_failure(seller_client, seller):
    shoot = analysed_shoot(seller)
    photo = shoot.photos.get()
    version = add_mask(photo, version=2)
    done = MaskCorrection.objects.create(
        photo=photo, status=MaskCorrection.Status.DONE, result=version
    )
    poll = reverse("seller:mask_panel", args=[shoot.pk, photo.pk])
    page = seller_client.get(f"{poll}?correction={done.pk}", **HTMX).content.decode()
    assert "Mask version 2 made from your corrections." in page
    assert "hx-trigger" not in page and "data-canvas" in page  # polling stopped, editing back
    failed = MaskCorrection.objects.create(
        photo=photo, status=MaskCorrection.Status.FAILED, error="The storage is full."
    )
    page = seller_client.get(f"{poll}?correction={failed.pk}", **HTMX).content.decode()
    assert "The storage is full." in page and 'role="alert"' in page
    pending = MaskCorrection.objects.create(photo=photo)
    page = seller_client.get(f"{poll}?correction={pending.pk}", **HTMX).content.decode()
    assert f"?correction={pending.pk}" in page and "Refining the mask" in page


def test_the_mask_is_not_confirmed_while_a_correction_is_applied(seller_client, seller):
    shoot = analysed_shoot(seller)
    MaskCorrection.objects.create(photo=shoot.photos.get())
    response = seller_client.post(reverse("seller:mask_confirm", args=[shoot.pk]), follow=True)
    assert "still being applied" in response.content.decode()
    shoot.refresh_from_db()
    assert shoot.status == ShootStatus.MASK_REVIEW


def test_the_worker_does_not_apply_a_correction_once_the_mask_was_confirmed(seller):
    shoot = analysed_shoot(seller)
    photo = shoot.photos.get()
    correction = MaskCorrection.objects.create(photo=photo, hints={"exclude": [], "include": []})
    place(shoot, ShootStatus.FACE_SELECTION)
    run_mask_correction(correction_id=correction.pk)
    correction.refresh_from_db()
    assert correction.status == MaskCorrection.Status.FAILED
    assert correction.error == CORRECTION_TOO_LATE and correction.finished_at
    assert photo.masks.count() == 1
    run_mask_correction(correction_id=correction.pk)  # a second run of the job: skipped
    assert photo.masks.count() == 1
