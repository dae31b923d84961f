"""QA in Django admin: the review queue, the review page, bulk decisions and statistics.

Reviewers see, per asset: the seller's photo, the garment mask, the result and the video side by
side with every automatic check and its threshold, and the asset's history (its ``AssetEvent``
rows: who moved it, when, why). Decisions go through ``qa.services`` (the asset state machine:
CAS and an event with the reviewer); only users with ``qa.decide_qa`` (group qa_reviewers) may
make them. An asset whose checks failed, errored or have not run is approved only with an
override reason (asked on its review page; bulk approve skips it and says so). Files are
streamed through an admin view, so the page works with local storage in production (where
/media/ is not served) and with a private S3 bucket alike.
"""

from __future__ import annotations

import itertools

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.html import format_html, format_html_join

from core.admin_tools import ChoiceFilter, ReadOnlyAdminMixin
from core.transitions import TransitionError
from generation.inputs import job_inputs
from generation.models import Asset

from . import selectors
from .forms import DecisionForm, QAActionForm
from .models import AssetCheck, AssetRating, CheckName, QAReview, QASubmission
from .services import (
    QA_DECIDE_PERMISSION,
    OverrideRequired,
    approval_gate,
    asset_qa_approve,
    asset_qa_reject,
    schedule_asset_checks,
)

DECIDE = QA_DECIDE_PERMISSION
MEDIA = ("original", "mask", "result", "video")


# --- filters -------------------------------------------------------------------------------------


class DecisionFilter(admin.SimpleListFilter):
    """Defaults to the queue (awaiting QA): that is what a reviewer opens the page for."""

    title = "decision"
    parameter_name = "decision"

    def lookups(self, request, model_admin):
        return [*QAReview.Decision.choices, ("all", "All")]

    def choices(self, changelist):
        value = self.value() or QAReview.Decision.PENDING
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or QAReview.Decision.PENDING
        return queryset if value == "all" else queryset.filter(decision=value)


def _checked_assets(**conditions: object) -> QuerySet:
    """Ids of the assets with a check row matching ``conditions`` (a subquery)."""
    return AssetCheck.objects.filter(**conditions).values("asset_id")


class ChecksFilter(ChoiceFilter):
    title = "automatic checks"
    parameter_name = "checks"
    options = {
        "failed": ("Some failed", lambda qs: qs.filter(asset_id__in=_checked_assets(passed=False))),
        "error": ("Some errored", lambda qs: qs.filter(asset_id__in=_checked_assets(errored=True))),
        "passed": (
            "None failed or errored",
            lambda qs: qs.filter(asset_id__in=_checked_assets())
            .exclude(asset_id__in=_checked_assets(passed=False))
            .exclude(asset_id__in=_checked_assets(errored=True)),
        ),
        "none": ("Not run yet", lambda qs: qs.exclude(asset_id__in=_checked_assets())),
    }


def score_range_filter(check: str, title: str, edges: list[float]) -> type[admin.SimpleListFilter]:
    """A filter with one choice per score band ``[edges[i], edges[i+1])`` of one check."""
    bands = [(None, edges[0]), *itertools.pairwise(edges), (edges[-1], None)]

    def label(low, high) -> str:
        if low is None:
            return f"< {high:g}"
        return f"≥ {low:g}" if high is None else f"{low:g} – {high:g}"

    class ScoreFilter(admin.SimpleListFilter):
        parameter_name = f"score_{check}"

        def lookups(self, request, model_admin):
            return [(str(i), label(*band)) for i, band in enumerate(bands)]

        def queryset(self, request, queryset):
            if self.value() is None:
                return queryset
            try:
                low, high = bands[int(self.value())]
            except (ValueError, IndexError):
                return queryset
            # one filter() call: the name and the score must match on the same check row
            cond = Q(asset__qa_checks__name=check)
            if low is not None:
                cond &= Q(asset__qa_checks__score__gte=low)
            if high is not None:
                cond &= Q(asset__qa_checks__score__lt=high)
            return queryset.filter(cond)

    ScoreFilter.title = title
    ScoreFilter.__name__ = f"ScoreFilter_{check}"
    return ScoreFilter


# --- media helpers -----------------------------------------------------------------------------


def _video_asset(asset: Asset) -> Asset | None:
    if asset.kind == Asset.Kind.VIDEO:
        return asset
    return Asset.objects.filter(job_id=asset.job_id, kind=Asset.Kind.VIDEO).first()


def media_file(review: QAReview, which: str):
    """The file behind one of the review page's media slots (or None)."""
    asset = review.asset
    if which == "result":
        return asset.poster if asset.kind == Asset.Kind.VIDEO else asset.file
    if which == "video":
        video = _video_asset(asset)
        return video.file if video else None
    used = job_inputs(asset.job)  # the photo and mask the generator used
    if which == "original":
        return used.photo.image if used.photo else None
    if which == "mask":
        return used.mask.mask if used.mask else None
    return None


# --- admin ---------------------------------------------------------------------------------------


@admin.register(QAReview)
class QAReviewAdmin(admin.ModelAdmin):
    list_display = (
        "thumbs",
        "asset_link",
        "sku",
        "seller",
        "category",
        "face",
        "check_summary",
        "decision",
        "submitted_at",
    )
    list_display_links = ("asset_link",)
    list_filter = (
        DecisionFilter,
        ChecksFilter,
        score_range_filter(CheckName.GARMENT_SSIM, "garment SSIM", [0.9, 0.98]),
        score_range_filter(CheckName.GARMENT_CHANGED, "garment changed", [0.002, 0.02]),
        score_range_filter(CheckName.FACE_IDENTITY, "face distance", [0.45, 0.6]),
        score_range_filter(CheckName.SHARPNESS, "sharpness", [60, 200]),
        ("asset__job__face", admin.RelatedOnlyFieldListFilter),
        ("asset__job__run__shoot__category", admin.ChoicesFieldListFilter),
        ("asset__job__run__shoot__seller", admin.RelatedOnlyFieldListFilter),
        "asset__kind",
        "reason",
    )
    search_fields = (
        "asset__job__run__shoot__sku",
        "asset__job__run__shoot__title",
        "asset__job__run__shoot__seller__store_name",
    )
    actions = ("approve_selected", "reject_selected", "rerun_checks")
    action_form = QAActionForm
    list_per_page = 25

    def get_queryset(self, request):
        return selectors.review_queue()

    # -- permissions: reviews are made by services, never added or deleted by hand --
    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return self.has_decide_permission(request)

    def has_decide_permission(self, request) -> bool:
        return request.user.has_perm(DECIDE)

    # -- list columns --
    @admin.display(description="original · mask · result · video")
    def thumbs(self, review: QAReview):
        cells = []
        for which in MEDIA:
            if which == "video":
                if _video_asset(review.asset) is None:
                    continue
                url = reverse("admin:qa_qareview_media", args=[review.pk, "video"])
                cells.append(format_html('<a href="{}">▶ video</a>', url))
                continue
            url = reverse("admin:qa_qareview_media", args=[review.pk, which])
            cells.append(format_html('<img src="{}" alt="{}" class="qa-thumb">', url, which))
        return format_html(
            '<div class="qa-thumbs">{}</div>', format_html_join("", "{}", ((c,) for c in cells))
        )

    @admin.display(description="asset", ordering="asset_id")
    def asset_link(self, review: QAReview) -> str:
        return f"{review.asset.get_kind_display()} #{review.asset_id}"

    @admin.display(description="SKU", ordering="asset__job__run__shoot__sku")
    def sku(self, review: QAReview) -> str:
        return review.asset.job.run.shoot.sku

    @admin.display(description="seller")
    def seller(self, review: QAReview):
        return review.asset.job.run.shoot.seller

    @admin.display(description="category")
    def category(self, review: QAReview) -> str:
        return review.asset.job.run.shoot.get_category_display()

    @admin.display(description="face")
    def face(self, review: QAReview):
        return review.asset.job.face or "—"

    @admin.display(description="checks")
    def check_summary(self, review: QAReview):
        checks = list(review.asset.qa_checks.all())
        if not checks:
            return "not run yet"
        return format_html_join(
            " ",
            '<span class="qa-badge qa-{}" title="{} (limit {})">{} {}</span>',
            (
                (
                    c.verdict.replace("/", ""),
                    c.get_name_display(),
                    c.threshold_text,
                    c.name,
                    "—" if c.score is None else f"{c.score:.3g}",
                )
                for c in checks
            ),
        )

    # -- bulk actions --
    def _decide_many(self, request, queryset, decide) -> None:
        done, problems, skipped = 0, [], []
        for review in queryset.select_related("asset"):
            try:
                decide(review.asset)
                done += 1
            except OverrideRequired as exc:  # nothing was changed; decided one by one
                skipped.append(f"#{exc.asset_id} ({exc.gate.short})")
            except (TransitionError, ValidationError, PermissionDenied) as exc:
                text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                problems.append(f"#{review.asset_id}: {text}")
        if done:
            self.message_user(request, f"{done} asset(s) decided.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"Skipped {len(skipped)} asset(s) that need an override reason (failed, errored "
                f"or not yet run checks): {', '.join(skipped)}. Open each to approve it with a "
                "reason, or reject it.",
                messages.WARNING,
            )
        for problem in problems[:10]:
            self.message_user(request, problem, messages.WARNING)

    @admin.action(description="Approve selected assets", permissions=["decide"])
    def approve_selected(self, request, queryset) -> None:
        self._decide_many(
            request, queryset, lambda asset: asset_qa_approve(asset=asset, reviewer=request.user)
        )

    @admin.action(description="Reject selected assets (reason below)", permissions=["decide"])
    def reject_selected(self, request, queryset) -> None:
        form = QAActionForm(request.POST)
        form.is_valid()
        reason = form.cleaned_data.get("reason", "")
        comment = form.cleaned_data.get("comment", "")
        if not reason:
            self.message_user(request, "Pick a rejection reason first.", messages.ERROR)
            return
        self._decide_many(
            request,
            queryset,
            lambda asset: asset_qa_reject(
                asset=asset, reviewer=request.user, reason=reason, comment=comment
            ),
        )

    @admin.action(description="Run the automatic checks again", permissions=["decide"])
    def rerun_checks(self, request, queryset) -> None:
        ids = list(queryset.values_list("asset_id", flat=True))
        schedule_asset_checks(asset_ids=ids, rerun=True)
        self.message_user(request, f"Checks re-queued for {len(ids)} asset(s).")

    # -- pages --
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("stats/", wrap(self.stats_view), name="qa_stats"),
            path(
                "<int:pk>/media/<str:which>/",
                wrap(self.media_view),
                name="qa_qareview_media",
            ),
            *super().get_urls(),
        ]

    def media_view(self, request, pk: int, which: str):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if which not in MEDIA:
            raise Http404
        review = get_object_or_404(QAReview.objects.select_related("asset__job__run"), pk=pk)
        file = media_file(review, which)
        if not file:
            raise Http404("No such file.")
        return FileResponse(file.open("rb"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        review = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_view_permission(request, review):
            raise PermissionDenied
        can_decide = self.has_decide_permission(request)
        form = DecisionForm(request.POST or None)
        if request.method == "POST":
            if not can_decide:
                raise PermissionDenied
            if form.is_valid():
                try:
                    return self._apply_decision(request, review, form.cleaned_data)
                except OverrideRequired as exc:  # the page again, asking for the reason
                    form.add_error("override_reason", exc.messages[0])
        gate = approval_gate(review.asset)
        checks = selectors.checks_of(review.asset)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"QA: {review.asset.get_kind_display().lower()} #{review.asset_id}",
            "review": review,
            "shoot": review.asset.job.run.shoot,
            "checks": checks,
            "gate": gate,
            "blocking_checks": [c for c in checks if c.blocks_approval],
            "events": selectors.asset_history(review.asset),
            "media": {w: bool(media_file(review, w)) for w in MEDIA},
            "form": form,
            "can_decide": can_decide and review.decision == QAReview.Decision.PENDING,
            "next_pending": self._next_pending(review),
        }
        return TemplateResponse(request, "admin/qa/qareview/review.html", context)

    def _apply_decision(self, request, review: QAReview, data: dict):
        try:
            if data["decision"] == "approve":
                asset_qa_approve(
                    asset=review.asset,
                    reviewer=request.user,
                    override_reason=data.get("override_reason", ""),
                )
            else:
                asset_qa_reject(
                    asset=review.asset,
                    reviewer=request.user,
                    reason=data["reason"],
                    comment=data.get("comment", ""),
                )
        except OverrideRequired:
            raise  # change_view shows the page again with the reason asked for
        except (TransitionError, ValidationError) as exc:
            text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            self.message_user(request, text, messages.ERROR)
            return HttpResponseRedirect(request.path)
        self.message_user(request, f"Asset #{review.asset_id}: {data['decision']}d.")
        following = self._next_pending(review)
        if following is not None:
            return HttpResponseRedirect(reverse("admin:qa_qareview_change", args=[following.pk]))
        return HttpResponseRedirect(reverse("admin:qa_qareview_changelist"))

    @staticmethod
    def _next_pending(review: QAReview) -> QAReview | None:
        return (
            QAReview.objects.filter(decision=QAReview.Decision.PENDING)
            .exclude(pk=review.pk)
            .order_by("submitted_at", "id")
            .first()
        )

    def stats_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        since = parse_date(request.GET.get("since", "") or "")
        since_dt = (
            timezone.make_aware(timezone.datetime.combine(since, timezone.datetime.min.time()))
            if since
            else None
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "QA feedback statistics",
            "since": since,
            "overall": selectors.overall_statistics(since=since_dt),
            "dimensions": selectors.feedback_statistics(since=since_dt),
        }
        return TemplateResponse(request, "admin/qa/stats.html", context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "stats_url": reverse("admin:qa_stats")}
        return super().changelist_view(request, extra_context)


@admin.register(AssetCheck)
class AssetCheckAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("asset", "name", "score", "threshold_text", "verdict", "flags", "seconds")
    list_filter = ("name", "passed", "errored")
    search_fields = ("asset__id",)
    readonly_fields = [f.name for f in AssetCheck._meta.fields]


@admin.register(QASubmission)
class QASubmissionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("shoot", "number", "submitted_by", "outcome", "created_at", "settled_at")
    list_filter = ("outcome",)


@admin.register(AssetRating)
class AssetRatingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("asset", "stars", "rated_by", "comment", "updated_at")
    list_filter = ("stars",)
