"""QA services: schedule and record automatic checks, and sellers' ratings.

Asset status changes (seller approval, QA decisions, publication) live in
``generation.asset_services``; these functions only write QA's own tables.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from config.queues import DEFAULT, enqueue_on_commit
from generation.models import Asset

from .checks import CheckResult
from .models import AssetCheck, AssetRating

log = logging.getLogger(__name__)

CHECKS_JOB = "qa.jobs.run_asset_checks"


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
