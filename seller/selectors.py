"""Read-side queries for seller pages. Every query is scoped to the signed-in seller.

A shoot, photo, mask or asset that belongs to another seller is looked up through the seller's
own shoots, so it is simply not found (404): it looks exactly like one that does not exist.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.shortcuts import get_object_or_404
from django.utils import timezone

from facelibrary.selectors import gallery_faces
from generation.models import Asset, AssetEvent, GenerationJob, GenerationRun
from qa.models import AssetCheck, AssetRating

from .models import (
    MaskCorrection,
    MaskVersion,
    PhotoAnalysis,
    Seller,
    Shoot,
    ShootEvent,
    ShootPhoto,
    ShootStatus,
)

S = ShootStatus

#: statuses in which a worker is busy with the shoot: the shoot page polls for progress
ACTIVE_STATUSES = frozenset({S.UPLOADED, S.ANALYZING, S.GENERATING})
#: statuses whose generated assets the seller can see
RESULT_STATUSES = frozenset({S.SELLER_REVIEW, S.QA_REVIEW, S.APPROVED, S.PUBLISHED})
#: seconds per generated image assumed before any job has finished
DEFAULT_SECONDS_PER_IMAGE = 30.0


def seller_for_user(user) -> Seller | None:
    return getattr(user, "seller", None) if user.is_authenticated else None


def shoots_for_seller(seller: Seller) -> QuerySet[Shoot]:
    return Shoot.objects.filter(seller=seller)


def shoot_for_seller(seller: Seller, shoot_id: int) -> Shoot:
    """The seller's own shoot or 404: another seller's shoot looks exactly like a missing one."""
    return get_object_or_404(shoots_for_seller(seller), pk=shoot_id)


# --- dashboard -----------------------------------------------------------------------------------


def dashboard_shoots(
    seller: Seller, *, query: str = "", status: str = "", category: str = ""
) -> QuerySet[Shoot]:
    """The seller's shoots, newest first, filtered, each with the id of its first photo."""
    first_photo = ShootPhoto.objects.filter(shoot=OuterRef("pk")).order_by("position", "id")
    shoots = shoots_for_seller(seller).annotate(
        thumb_photo_id=Subquery(first_photo.values("id")[:1])
    )
    if query:
        shoots = shoots.filter(Q(sku__icontains=query) | Q(title__icontains=query))
    if status:
        shoots = shoots.filter(status=status)
    if category:
        shoots = shoots.filter(category=category)
    return shoots.only(
        "id", "sku", "title", "category", "scene", "status", "status_changed_at", "created_at"
    ).order_by("-created_at", "-id")


def shoot_status_counts(seller: Seller) -> dict[str, int]:
    """How many of the seller's shoots are in each status (one GROUP BY)."""
    rows = shoots_for_seller(seller).order_by().values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


# --- one shoot -----------------------------------------------------------------------------------


def shoot_photos(shoot: Shoot) -> list[ShootPhoto]:
    return list(shoot.photos.only("id", "shoot_id", "width", "height", "original_name"))


def _timeline(events: QuerySet, subject: str) -> list:
    """Status changes, oldest first: who decided what, when, and why."""
    fields = ("from_status", "to_status", "note", "created_at", "actor__username")
    rows = events.select_related("actor").only("id", f"{subject}_id", *fields)
    return list(rows.order_by("created_at", "id"))


def shoot_timeline(shoot: Shoot) -> list[ShootEvent]:
    return _timeline(ShootEvent.objects.filter(shoot=shoot), "shoot")


@dataclass(frozen=True)
class Progress:
    """Work done out of work to do, for a progress bar."""

    done: int
    total: int
    label: str

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


def analysis_progress(shoot: Shoot) -> Progress:
    """Photos analysed by the current attempt out of the shoot's photos."""
    total = shoot.photos.count()
    done = (
        PhotoAnalysis.objects.filter(photo__shoot=shoot, attempt=shoot.analysis_attempts)
        .values("photo_id")
        .distinct()
        .count()
    )
    done = min(done, total)
    return Progress(done, total, f"{done} of {total} photo{'s' if total != 1 else ''} analysed")


def latest_run(shoot: Shoot) -> GenerationRun | None:
    return shoot.runs.order_by("-created_at", "-id").first()


@dataclass(frozen=True)
class RunProgress:
    run: GenerationRun
    jobs: list[GenerationJob]
    images: Progress
    steps: Progress


def generation_progress(shoot: Shoot) -> RunProgress | None:
    """Jobs and denoising steps done in the shoot's latest run."""
    run = latest_run(shoot)
    if run is None:
        return None
    jobs = list(
        run.jobs.select_related("face").only(
            "id", "run_id", "variant", "status", "progress_step", "progress_total", "error",
            "face__id", "face__code",
        )
    )  # fmt: skip
    finished = sum(1 for job in jobs if job.status not in GenerationJob.ACTIVE_STATUSES)
    steps_total = sum(max(job.progress_total, 1) for job in jobs)
    steps_done = sum(
        max(job.progress_total, 1)
        if job.status not in GenerationJob.ACTIVE_STATUSES
        else min(job.progress_step, max(job.progress_total, 1))
        for job in jobs
    )
    total = len(jobs)
    return RunProgress(
        run=run,
        jobs=jobs,
        images=Progress(finished, total, f"{finished} of {total} image{'s' if total != 1 else ''}"),
        steps=Progress(steps_done, steps_total, f"{round(100 * steps_done / steps_total)}%"),
    )


# --- mask review ---------------------------------------------------------------------------------


def _owned_by(seller: Seller, rows: QuerySet, shoot_path: str, shoot_id: int, pk: int):
    """Row ``pk`` of the seller's own shoot ``shoot_id`` (``shoot_path`` leads to it), or 404."""
    lookup = {f"{shoot_path}_id": shoot_id, f"{shoot_path}__seller": seller}
    return get_object_or_404(rows, pk=pk, **lookup)


def photo_for_seller(seller: Seller, shoot_id: int, photo_id: int) -> ShootPhoto:
    return _owned_by(
        seller, ShootPhoto.objects.select_related("shoot"), "shoot", shoot_id, photo_id
    )


def mask_for_seller(seller: Seller, shoot_id: int, mask_id: int) -> MaskVersion:
    masks = MaskVersion.objects.select_related("photo__shoot")
    return _owned_by(seller, masks, "photo__shoot", shoot_id, mask_id)


def analysis_for_seller(seller: Seller, shoot_id: int, analysis_id: int) -> PhotoAnalysis:
    return _owned_by(seller, PhotoAnalysis.objects.all(), "photo__shoot", shoot_id, analysis_id)


@dataclass
class PhotoReview:
    """What the mask review page shows for one photo."""

    photo: ShootPhoto
    analysis: PhotoAnalysis | None
    chosen: MaskVersion | None
    versions: list[MaskVersion]
    #: the id of the seller's correction the analysis worker is applying, if any
    pending_correction: int | None = None

    @property
    def correcting(self) -> bool:
        return self.pending_correction is not None

    @property
    def has_pose(self) -> bool:
        return bool(self.analysis and self.analysis.pose_image)

    @property
    def needs_standard_pose(self) -> bool:
        return self.analysis is not None and not self.analysis.keypoints

    @property
    def brush_max(self) -> int:
        """Largest brush radius offered, in working-image pixels (the service takes <= 200)."""
        return min(200, max(8, max(self.photo.width, self.photo.height) // 8))

    @property
    def brush_default(self) -> int:
        return max(3, max(self.photo.width, self.photo.height) // 60)


def _with_pending_correction(photos: QuerySet[ShootPhoto]) -> QuerySet[ShootPhoto]:
    """``pending_correction``: the id of the photo's correction being applied (not stale)."""
    pending = MaskCorrection.objects.filter(
        photo=OuterRef("pk"),
        status=MaskCorrection.Status.PENDING,
        queued_at__gte=timezone.now() - MaskCorrection.STALE_AFTER,
    )
    return photos.annotate(pending_correction=Subquery(pending.values("pk")[:1]))


def mask_review_photos(shoot: Shoot) -> list[PhotoReview]:
    """Each photo with its latest analysis, every mask version (chosen one first) and the
    correction being applied, if any."""
    photos = _with_pending_correction(shoot.photos.all()).prefetch_related(
        Prefetch("masks", queryset=MaskVersion.objects.order_by("-version")),
        Prefetch("analyses", queryset=PhotoAnalysis.objects.order_by("-created_at", "-id")),
    )
    return [review_for_photo(photo) for photo in photos]


def review_for_photo(photo: ShootPhoto) -> PhotoReview:
    versions = list(photo.masks.all())
    analyses = list(photo.analyses.all())
    chosen = next((mask for mask in versions if mask.is_chosen), versions[0] if versions else None)
    return PhotoReview(
        photo=photo,
        analysis=analyses[0] if analyses else None,
        chosen=chosen,
        versions=versions,
        pending_correction=getattr(photo, "pending_correction", None),
    )


def photo_review(seller: Seller, shoot_id: int, photo_id: int) -> PhotoReview:
    photo = photo_for_seller(seller, shoot_id, photo_id)
    photo = (
        _with_pending_correction(ShootPhoto.objects.select_related("shoot"))
        .prefetch_related(
            Prefetch("masks", queryset=MaskVersion.objects.order_by("-version")),
            Prefetch("analyses", queryset=PhotoAnalysis.objects.order_by("-created_at", "-id")),
        )
        .get(pk=photo.pk)
    )
    return review_for_photo(photo)


def correction_for_photo(photo: ShootPhoto, correction_id: int) -> MaskCorrection | None:
    """One of the photo's corrections (the photo was looked up for the seller), with its result."""
    return (
        MaskCorrection.objects.select_related("result")
        .filter(pk=correction_id, photo=photo)
        .first()
    )


def corrections_pending(shoot: Shoot) -> bool:
    """True while the analysis worker is applying one of the seller's corrections to the shoot."""
    return MaskCorrection.objects.filter(
        photo__shoot=shoot,
        status=MaskCorrection.Status.PENDING,
        queued_at__gte=timezone.now() - MaskCorrection.STALE_AFTER,
    ).exists()


# --- face selection ------------------------------------------------------------------------------


def selectable_faces(filters: dict[str, Any]) -> QuerySet:
    """Faces a seller may pick (active, consented), filtered by library attributes."""
    return gallery_faces(filters=filters)


@dataclass(frozen=True)
class Timing:
    """Seconds per generated image: the median of recent jobs, or a first guess."""

    seconds: float
    samples: int


TIMING_CACHE_KEY = "seller:seconds-per-image"
TIMING_CACHE_SECONDS = 60


def seconds_per_image(*, sample: int = 50) -> Timing:
    """Median seconds per image over the most recent finished jobs (all sellers: timing only).

    Cached for a minute: every face page and status poll shows it, and it moves slowly.
    """
    cached = cache.get(TIMING_CACHE_KEY)
    if cached is not None:
        return Timing(*cached)
    timing = _measured_seconds_per_image(sample)
    cache.set(TIMING_CACHE_KEY, (timing.seconds, timing.samples), TIMING_CACHE_SECONDS)
    return timing


def _measured_seconds_per_image(sample: int) -> Timing:
    recent = list(
        GenerationJob.objects.filter(
            status=GenerationJob.Status.SUCCEEDED, seconds_per_image__isnull=False
        )
        .order_by("-finished_at")
        .values_list("seconds_per_image", flat=True)[:sample]
    )
    if not recent:
        return Timing(DEFAULT_SECONDS_PER_IMAGE, 0)
    return Timing(statistics.median(recent), len(recent))


def last_run_faces(shoot: Shoot) -> tuple[list[Any], int]:
    """The faces and the variants per face of the shoot's latest run (for 'regenerate')."""
    run = latest_run(shoot)
    if run is None:
        return [], 1
    jobs = list(run.jobs.select_related("face").order_by("id"))
    faces = list({job.face_id: job.face for job in jobs if job.face is not None}.values())
    per_face: dict[int | None, int] = defaultdict(int)
    for job in jobs:
        per_face[job.face_id] += 1
    return faces, max(per_face.values(), default=1)


# --- results -------------------------------------------------------------------------------------


def shoot_assets(shoot: Shoot) -> list[Asset]:
    """Every asset generated for the shoot, grouped by face, newest run first."""
    return list(
        Asset.objects.filter(job__run__shoot=shoot)
        .select_related("job__face", "job__run", "qa_review")
        .order_by(
            "job__face__code", "job__face_id", "-job__run__created_at", "job__variant", "kind"
        )
    )


def asset_for_seller(seller: Seller, shoot_id: int, asset_id: int) -> Asset:
    assets = Asset.objects.select_related("job__face", "job__run__shoot", "qa_review")
    return _owned_by(seller, assets, "job__run__shoot", shoot_id, asset_id)


def asset_timeline(asset: Asset) -> list[AssetEvent]:
    return _timeline(AssetEvent.objects.filter(asset=asset), "asset")


def asset_counts(shoot: Shoot) -> dict[str, int]:
    """Approved (by the seller), still to review, and all assets of the shoot (one query)."""
    return Asset.objects.filter(job__run__shoot=shoot).aggregate(
        approved=Count("id", filter=Q(status=Asset.Status.SELLER_APPROVED)),
        pending=Count("id", filter=Q(status=Asset.Status.GENERATED)),
        total=Count("id"),
    )


def qa_scores(assets: Iterable[Asset]) -> dict[int, list[AssetCheck]]:
    """The automatic QA checks of each asset (by asset id), when they have run."""
    ids = [asset.pk for asset in assets]
    scores: dict[int, list[AssetCheck]] = defaultdict(list)
    if ids:
        for check in AssetCheck.objects.filter(asset_id__in=ids).order_by("asset_id", "name"):
            scores[check.asset_id].append(check)
    return dict(scores)


def asset_rating(asset: Asset, user) -> AssetRating | None:
    """The signed-in seller's own star rating of one of their assets, if they gave one."""
    return AssetRating.objects.filter(asset=asset, rated_by=user).first()
