"""Reads of generation's own tables for other apps: how often each face was used and reviewed.

Usage and approval figures are computed from ``GenerationJob`` and ``Asset`` rows, never stored
beside the face, so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from facelibrary.models import Face
from facelibrary.selectors import count_subquery

from .models import Asset, GenerationJob

#: current asset statuses that count as approved / rejected for a face's approval rate
APPROVED_STATUSES = (Asset.Status.SELLER_APPROVED, Asset.Status.QA_APPROVED, Asset.Status.PUBLISHED)
REJECTED_STATUSES = (Asset.Status.SELLER_REJECTED, Asset.Status.QA_REJECTED)


@dataclass(frozen=True)
class FaceStats:
    #: generation runs that used the face (a run with 3 variants counts once)
    usage: int
    images: int
    approved: int
    rejected: int

    @property
    def decided(self) -> int:
        return self.approved + self.rejected

    @property
    def approval_rate(self) -> float | None:
        """Share of the reviewed images that are approved (None before any review)."""
        return self.approved / self.decided if self.decided else None


def face_stats(*, face_ids: Iterable[int] | None = None) -> dict[int, FaceStats]:
    """Usage and approval counts per face, from GenerationJob and Asset rows (two queries)."""
    jobs = GenerationJob.objects.filter(face__isnull=False)
    assets = Asset.objects.filter(kind=Asset.Kind.IMAGE, job__face__isnull=False)
    if face_ids is not None:
        ids = list(face_ids)
        jobs, assets = jobs.filter(face_id__in=ids), assets.filter(job__face_id__in=ids)
    usage = dict(
        jobs.values("face_id")
        .annotate(n=Count("run_id", distinct=True))
        .values_list("face_id", "n")
        .order_by()
    )
    counts = (
        assets.values("job__face_id")
        .annotate(
            images=Count("id"),
            approved=Count("id", filter=Q(status__in=APPROVED_STATUSES)),
            rejected=Count("id", filter=Q(status__in=REJECTED_STATUSES)),
        )
        .order_by()
    )
    by_face = {row["job__face_id"]: row for row in counts}
    return {
        face_id: FaceStats(
            usage=usage.get(face_id, 0),
            images=by_face.get(face_id, {}).get("images", 0),
            approved=by_face.get(face_id, {}).get("approved", 0),
            rejected=by_face.get(face_id, {}).get("rejected", 0),
        )
        for face_id in set(usage) | set(by_face)
    }


def with_face_usage(faces: QuerySet[Face]) -> QuerySet[Face]:
    """Annotate ``usage_count``, ``images_approved`` and ``images_rejected`` in the same query."""
    runs = (
        GenerationJob.objects.filter(face=OuterRef("pk"))
        .order_by()
        .values("face")
        .annotate(n=Count("run", distinct=True))
        .values("n")
    )
    images = Asset.objects.filter(job__face=OuterRef("pk"), kind=Asset.Kind.IMAGE)
    return faces.annotate(
        usage_count=Coalesce(Subquery(runs, output_field=IntegerField()), Value(0)),
        images_approved=count_subquery(images.filter(status__in=APPROVED_STATUSES), "job__face"),
        images_rejected=count_subquery(images.filter(status__in=REJECTED_STATUSES), "job__face"),
    )
