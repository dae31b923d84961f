"""QA in Django admin: who may see and decide, the review page, bulk actions, filters, stats."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from generation.models import Asset
from qa.models import AssetCheck, AssetRating, QAReview
from qa.models import CheckName as C
from seller.models import Shoot, ShootStatus
from seller.review import asset_rate, asset_seller_approve, shoot_send_to_qa
from tests.factories import FaceFactory, UserFactory
from tests.qa.factories import (
    add_photo,
    checks_passed,
    reviewer,
    shoot_with_assets,
    staff_without_decide,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:qa_qareview_changelist")


def review_url(review: QAReview) -> str:
    return reverse("admin:qa_qareview_change", args=[review.pk])


@pytest.fixture
def queue():
    """A shoot in QA with three image assets, a photo and a mask: the first asset's garment check
    failed, the second's passed, the third's checks have not run."""
    face = FaceFactory(code="F-QA1")
    image = Image.new("RGB", (600, 800), (120, 60, 30))
    shoot, assets = shoot_with_assets(3, image=image, face=face)
    mask = np.zeros((800, 600), dtype=np.uint8)
    mask[200:600, 150:450] = 255
    add_photo(shoot, image, mask)
    for asset in assets:
        asset_seller_approve(asset=asset, actor=shoot.seller.user)
    shoot_send_to_qa(shoot=shoot, actor=shoot.seller.user)
    AssetCheck.objects.create(
        asset=assets[0], name=C.GARMENT_SSIM, score=0.91, min_value=0.98, passed=False
    )
    AssetCheck.objects.create(
        asset=assets[1], name=C.GARMENT_SSIM, score=0.999, min_value=0.98, passed=True
    )
    reviews = [QAReview.objects.get(asset=a) for a in assets]
    return Shoot.objects.get(pk=shoot.pk), assets, reviews


def _status(asset: Asset) -> str:
    return Asset.objects.get(pk=asset.pk).status


# --- permissions -------------------------------------------------------------------------------


def test_anonymous_and_sellers_are_sent_to_the_login_page(client, queue):
    shoot, _, (review, *_) = queue
    for user in (None, shoot.seller.user):
        if user:
            client.force_login(user)
        for url in (CHANGELIST, review_url(review), reverse("admin:qa_stats")):
            response = client.get(url)
            assert response.status_code == 302 and "/login/" in response["Location"]


def test_staff_without_qa_permissions_cannot_see_the_queue(client, queue):
    _, _, (review, *_) = queue
    client.force_login(UserFactory(is_staff=True))
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(review_url(review)).status_code == 403
    media = reverse("admin:qa_qareview_media", args=[review.pk, "result"])
    assert client.get(media).status_code == 403


def test_viewers_see_but_cannot_decide(client, queue):
    _, (asset, *_), (review, *_) = queue
    client.force_login(staff_without_decide())
    page = client.get(review_url(review))
    assert page.status_code == 200
    assert b"Only QA reviewers can decide" in page.content
    assert client.post(review_url(review), {"decision": "approve"}).status_code == 403
    response = client.post(
        CHANGELIST, {"action": "approve_selected", "_selected_action": [review.pk]}
    )
    assert response.status_code in (200, 302)
    assert _status(asset) == Asset.Status.SELLER_APPROVED


def test_reviewer_sees_the_queue_with_media_and_scores(client, queue):
    shoot, _assets, reviews = queue
    client.force_login(reviewer())
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    body = page.content.decode()
    assert shoot.sku in body and "F-QA1" in body
    assert reverse("admin:qa_qareview_media", args=[reviews[0].pk, "original"]) in body
    assert "garment_ssim 0.91" in body and "qa-fail" in body
    detail = client.get(review_url(reviews[0])).content.decode()
    for which in ("original", "mask", "result"):
        assert reverse("admin:qa_qareview_media", args=[reviews[0].pk, which]) in detail
    assert "Garment SSIM" in detail and "≥ 0.98" in detail


def test_media_view_streams_the_files(client, queue):
    _, (asset, *_), (review, *_) = queue
    client.force_login(reviewer())
    response = client.get(reverse("admin:qa_qareview_media", args=[review.pk, "result"]))
    assert response.status_code == 200
    with asset.file.open("rb") as handle:
        assert b"".join(response.streaming_content) == handle.read()
    mask = client.get(reverse("admin:qa_qareview_media", args=[review.pk, "mask"]))
    assert mask.status_code == 200
    assert (
        client.get(reverse("admin:qa_qareview_media", args=[review.pk, "video"])).status_code == 404
    )
    assert (
        client.get(reverse("admin:qa_qareview_media", args=[review.pk, "secrets"])).status_code
        == 404
    )


# --- deciding ------------------------------------------------------------------------------------


def test_approve_on_the_review_page_moves_to_the_next_pending(client, queue):
    _, (_a, b, _), (ra, rb, _) = queue
    client.force_login(reviewer())
    response = client.post(review_url(rb), {"decision": "approve"})
    assert response.status_code == 302 and response["Location"] == review_url(ra)
    assert _status(b) == Asset.Status.QA_APPROVED
    assert QAReview.objects.get(pk=rb.pk).reviewer is not None


def test_reject_needs_a_reason_and_records_it(client, queue):
    _shoot, (a, *_), (ra, *_) = queue
    client.force_login(reviewer())
    page = client.post(review_url(ra), {"decision": "reject"})
    assert page.status_code == 200 and b"Pick a reason" in page.content
    assert _status(a) == Asset.Status.SELLER_APPROVED
    page = client.post(review_url(ra), {"decision": "reject", "reason": "other"})
    assert b"Say what is wrong" in page.content
    client.post(review_url(ra), {"decision": "reject", "reason": "hands", "comment": "6 fingers"})
    review = QAReview.objects.get(pk=ra.pk)
    assert (review.decision, review.reason, review.comment) == ("rejected", "hands", "6 fingers")


def test_bulk_approve_settles_the_shoot(client, queue):
    shoot, assets, reviews = queue
    AssetCheck.objects.filter(asset=assets[0]).update(score=0.99, passed=True)
    checks_passed(assets[2])
    client.force_login(reviewer())
    response = client.post(
        CHANGELIST,
        {"action": "approve_selected", "_selected_action": [r.pk for r in reviews]},
    )
    assert response.status_code == 302
    assert {_status(a) for a in assets} == {Asset.Status.QA_APPROVED}
    assert Shoot.objects.get(pk=shoot.pk).status == ShootStatus.APPROVED


def test_bulk_reject_uses_the_reason_from_the_action_bar(client, queue):
    shoot, assets, reviews = queue
    client.force_login(reviewer())
    selected = [r.pk for r in reviews[:2]]
    client.post(CHANGELIST, {"action": "reject_selected", "_selected_action": selected})
    assert _status(assets[0]) == Asset.Status.SELLER_APPROVED  # no reason: nothing happened
    client.post(
        CHANGELIST,
        {
            "action": "reject_selected",
            "_selected_action": selected,
            "reason": "garment_altered",
            "comment": "logo moved",
        },
    )
    assert [_status(a) for a in assets[:2]] == [Asset.Status.QA_REJECTED] * 2
    assert QAReview.objects.get(pk=reviews[0].pk).reason_text == "Garment altered: logo moved"
    checks_passed(assets[2])
    client.post(CHANGELIST, {"action": "approve_selected", "_selected_action": [reviews[2].pk]})
    assert Shoot.objects.get(pk=shoot.pk).status == ShootStatus.SELLER_REVIEW


# --- filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [0, 1, 2]),
        ({"checks": "failed"}, [0]),
        ({"checks": "passed"}, [1]),
        ({"checks": "none"}, [2]),
        ({"score_garment_ssim": "1"}, [0]),  # 0.9 - 0.98
        ({"score_garment_ssim": "2"}, [1]),  # >= 0.98
        ({"score_garment_ssim": "0"}, []),  # < 0.9
        ({"decision": "approved"}, []),
        ({"asset__job__run__shoot__category": "dress"}, [0, 1, 2]),
        ({"asset__job__run__shoot__category": "saree"}, []),
    ],
)
def test_filters(client, queue, params, expected):
    _, _assets, reviews = queue
    client.force_login(reviewer())
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    shown = {r.pk for r in response.context["cl"].result_list}
    assert shown == {reviews[i].pk for i in expected}


def test_filter_by_seller_and_face(client, queue):
    shoot, assets, _reviews = queue
    _other_shoot, _ = shoot_with_assets(1)
    client.force_login(reviewer())
    response = client.get(
        CHANGELIST, {"asset__job__run__shoot__seller__id__exact": shoot.seller_id}
    )
    assert len(response.context["cl"].result_list) == 3
    face_id = assets[0].job.face_id
    response = client.get(CHANGELIST, {"asset__job__face__id__exact": face_id})
    assert len(response.context["cl"].result_list) == 3


# --- statistics --------------------------------------------------------------------------------


def test_statistics_page(client, queue):
    shoot, assets, reviews = queue
    client.force_login(reviewer())
    client.post(review_url(reviews[0]), {"decision": "approve", "override_reason": "fine by eye"})
    client.post(review_url(reviews[1]), {"decision": "reject", "reason": "hands"})
    asset_rate(asset=assets[0], actor=shoot.seller.user, stars=4)
    page = client.get(reverse("admin:qa_stats"))
    assert page.status_code == 200
    face_rows = page.context["dimensions"]["face"]
    row = next(r for r in face_rows if r.key == "F-QA1")
    assert (row.decided, row.approved, row.rejected) == (2, 1, 1)
    assert row.reasons == {"Hands": 1}
    assert row.gpu_seconds_per_approved == pytest.approx(6.0)  # 3 jobs x 2 s / 1 approved
    assert row.rating == 4
    assert "dress / studio_white" in {r.key for r in page.context["dimensions"]["prompt template"]}
    assert b"F-QA1" in page.content
    assert client.get(reverse("admin:qa_stats"), {"since": "2000-01-01"}).status_code == 200


def test_sellers_rate_only_their_own_assets(queue):
    shoot, (asset, *_), _ = queue
    rating = asset_rate(asset=asset, actor=shoot.seller.user, stars=5, comment="great")
    assert asset_rate(asset=asset, actor=shoot.seller.user, stars=3).pk == rating.pk
    assert AssetRating.objects.get().stars == 3
    from django.core.exceptions import PermissionDenied, ValidationError

    with pytest.raises(PermissionDenied):
        asset_rate(asset=asset, actor=UserFactory(), stars=5)
    with pytest.raises(ValidationError):
        asset_rate(asset=asset, actor=shoot.seller.user, stars=6)
