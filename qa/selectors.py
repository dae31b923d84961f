"""Read side of QA: the review queue, rejection reasons for sellers, feedback statistics."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import (
    Avg,
    CharField,
    Count,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.expressions import Combinable
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, Concat

from generation.models import Asset, AssetEvent, GenerationJob
from seller.models import Shoot

from .models import AssetCheck, AssetRating, QAReview, RejectionReason


def review_queue() -> QuerySet[QAReview]:
    """Reviews with everything the QA list shows, oldest first."""
    return QAReview.objects.select_related(
        "asset__job__run__shoot__seller", "asset__job__face", "submission", "reviewer"
    ).prefetch_related("asset__qa_checks")


def checks_of(asset: Asset) -> list[AssetCheck]:
    return list(AssetCheck.objects.filter(asset=asset).order_by("name"))


def asset_history(asset: Asset) -> list[AssetEvent]:
    """The asset's status changes (seller, QA, catalog), oldest first, for the review page."""
    return list(
        AssetEvent.objects.filter(asset=asset).select_related("actor").order_by("created_at", "id")
    )


def rejections_for_shoot(*, shoot: Shoot) -> list[QAReview]:
    """The QA rejections of the shoot's latest QA round, for the seller's results page
    (``review.reason_text`` is the reason with the reviewer's comment)."""
    latest = shoot.qa_rounds.order_by("-number").first()
    if latest is None:
        return []
    return list(
        latest.reviews.filter(decision=QAReview.Decision.REJECTED)
        .select_related("asset__job__face")
        .order_by("asset_id")
    )


# --- feedback statistics ---------------------------------------------------------------------


@dataclass
class StatRow:
    key: str
    decided: int
    approved: int
    rejected: int
    reasons: dict[str, int] = field(default_factory=dict)
    gpu_seconds: float = 0.0
    rating: float | None = None
    ratings: int = 0

    @property
    def approval_rate(self) -> float | None:
        return self.approved / self.decided if self.decided else None

    @property
    def gpu_seconds_per_approved(self) -> float | None:
        return self.gpu_seconds / self.approved if self.approved else None


def _dimensions(to_job: str) -> dict[str, Combinable]:
    """Dimension name -> expression over a row that reaches its GenerationJob through the lookup
    prefix ``to_job`` (``""`` for a job row itself)."""
    shoot = f"{to_job}run__shoot__"
    return {
        "face": Coalesce(F(f"{to_job}face__code"), Value("(no face)")),
        "prompt template": Coalesce(
            KeyTextTransform("prompt_template", f"{to_job}settings"),
            Concat(
                F(f"{shoot}category"), Value(" / "), F(f"{shoot}scene"), output_field=CharField()
            ),
            output_field=CharField(),
        ),
        "category": F(f"{shoot}category"),
        "model set": Coalesce(F(f"{to_job}model_set"), Value("")),
    }


#: the dimensions over a QAReview row (through asset -> job -> run -> shoot)
DIMENSIONS = _dimensions("asset__job__")
#: the same dimensions seen from a GenerationJob (GPU time is per job, decided or not)
JOB_DIMENSIONS = _dimensions("")
# AssetRating reaches the job through its asset, exactly like QAReview
RATING_DIMENSIONS = DIMENSIONS


def _decisions(dimension, since) -> dict[str, StatRow]:
    qs = QAReview.objects.exclude(decision=QAReview.Decision.PENDING)
    if since:
        qs = qs.filter(decided_at__gte=since)
    rows: dict[str, StatRow] = {}
    grouped = (
        qs.annotate(key=dimension)
        .values("key")
        .annotate(
            decided=Count("id"),
            approved=Count("id", filter=Q(decision=QAReview.Decision.APPROVED)),
            rejected=Count("id", filter=Q(decision=QAReview.Decision.REJECTED)),
        )
    )
    for row in grouped:
        key = row["key"] or "—"
        rows[key] = StatRow(key, row["decided"], row["approved"], row["rejected"])
    reasons = (
        qs.filter(decision=QAReview.Decision.REJECTED)
        .annotate(key=dimension)
        .values("key", "reason")
        .annotate(n=Count("id"))
    )
    for row in reasons:
        stat = rows.get(row["key"] or "—")
        if stat is not None:
            label = RejectionReason(row["reason"]).label if row["reason"] else "Other"
            stat.reasons[label] = stat.reasons.get(label, 0) + row["n"]
    return rows


def _gpu_seconds(dimension, since) -> dict[str, float]:
    # GPU time counts every finished job, also those whose images were rejected or never
    # approved: that is the real cost of each image that made it into the catalog
    qs = GenerationJob.objects.filter(seconds_per_image__isnull=False)
    if since:
        qs = qs.filter(finished_at__gte=since)
    grouped = qs.annotate(key=dimension).values("key").annotate(s=Sum("seconds_per_image"))
    return {(row["key"] or "—"): float(row["s"] or 0) for row in grouped}


def _ratings(dimension, since) -> dict[str, tuple[float, int]]:
    qs = AssetRating.objects.all()
    if since:
        qs = qs.filter(updated_at__gte=since)
    grouped = qs.annotate(key=dimension).values("key").annotate(avg=Avg("stars"), n=Count("id"))
    return {(row["key"] or "—"): (float(row["avg"]), row["n"]) for row in grouped}


def feedback_statistics(*, since=None) -> dict[str, list[StatRow]]:
    """Per dimension (face, prompt template, category, model set): QA approval rate, rejection
    reasons, GPU seconds per approved image and the sellers' average rating."""
    result: dict[str, list[StatRow]] = {}
    for name, dimension in DIMENSIONS.items():
        rows = _decisions(dimension, since)
        for key, seconds in _gpu_seconds(JOB_DIMENSIONS[name], since).items():
            rows.setdefault(key, StatRow(key, 0, 0, 0)).gpu_seconds = seconds
        for key, (avg, n) in _ratings(RATING_DIMENSIONS[name], since).items():
            stat = rows.setdefault(key, StatRow(key, 0, 0, 0))
            stat.rating, stat.ratings = avg, n
        result[name] = sorted(rows.values(), key=lambda r: (-r.decided, r.key))
    return result


def overall_statistics(*, since=None) -> StatRow:
    rows = feedback_statistics(since=since)["category"]
    total = StatRow("all", 0, 0, 0)
    for row in rows:
        total.decided += row.decided
        total.approved += row.approved
        total.rejected += row.rejected
        total.gpu_seconds += row.gpu_seconds
        for reason, n in row.reasons.items():
            total.reasons[reason] = total.reasons.get(reason, 0) + n
    qs = AssetRating.objects.filter(updated_at__gte=since) if since else AssetRating.objects
    ratings = qs.aggregate(avg=Avg("stars"), n=Count("id"))
    total.rating, total.ratings = ratings["avg"], ratings["n"]
    return total
