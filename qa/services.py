"""QA services: automatic checks, and the QA reviewers' decisions.

A decision moves the asset through the asset state machine (``generation.asset_status``: a
compare-and-swap that writes an ``AssetEvent`` with the reviewer as actor), records it on the
asset's ``QAReview``, and, when it was the last pending review of the round, settles the shoot:
all approved -> approved (and the catalog is told in the same transaction), any rejected -> back to
the seller with the reasons. The shoot row is locked first, so the round is settled exactly once.

Checks are scheduled after generation through the ``generation.signals.assets_stored`` signal
(connected in ``qa.apps``), so generation never imports QA.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from catalog.services import record_shoot_approved
from core.queues import DEFAULT, enqueue_on_commit
from core.transitions import TransitionNotAllowed
from generation.asset_status import lock_shoot_of, require_shoot_status, transition
from generation.models import Asset
from seller.models import Shoot, ShootStatus
from seller.services import shoot_approve, shoot_return_to_seller

from .checks import CheckResult
from .models import AssetCheck, QAReview, QASubmission, RejectionReason

log = logging.getLogger(__name__)

CHECKS_JOB = "qa.jobs.run_asset_checks"
QA_DECIDE_PERMISSION = "qa.decide_qa"


class NotAQAReviewer(PermissionDenied):
    """Only members of qa_reviewers (permission qa.decide_qa) may decide in QA."""


@dataclass(frozen=True)
class ApprovalGate:
    """What the automatic checks say about approving one asset.

    A failed or errored check, or no checks at all yet (they run on the default queue after
    generation), stops a plain approval: the reviewer must give an override reason, which the
    asset's ``AssetEvent`` keeps. n/a checks (nothing to compare with) do not stop it.
    """

    failed: tuple[str, ...] = ()
    errored: tuple[str, ...] = ()
    not_run: bool = False

    @property
    def blocked(self) -> bool:
        return bool(self.failed or self.errored or self.not_run)

    @property
    def problems(self) -> str:
        """'failed checks (a, b), errored checks (c)' / 'checks not run yet' (the event note)."""
        return self._listed("failed checks ({})", "errored checks ({})", ", ")

    @property
    def short(self) -> str:
        """'failed: a, b; error: c' / 'checks not run yet' (bulk messages)."""
        return self._listed("failed: {}", "error: {}", "; ")

    def _listed(self, failed: str, errored: str, separator: str) -> str:
        if self.not_run:
            return "checks not run yet"
        groups = ((failed, self.failed), (errored, self.errored))
        return separator.join(form.format(", ".join(names)) for form, names in groups if names)


class OverrideRequired(ValidationError):
    """Approving this asset needs an override reason (``gate`` says why)."""

    def __init__(self, asset_id: int, gate: ApprovalGate):
        self.asset_id, self.gate = asset_id, gate
        if gate.not_run:
            why = "the automatic checks are still running (none recorded yet)"
        else:
            why = "automatic checks " + "; ".join(
                part
                for part in (
                    gate.failed and f"failed ({', '.join(gate.failed)})",
                    gate.errored and f"ended in an error ({', '.join(gate.errored)})",
                )
                if part
            )
        super().__init__(f"Asset #{asset_id}: {why}; give a reason to approve it anyway.")


# --- automatic checks --------------------------------------------------------------------------


def checks_job_id(asset_id: int, suffix: str = "") -> str:
    return f"asset-{asset_id}-qa-checks" + (f"-{suffix}" if suffix else "")


def schedule_asset_checks(*, asset_ids: Iterable[int], rerun: bool = False) -> None:
    """Enqueue the checks of each asset on the default queue once the transaction commits.

    The automatic path uses one deterministic job id per asset, so scheduling twice (after
    generation, again when the shoot goes to QA) runs the checks once. ``rerun`` (admin) gets a
    fresh id.
    """
    suffix = str(int(time.time())) if rerun else ""
    for asset_id in asset_ids:
        enqueue_on_commit(DEFAULT, CHECKS_JOB, asset_id, job_id=checks_job_id(asset_id, suffix))


def schedule_checks_of_stored_assets(sender, *, asset_ids: Sequence[int], **kwargs) -> None:
    """Receiver of ``generation.signals.assets_stored`` (connected in ``QaConfig.ready``).

    Runs inside the transaction that stored the assets; the checks are enqueued at its commit,
    so automatic QA scores are ready by the time the seller looks.
    """
    schedule_asset_checks(asset_ids=asset_ids)


def schedule_missing_checks(*, asset_ids: Sequence[int]) -> list[int]:
    """Schedule checks for the assets that have none yet; returns their ids."""
    done = set(AssetCheck.objects.filter(asset_id__in=asset_ids).values_list("asset_id", flat=True))
    missing = [pk for pk in asset_ids if pk not in done]
    schedule_asset_checks(asset_ids=missing)
    return missing


@transaction.atomic
def record_check_results(*, asset_id: int, results: Sequence[CheckResult]) -> int:
    """Store one row per check (replacing an earlier run's row of the same name)."""
    if not Asset.objects.filter(pk=asset_id).exists():
        log.info("asset %s is gone; its check results are dropped", asset_id)
        return 0
    for result in results:
        AssetCheck.objects.update_or_create(
            asset_id=asset_id,
            name=result.name,
            defaults={
                "score": result.score,
                "min_value": result.limits.min_value,
                "max_value": result.limits.max_value,
                "passed": result.passed,
                "errored": result.errored,
                "flags": list(result.flags),
                "details": result.details,
                "seconds": result.seconds,
            },
        )
    return len(results)


def run_checks_for_asset(*, asset_id: int) -> int:
    """Measure (slow, outside any transaction), then record in one short transaction."""
    from .checks import measure_asset

    asset = Asset.objects.select_related("job__run__shoot", "job__face").filter(pk=asset_id).first()
    if asset is None:
        log.info("asset %s no longer exists; no checks", asset_id)
        return 0
    results = measure_asset(asset)
    return record_check_results(asset_id=asset_id, results=results)


# --- QA decisions ------------------------------------------------------------------------------


def approval_gate(asset: Asset) -> ApprovalGate:
    """Failed / errored / missing automatic checks of ``asset`` (see ``ApprovalGate``)."""
    checks = list(AssetCheck.objects.filter(asset_id=asset.pk).order_by("name"))
    return ApprovalGate(
        failed=tuple(c.name for c in checks if c.passed is False and not c.errored),
        errored=tuple(c.name for c in checks if c.errored),
        not_run=not checks,
    )


def _approval_note(asset: Asset, override_reason: str) -> str:
    """The approval's event note: empty when the checks allow it, else the override reason
    (refused without one)."""
    gate = approval_gate(asset)
    if not gate.blocked:
        return ""
    reason = " ".join(override_reason.split())
    if not reason:
        raise OverrideRequired(asset.pk, gate)
    return f"Approved despite {gate.problems}: {reason}"[:2000]


def _require_reviewer(reviewer) -> None:
    if reviewer is None or not reviewer.is_active or not reviewer.has_perm(QA_DECIDE_PERMISSION):
        raise NotAQAReviewer("Only QA reviewers can approve or reject assets.")


def _decide(
    asset: Asset,
    *,
    reviewer,
    action: str,
    decision: str,
    reason="",
    comment="",
    override_reason: str | None = None,
) -> Asset:
    """``override_reason`` is given (possibly "") for approvals: they pass the checks' gate."""
    _require_reviewer(reviewer)
    shoot = lock_shoot_of(asset)
    require_shoot_status(shoot, ShootStatus.QA_REVIEW, "decide in QA")
    review = QAReview.objects.filter(asset_id=asset.pk).select_related("submission").first()
    if review is None:
        raise TransitionNotAllowed("This asset was not sent to QA.")
    comment = comment.strip()
    note = QAReview(reason=reason, comment=comment).reason_text
    if override_reason is not None and review.decision == QAReview.Decision.PENDING:
        # before any write: a refused approval changes nothing (an already decided review
        # falls through to the state machine, which refuses it as before)
        note = _approval_note(asset, override_reason)
    asset = transition(asset, action, actor=reviewer, note=note)
    # The asset CAS above already serialises deciders; this one keeps the review row honest.
    QAReview.objects.filter(pk=review.pk, decision=QAReview.Decision.PENDING).update(
        decision=decision,
        reason=reason,
        comment=comment,
        reviewer=reviewer,
        decided_at=timezone.now(),
    )
    _settle_round(shoot, review.submission, reviewer)
    return asset


@transaction.atomic
def asset_qa_approve(*, asset: Asset, reviewer, override_reason: str = "") -> Asset:
    """A QA reviewer approves a seller-approved asset of a shoot in QA.

    If an automatic check failed or errored, or none has run yet, this raises
    ``OverrideRequired`` (a ``ValidationError`` naming the checks) unless ``override_reason``
    is given; the reason then becomes the event note ("Approved despite failed checks
    (garment_ssim): <reason>"). With nothing to override the reason is not recorded.
    """
    return _decide(
        asset,
        reviewer=reviewer,
        action="qa_approve",
        decision=QAReview.Decision.APPROVED,
        override_reason=override_reason or "",
    )


@transaction.atomic
def asset_qa_reject(*, asset: Asset, reviewer, reason: str, comment: str = "") -> Asset:
    """A QA reviewer rejects an asset for ``reason`` (a ``RejectionReason``; 'other' needs a
    comment). The reason is shown to the seller and kept on the asset's event."""
    if reason not in RejectionReason.values:
        raise ValidationError(f"Unknown rejection reason {reason!r}.")
    if reason == RejectionReason.OTHER and not comment.strip():
        raise ValidationError("Say what is wrong when the reason is 'other'.")
    return _decide(
        asset,
        reviewer=reviewer,
        action="qa_reject",
        decision=QAReview.Decision.REJECTED,
        reason=reason,
        comment=comment,
    )


def _settle_round(shoot: Shoot, submission: QASubmission, actor) -> None:
    """When every review of the round is decided: all approved -> the shoot is approved (and
    the catalog is told, in this same transaction); any rejected -> back to the seller with
    the reasons."""
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
