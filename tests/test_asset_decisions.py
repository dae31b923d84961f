"""Asset decisions: the seller's review, QA decisions settling the shoot, publication. CAS.

The asset state machine itself (its table, one ``AssetEvent`` per move) is tested in
``tests/generation/test_asset_status.py``.
"""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from catalog.models import CatalogClient, CatalogEvent, EventType, Publication, WebhookDelivery
from catalog.services import asset_publish
from core.transitions import TransitionConflict, TransitionNotAllowed
from generation.models import Asset
from qa.models import QAReview, QASubmission, RejectionReason
from qa.selectors import rejections_for_shoot
from qa.services import NotAQAReviewer, asset_qa_approve, asset_qa_reject
from seller.models import Shoot, ShootEvent, ShootStatus
from seller.review import asset_seller_approve, asset_seller_reject, shoot_send_to_qa
from tests.factories import UserFactory
from tests.qa.factories import checks_passed, reviewer, shoot_with_assets

pytestmark = pytest.mark.django_db
A = Asset.Status
S = ShootStatus


def _in_qa(n=2):
    shoot, assets = shoot_with_assets(n)
    for asset in assets:
        asset_seller_approve(asset=asset, actor=shoot.seller.user)
    shoot = shoot_send_to_qa(shoot=shoot, actor=shoot.seller.user)
    checks_passed(*assets)
    return shoot, [Asset.objects.get(pk=a.pk) for a in assets]


# --- seller review -----------------------------------------------------------------------------


def test_seller_approves_and_rejects_and_may_change_their_mind():
    shoot, (a, b) = shoot_with_assets(2)
    a = asset_seller_approve(asset=a, actor=shoot.seller.user)
    b = asset_seller_reject(asset=b, actor=shoot.seller.user, reason="wrong colour")
    assert (a.status, b.status, b.seller_reason) == (
        A.SELLER_APPROVED,
        A.SELLER_REJECTED,
        "wrong colour",
    )
    b = asset_seller_approve(asset=b, actor=shoot.seller.user)
    assert (b.status, b.seller_reason) == (A.SELLER_APPROVED, "")


def test_seller_review_needs_the_shoot_in_seller_review():
    shoot, (asset,) = shoot_with_assets(1, status=S.GENERATING)
    with pytest.raises(TransitionNotAllowed):
        asset_seller_approve(asset=asset, actor=shoot.seller.user)
    assert Asset.objects.get(pk=asset.pk).status == A.GENERATED


def test_stale_seller_decision_is_a_conflict_not_an_overwrite():
    shoot, (asset,) = shoot_with_assets(1)
    stale = Asset.objects.get(pk=asset.pk)
    asset_seller_reject(asset=asset, actor=shoot.seller.user, reason="no")
    # 'stale' still thinks it is generated: approving from there would hide the rejection
    Asset.objects.filter(pk=asset.pk).update(status=A.SELLER_APPROVED)
    stale.status = A.SELLER_REJECTED
    with pytest.raises(TransitionConflict):
        asset_seller_approve(asset=stale, actor=shoot.seller.user)


def test_send_to_qa_needs_a_seller_approved_asset():
    shoot, _ = shoot_with_assets(2)
    with pytest.raises(TransitionNotAllowed, match="at least one"):
        shoot_send_to_qa(shoot=shoot, actor=shoot.seller.user)
    assert Shoot.objects.get(pk=shoot.pk).status == S.SELLER_REVIEW


def test_send_to_qa_opens_a_round_with_one_review_per_approved_asset():
    shoot, (a, b, c) = shoot_with_assets(3)
    asset_seller_approve(asset=a, actor=shoot.seller.user)
    asset_seller_approve(asset=b, actor=shoot.seller.user)
    shoot = shoot_send_to_qa(shoot=shoot, actor=shoot.seller.user)
    assert shoot.status == S.QA_REVIEW
    submission = QASubmission.objects.get(shoot=shoot)
    assert submission.number == 1
    assert sorted(submission.reviews.values_list("asset_id", flat=True)) == [a.pk, b.pk]
    assert not QAReview.objects.filter(asset=c).exists()
    event = ShootEvent.objects.filter(shoot=shoot).last()
    assert (event.to_status, event.note) == (S.QA_REVIEW, "2 result(s) sent to QA")


# --- QA decisions ------------------------------------------------------------------------------


def test_only_qa_reviewers_decide():
    shoot, (asset, _) = _in_qa()
    for outsider in (shoot.seller.user, UserFactory(is_staff=True), None):
        with pytest.raises(NotAQAReviewer):
            asset_qa_approve(asset=asset, reviewer=outsider)
        with pytest.raises(PermissionDenied):
            asset_qa_reject(asset=asset, reviewer=outsider, reason=RejectionReason.HANDS)
    assert Asset.objects.get(pk=asset.pk).status == A.SELLER_APPROVED


def test_all_approved_settles_the_shoot_approved_with_catalog_events_and_outbox():
    client = CatalogClient.objects.create(
        name="market", all_sellers=True, webhook_url="http://127.0.0.1:9/hook"
    )
    shoot, (a, b) = _in_qa()
    qa = reviewer()
    asset_qa_approve(asset=a, reviewer=qa)
    assert Shoot.objects.get(pk=shoot.pk).status == S.QA_REVIEW  # b still pending
    assert not CatalogEvent.objects.exists()
    asset_qa_approve(asset=b, reviewer=qa)
    shoot.refresh_from_db()
    assert shoot.status == S.APPROVED
    assert QASubmission.objects.get(shoot=shoot).outcome == QASubmission.Outcome.APPROVED
    types = list(CatalogEvent.objects.order_by("id").values_list("type", flat=True))
    assert types == [EventType.ASSET_APPROVED, EventType.ASSET_APPROVED, EventType.SHOOT_APPROVED]
    shoot_event = CatalogEvent.objects.get(type=EventType.SHOOT_APPROVED)
    assert shoot_event.payload["asset_ids"] == [a.pk, b.pk]
    # the client subscribes to shoot.* by default: exactly one outbox row, same transaction
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event, delivery.client, delivery.status) == (shoot_event, client, "pending")


def test_any_rejection_returns_the_shoot_with_the_reasons():
    shoot, (a, b) = _in_qa()
    qa = reviewer()
    asset_qa_reject(asset=a, reviewer=qa, reason=RejectionReason.HANDS, comment="six fingers")
    asset_qa_approve(asset=b, reviewer=qa)
    shoot.refresh_from_db()
    assert shoot.status == S.SELLER_REVIEW
    note = ShootEvent.objects.filter(shoot=shoot).last().note
    assert f"#{a.pk} Hands: six fingers" in note
    assert [r.asset_id for r in rejections_for_shoot(shoot=shoot)] == [a.pk]
    assert Asset.objects.get(pk=a.pk).status == A.QA_REJECTED
    assert not CatalogEvent.objects.exists()


def test_second_round_after_a_return_can_approve_the_shoot():
    shoot, (a, b) = _in_qa()
    qa = reviewer()
    asset_qa_reject(asset=a, reviewer=qa, reason=RejectionReason.ARTEFACT)
    asset_qa_approve(asset=b, reviewer=qa)
    # the seller adds a new result and sends again
    from tests.qa.factories import make_asset

    c = make_asset(Shoot.objects.get(pk=shoot.pk), face=a.job.face)
    asset_seller_approve(asset=c, actor=shoot.seller.user)
    shoot = shoot_send_to_qa(shoot=Shoot.objects.get(pk=shoot.pk), actor=shoot.seller.user)
    assert QASubmission.objects.get(shoot=shoot, number=2).reviews.get().asset_id == c.pk
    checks_passed(c)
    asset_qa_approve(asset=c, reviewer=qa)
    shoot.refresh_from_db()
    assert shoot.status == S.APPROVED
    approved = CatalogEvent.objects.get(type=EventType.SHOOT_APPROVED).payload["asset_ids"]
    assert approved == [b.pk, c.pk]  # the earlier round's approval counts


def test_reject_needs_a_known_reason_and_a_comment_for_other():
    _, (asset, _) = _in_qa()
    qa = reviewer()
    with pytest.raises(ValidationError):
        asset_qa_reject(asset=asset, reviewer=qa, reason="ugly")
    with pytest.raises(ValidationError):
        asset_qa_reject(asset=asset, reviewer=qa, reason=RejectionReason.OTHER, comment="  ")
    asset_qa_reject(asset=asset, reviewer=qa, reason=RejectionReason.OTHER, comment="logo")
    assert QAReview.objects.get(asset=asset).reason_text == "Other: logo"


def test_deciding_twice_is_refused():
    _, (asset, _) = _in_qa()
    qa = reviewer()
    stale = Asset.objects.get(pk=asset.pk)
    asset_qa_approve(asset=asset, reviewer=qa)
    with pytest.raises(TransitionConflict):
        asset_qa_reject(asset=stale, reviewer=qa, reason=RejectionReason.POSE)
    review = QAReview.objects.get(asset=asset)
    assert (review.decision, review.reason) == ("approved", "")


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_deciding_the_last_two_at_once_settle_the_shoot_once():
    shoot, (a, b) = _in_qa()
    qa1, qa2 = reviewer(), reviewer()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def decide(asset, who):
        try:
            barrier.wait()
            asset_qa_approve(asset=asset, reviewer=who)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=decide, args=(a, qa1)),
        threading.Thread(target=decide, args=(b, qa2)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert Shoot.objects.get(pk=shoot.pk).status == S.APPROVED
    assert ShootEvent.objects.filter(shoot=shoot, to_status=S.APPROVED).count() == 1
    assert CatalogEvent.objects.filter(type=EventType.SHOOT_APPROVED).count() == 1


# --- publication -------------------------------------------------------------------------------


def _approved_shoot(n=2):
    shoot, assets = _in_qa(n)
    qa = reviewer()
    for asset in assets:
        asset_qa_approve(asset=asset, reviewer=qa)
    return Shoot.objects.get(pk=shoot.pk), [Asset.objects.get(pk=a.pk) for a in assets]


def test_publishing_every_approved_asset_publishes_the_shoot():
    shoot, (a, b) = _approved_shoot()
    client = CatalogClient.objects.create(name="c", all_sellers=True)
    asset_publish(asset=a, client=client, external_id="m-1")
    assert Shoot.objects.get(pk=shoot.pk).status == S.APPROVED
    asset_publish(asset=b, client=client)
    assert Shoot.objects.get(pk=shoot.pk).status == S.PUBLISHED
    assert Publication.objects.get(asset=a).external_id == "m-1"
    types = list(
        CatalogEvent.objects.filter(type__endswith="published").values_list("type", flat=True)
    )
    assert types == [
        EventType.ASSET_PUBLISHED,
        EventType.ASSET_PUBLISHED,
        EventType.SHOOT_PUBLISHED,
    ]


def test_publishing_is_idempotent_per_client():
    _shoot, (a,) = _approved_shoot(1)
    client = CatalogClient.objects.create(name="c", all_sellers=True)
    asset_publish(asset=a, client=client)
    again = asset_publish(asset=Asset.objects.get(pk=a.pk), client=client)
    assert again.status == A.PUBLISHED
    assert Publication.objects.filter(asset=a).count() == 1
    assert CatalogEvent.objects.filter(type=EventType.ASSET_PUBLISHED).count() == 1


def test_a_client_cannot_publish_another_sellers_asset():
    _, (a,) = _approved_shoot(1)
    client = CatalogClient.objects.create(name="narrow")  # no sellers
    with pytest.raises(PermissionDenied):
        asset_publish(asset=a, client=client)
    assert Asset.objects.get(pk=a.pk).status == A.QA_APPROVED


def test_assets_of_a_shoot_still_in_qa_cannot_be_published():
    _, (a, _b) = _in_qa()
    asset_qa_approve(asset=a, reviewer=reviewer())
    client = CatalogClient.objects.create(name="c", all_sellers=True)
    with pytest.raises(TransitionNotAllowed):
        asset_publish(asset=Asset.objects.get(pk=a.pk), client=client)
