"""Asset status changes: seller review, QA decisions and catalog publication.

Like shoot transitions, each change is a compare-and-swap UPDATE on the status the caller saw;
0 rows means someone else decided first and we raise ``TransitionConflict`` instead of
overwriting them. Every service that depends on the shoot's status first locks the shoot row
(``SELECT ... FOR UPDATE``): a seller approving an asset while the shoot is sent to QA, or two
reviewers deciding the last two assets at once, are serialised, so the shoot is settled exactly
once and never misses an asset.

    generated -> seller_approved | seller_rejected      (shoot in seller_review)
    seller_approved -> qa_approved | qa_rejected        (shoot in qa_review, by a QA reviewer)
    qa_approved -> published                            (shoot approved, by a catalog client)
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from seller.models import Shoot, ShootStatus
from seller.services import (
    TransitionConflict,
    TransitionNotAllowed,
    shoot_approve,
    shoot_publish,
    shoot_return_to_seller,
    shoot_submit_to_qa,
)

from .models import Asset

A = Asset.Status
QA_DECIDE_PERMISSION = "qa.decide_qa"


class NotAQAReviewer(PermissionDenied):
    """Only members of qa_reviewers (permission qa.decide_qa) may decide in QA."""


# --- helpers -----------------------------------------------------------------------------------


def _lock_shoot_of(asset: Asset) -> Shoot:
    shoot_id = Asset.objects.filter(pk=asset.pk).values_list("job__run__shoot_id", flat=True)[0]
    return Shoot.objects.select_for_update().get(pk=shoot_id)


def _require_shoot_status(shoot: Shoot, status: str, doing: str) -> None:
    if shoot.status != status:
        raise TransitionNotAllowed(
            f"Cannot {doing} while the shoot is {ShootStatus(shoot.status).label.lower()}."
        )


def _swap(asset: Asset, *, sources: set[str], target: str, doing: str, **fields) -> Asset:
    """CAS the asset from the status the caller saw to ``target``."""
    expected = asset.status
    if expected not in sources:
        raise TransitionNotAllowed(f"Cannot {doing} an asset that is {A(expected).label.lower()}.")
    changed = Asset.objects.filter(pk=asset.pk, status=expected).update(
        status=target, status_changed_at=timezone.now(), **fields
    )
    if changed == 0:
        current = Asset.objects.filter(pk=asset.pk).values_list("status", flat=True).first()
        raise TransitionConflict(f"The asset changed meanwhile (now {current}); not applied.")
    asset.refresh_from_db()
    return asset


def _require_reviewer(reviewer) -> None:
    if reviewer is None or not reviewer.is_active or not reviewer.has_perm(QA_DECIDE_PERMISSION):
        raise NotAQAReviewer("Only QA reviewers can approve or reject assets.")


def shoot_assets(shoot: Shoot):
    return Asset.objects.filter(job__run__shoot=shoot)


# --- seller review -----------------------------------------------------------------------------


@transaction.atomic
def asset_seller_approve(*, asset: Asset, actor) -> Asset:
    """The seller keeps this result: it will go to QA with the shoot."""
    from qa.services import schedule_asset_checks

    shoot = _lock_shoot_of(asset)
    _require_shoot_status(shoot, ShootStatus.SELLER_REVIEW, "approve results")
    asset = _swap(
        asset,
        sources={A.GENERATED, A.SELLER_REJECTED},
        target=A.SELLER_APPROVED,
        doing="approve",
        seller_reason="",
    )
    # Same deterministic job id as after generation: runs once if it has not run yet.
    schedule_asset_checks(asset_ids=[asset.pk])
    return asset


@transaction.atomic
def asset_seller_reject(*, asset: Asset, actor, reason: str = "") -> Asset:
    shoot = _lock_shoot_of(asset)
    _require_shoot_status(shoot, ShootStatus.SELLER_REVIEW, "reject results")
    return _swap(
        asset,
        sources={A.GENERATED, A.SELLER_APPROVED},
        target=A.SELLER_REJECTED,
        doing="reject",
        seller_reason=reason.strip(),
    )


@transaction.atomic
def shoot_send_to_qa(*, shoot: Shoot, actor) -> Shoot:
    """Send the seller-approved assets to QA (a new QA round) and move the shoot to qa_review."""
    from qa.models import QAReview, QASubmission
    from qa.services import schedule_missing_checks

    shoot = Shoot.objects.select_for_update().get(pk=shoot.pk)
    _require_shoot_status(shoot, ShootStatus.SELLER_REVIEW, "send to QA")
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


# --- QA decisions ------------------------------------------------------------------------------


def _decide(asset: Asset, *, reviewer, target: str, decision: str, reason="", comment="") -> Asset:
    from qa.models import QAReview

    _require_reviewer(reviewer)
    shoot = _lock_shoot_of(asset)
    _require_shoot_status(shoot, ShootStatus.QA_REVIEW, "decide in QA")
    review = QAReview.objects.filter(asset_id=asset.pk).select_related("submission").first()
    if review is None:
        raise TransitionNotAllowed("This asset was not sent to QA.")
    asset = _swap(asset, sources={A.SELLER_APPROVED}, target=target, doing="decide on")
    # The asset CAS above already serialises deciders; this one keeps the review row honest.
    QAReview.objects.filter(pk=review.pk, decision=QAReview.Decision.PENDING).update(
        decision=decision,
        reason=reason,
        comment=comment.strip(),
        reviewer=reviewer,
        decided_at=timezone.now(),
    )
    _settle_round(shoot, review.submission, reviewer)
    return asset


@transaction.atomic
def asset_qa_approve(*, asset: Asset, reviewer) -> Asset:
    from qa.models import QAReview

    return _decide(
        asset, reviewer=reviewer, target=A.QA_APPROVED, decision=QAReview.Decision.APPROVED
    )


@transaction.atomic
def asset_qa_reject(*, asset: Asset, reviewer, reason: str, comment: str = "") -> Asset:
    from qa.models import QAReview, RejectionReason

    if reason not in RejectionReason.values:
        raise ValidationError(f"Unknown rejection reason {reason!r}.")
    if reason == RejectionReason.OTHER and not comment.strip():
        raise ValidationError("Say what is wrong when the reason is 'other'.")
    return _decide(
        asset,
        reviewer=reviewer,
        target=A.QA_REJECTED,
        decision=QAReview.Decision.REJECTED,
        reason=reason,
        comment=comment,
    )


def _settle_round(shoot: Shoot, submission, actor) -> None:
    """When every review of the round is decided: all approved -> the shoot is approved (and
    the catalog is told, in this same transaction); any rejected -> back to the seller with
    the reasons."""
    from catalog.services import record_shoot_approved
    from qa.models import QAReview, QASubmission

    reviews = list(submission.reviews.select_related("asset").order_by("asset_id"))
    if any(r.decision == QAReview.Decision.PENDING for r in reviews):
        return
    rejected = [r for r in reviews if r.decision == QAReview.Decision.REJECTED]
    now = timezone.now()
    if rejected:
        reasons = "; ".join(f"#{r.asset_id} {r.reason_text}" for r in rejected)
        note = f"QA rejected {len(rejected)} of {len(reviews)}: {reasons}"
        shoot_return_to_seller(shoot=shoot, actor=actor, note=note[:2000])
        outcome = QASubmission.Outcome.RETURNED
    else:
        shoot = shoot_approve(shoot=shoot, actor=actor, note=f"QA approved {len(reviews)}")
        record_shoot_approved(shoot=shoot)
        outcome = QASubmission.Outcome.APPROVED
    QASubmission.objects.filter(pk=submission.pk, outcome=QASubmission.Outcome.PENDING).update(
        outcome=outcome, settled_at=now
    )


# --- catalog -----------------------------------------------------------------------------------


@transaction.atomic
def asset_publish(*, asset: Asset, client, external_id: str = "") -> Asset:
    """A catalog client acknowledges ``asset`` as live. Idempotent per client. When the shoot's
    last approved asset is published, the shoot is published too."""
    from catalog.models import Publication
    from catalog.selectors import client_sees_seller
    from catalog.services import record_asset_published, record_shoot_published

    shoot = _lock_shoot_of(asset)
    if not client_sees_seller(client=client, seller_id=shoot.seller_id):
        raise PermissionDenied("This client does not serve this seller.")
    asset.refresh_from_db()
    if asset.status == A.PUBLISHED:
        Publication.objects.get_or_create(
            asset=asset, client=client, defaults={"external_id": external_id}
        )
        return asset
    if shoot.status != ShootStatus.APPROVED:
        raise TransitionNotAllowed("Only assets of an approved shoot can be published.")
    asset = _swap(asset, sources={A.QA_APPROVED}, target=A.PUBLISHED, doing="publish")
    Publication.objects.create(asset=asset, client=client, external_id=external_id)
    record_asset_published(asset=asset, shoot=shoot, client=client)
    if not shoot_assets(shoot).filter(status=A.QA_APPROVED).exists():
        shoot = shoot_publish(shoot=shoot, note=f"Published by catalog client {client.name}")
        record_shoot_published(shoot=shoot)
    return asset
