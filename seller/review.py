"""The seller's decisions about their generated results: keep or reject, rate, send to QA.

Each asset status change goes through the asset state machine (``generation.asset_status``),
which writes an ``AssetEvent`` with the seller as actor. Every decision first locks the shoot row,
so it is serialised against the shoot being sent to QA.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max

from core.transitions import TransitionNotAllowed
from generation.asset_status import lock_shoot_of, require_shoot_status, shoot_assets, transition
from generation.models import Asset
from qa.models import AssetRating, QAReview, QASubmission
from qa.services import schedule_asset_checks, schedule_missing_checks

from .models import Shoot, ShootStatus
from .services import shoot_submit_to_qa

A = Asset.Status


@transaction.atomic
def asset_seller_approve(*, asset: Asset, actor) -> Asset:
    """The seller keeps this result: it will go to QA with the shoot."""
    shoot = lock_shoot_of(asset)
    require_shoot_status(shoot, ShootStatus.SELLER_REVIEW, "approve results")
    asset = transition(asset, "seller_approve", actor=actor, seller_reason="")
    # Same deterministic job id as after generation: runs once if it has not run yet.
    schedule_asset_checks(asset_ids=[asset.pk])
    return asset


@transaction.atomic
def asset_seller_reject(*, asset: Asset, actor, reason: str = "") -> Asset:
    """The seller does not want this result; ``reason`` is kept on the asset and its event."""
    reason = reason.strip()
    shoot = lock_shoot_of(asset)
    require_shoot_status(shoot, ShootStatus.SELLER_REVIEW, "reject results")
    return transition(asset, "seller_reject", actor=actor, note=reason, seller_reason=reason)


@transaction.atomic
def shoot_send_to_qa(*, shoot: Shoot, actor) -> Shoot:
    """Send the seller-approved assets to QA (a new QA round) and move the shoot to qa_review."""
    shoot = Shoot.objects.select_for_update().get(pk=shoot.pk)
    require_shoot_status(shoot, ShootStatus.SELLER_REVIEW, "send to QA")
    asset_ids = list(
        shoot_assets(shoot)
        .filter(status=A.SELLER_APPROVED, qa_review__isnull=True)
        .values_list("pk", flat=True)
    )
    if not asset_ids:
        raise TransitionNotAllowed("Approve at least one result before sending the shoot to QA.")
    last = shoot.qa_rounds.aggregate(last=Max("number"))["last"] or 0
    submission = QASubmission.objects.create(shoot=shoot, number=last + 1, submitted_by=actor)
    QAReview.objects.bulk_create(QAReview(asset_id=pk, submission=submission) for pk in asset_ids)
    shoot = shoot_submit_to_qa(
        shoot=shoot, actor=actor, note=f"{len(asset_ids)} result(s) sent to QA"
    )
    schedule_missing_checks(asset_ids=asset_ids)
    return shoot


def asset_rate(*, asset: Asset, actor, stars: int, comment: str = "") -> AssetRating:
    """A seller's 1-5 star rating of one of their own generated assets (one per user, updatable)."""
    if not 1 <= int(stars) <= 5:
        raise ValidationError("Rate from 1 to 5 stars.")
    owner_id = (
        Asset.objects.filter(pk=asset.pk).values_list("job__run__shoot__seller__user_id", flat=True)
    ).first()
    if owner_id is None or owner_id != actor.pk:
        raise PermissionDenied("Only the seller who owns this shoot can rate its results.")
    rating, _ = AssetRating.objects.update_or_create(
        asset=asset, rated_by=actor, defaults={"stars": int(stars), "comment": comment.strip()}
    )
    return rating
