"""Seller pages: server-rendered, htmx for partial updates and polling.

Views parse input, call a service or a selector, and render. Every object is looked up through
the signed-in seller's own shoots (``seller/selectors.py``), so another seller's shoot, photo,
mask or asset is a 404.
"""

from __future__ import annotations

import io
import mimetypes
from dataclasses import dataclass
from functools import partial, wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.paginator import Paginator
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import (
    HttpResponseClientRedirect,
    HttpResponseClientRefresh,
    trigger_client_event,
)
from PIL import Image, ImageOps

from core.files import StorageWriteError
from core.ratelimit import limit_shoot_uploads
from core.transitions import TransitionError
from generation.inference.errors import InferenceError
from generation.models import Asset
from generation.services import (
    GenerationRequestError,
    shoot_retry_generation,
    shoot_start_generation,
)
from generation.services import shoot_cancel_generation as cancel_generation_service
from qa.selectors import rejections_for_shoot

from . import selectors as q
from .accounts import seller_create
from .forms import (
    FaceFilterForm,
    MaskChoiceForm,
    MaskCorrectionForm,
    NewShootForm,
    RateAssetForm,
    RejectAssetForm,
    ShootFilterForm,
    SignupForm,
)
from .masks import InvalidCorrection, mask_choose_version, shoot_use_standard_pose
from .masks import mask_correct as mask_correct_service
from .models import MaskCorrection, Shoot, ShootStatus
from .review import asset_rate, asset_seller_approve, asset_seller_reject, shoot_send_to_qa
from .services import shoot_confirm_mask, shoot_rerun_analysis
from .services import shoot_retry_analysis as retry_analysis_service
from .uploads import UploadFailed, UploadRejected, shoot_create

S = ShootStatus
SHOOTS_PER_PAGE = 24
FACES_PER_PAGE = 24
THUMB_SIDE = 480
#: errors a service raises with a message meant for the seller
SERVICE_ERRORS: tuple[type[Exception], ...] = (
    TransitionError,
    GenerationRequestError,
    ValidationError,
    InferenceError,
    InvalidCorrection,
    UploadFailed,
    StorageWriteError,
)


def seller_required(view):
    """Signed in and has a Seller profile; the profile is passed on as ``request.seller``."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        seller = q.seller_for_user(request.user)
        if seller is None:
            raise PermissionDenied("This page is for seller accounts.")
        request.seller = seller
        return view(request, *args, **kwargs)

    return wrapper


def seller_get(view):
    """A read-only seller page (GET/HEAD)."""
    return require_GET(seller_required(view))


def seller_post(view):
    """A seller action (POST, CSRF-checked like every POST)."""
    return require_POST(seller_required(view))


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


def _go(request: HttpRequest, url: str) -> HttpResponse:
    """Redirect, also for htmx requests (a full page load of ``url``)."""
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _shoot_url(shoot: Shoot) -> str:
    return reverse("seller:shoot", args=[shoot.pk])


# --- dashboard -----------------------------------------------------------------------------------


@seller_get
def dashboard(request: HttpRequest) -> HttpResponse:
    form = ShootFilterForm(request.GET)
    filters = form.filters()
    counts = q.shoot_status_counts(request.seller)
    paginator = Paginator(q.dashboard_shoots(request.seller, **filters), SHOOTS_PER_PAGE)
    if not filters["query"] and not filters["category"]:
        # The status counts already say how many there are: no COUNT(*) for the paginator.
        status = filters["status"]
        paginator.count = counts.get(status, 0) if status else sum(counts.values())
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "filtering": any(filters.values()),
        "query_string": query.urlencode(),
        "counts": counts,
        "statuses": S.choices,
    }
    if request.htmx and not request.htmx.boosted:
        return render(request, "seller/_shoot_list.html", context)
    return render(request, "seller/dashboard.html", context)


# --- new shoot -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@seller_required
@limit_shoot_uploads  # per-seller upload limits on POST (core/ratelimit.py)
def shoot_new(request: HttpRequest) -> HttpResponse:
    form = NewShootForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            shoot = shoot_create(
                seller=request.seller,
                sku=data["sku"],
                title=data["title"],
                category=data["category"],
                scene=data["scene"],
                files=data["photos"],
                actor=request.user,
            )
        except UploadRejected as exc:
            for name, reason in exc.errors:
                form.add_error("photos", f"{name}: {reason}" if name else reason)
        except SERVICE_ERRORS as exc:
            form.add_error(None, _message(exc))
        else:
            messages.success(request, f"Shoot {shoot.sku} created. Analysing your photos now.")
            return _go(request, _shoot_url(shoot))
    status = 422 if form.is_bound and form.errors else 200
    template = "seller/_shoot_form.html" if request.htmx else "seller/shoot_new.html"
    return render(request, template, {"form": form}, status=status)


# --- shoot page and live status -----------------------------------------------------------------


def _status_context(shoot: Shoot) -> dict:
    context: dict = {"shoot": shoot, "polling": shoot.status in q.ACTIVE_STATUSES}
    if shoot.status in (S.UPLOADED, S.ANALYZING):
        context["analysis"] = q.analysis_progress(shoot)
    if shoot.status in (S.GENERATING, S.GENERATION_FAILED):
        progress = q.generation_progress(shoot)
        context["generation"] = progress
        if progress and shoot.status == S.GENERATING:
            left = progress.images.total - progress.images.done
            context["eta_seconds"] = left * q.seconds_per_image().seconds
    if shoot.status == S.SELLER_REVIEW:
        context["approved_count"] = q.asset_counts(shoot)["approved"]
    return context


@seller_get
def shoot_detail(request: HttpRequest, shoot_id: int) -> HttpResponse:
    shoot = q.shoot_for_seller(request.seller, shoot_id)
    context = _status_context(shoot)
    context |= {"photos": q.shoot_photos(shoot), "events": q.shoot_timeline(shoot)}
    return render(request, "seller/shoot_detail.html", context)


@seller_get
def shoot_status(request: HttpRequest, shoot_id: int) -> HttpResponse:
    """The live status panel, polled by the shoot page while a worker is busy."""
    shoot = q.shoot_for_seller(request.seller, shoot_id)
    seen = request.GET.get("seen", "")
    if request.htmx and seen and seen != shoot.status:
        # The shoot moved on: reload the page so every section shows the new stage.
        return HttpResponseClientRefresh()
    return render(request, "seller/_status_panel.html", _status_context(shoot))


def _attempt(
    request: HttpRequest, call, *, success: str, then: str, failed: str = ""
) -> HttpResponse:
    """Run a service call; tell the seller how it went and go to ``then`` (``failed`` on error)."""
    try:
        call()
    except SERVICE_ERRORS as exc:
        messages.error(request, _message(exc))
        return _go(request, failed or then)
    messages.success(request, success)
    return _go(request, then)


def _shoot_action(request: HttpRequest, shoot_id: int, action, success: str) -> HttpResponse:
    shoot = q.shoot_for_seller(request.seller, shoot_id)
    call = partial(action, shoot=shoot, actor=request.user)
    return _attempt(request, call, success=success, then=_shoot_url(shoot))


@seller_post
def shoot_retry_analysis(request: HttpRequest, shoot_id: int) -> HttpResponse:
    return _shoot_action(request, shoot_id, retry_analysis_service, "Analysis restarted.")


@seller_post
def shoot_rerun(request: HttpRequest, shoot_id: int) -> HttpResponse:
    return _shoot_action(request, shoot_id, shoot_rerun_analysis, "Analysis re-run started.")


def _tell_dropped(request: HttpRequest, run) -> None:
    """Faces the generation service left out (retired, consent ended), one message each."""
    for reason in getattr(run, "dropped", {}).values():
        messages.warning(request, reason)


@seller_post
def shoot_retry_generation_view(request: HttpRequest, shoot_id: int) -> HttpResponse:
    shoot = q.shoot_for_seller(request.seller, shoot_id)

    def call():
        _tell_dropped(request, shoot_retry_generation(shoot=shoot, actor=request.user))

    return _attempt(request, call, success="Generation restarted.", then=_shoot_url(shoot))


@seller_post
def shoot_cancel_generation(request: HttpRequest, shoot_id: int) -> HttpResponse:
    shoot = q.shoot_for_seller(request.seller, shoot_id)
    cancel_generation_service(shoot=shoot)
    messages.info(request, "Generation is being cancelled.")
    return _go(request, _shoot_url(shoot))


# --- mask review ---------------------------------------------------------------------------------


@seller_get
def mask_review(request: HttpRequest, shoot_id: int) -> HttpResponse:
    shoot = q.shoot_for_seller(request.seller, shoot_id)
    context = {
        "shoot": shoot,
        "reviews": q.mask_review_photos(shoot),
        "editable": shoot.status == S.MASK_REVIEW,
    }
    return render(request, "seller/mask_review.html", context)


def _photo_panel(request: HttpRequest, shoot_id: int, photo_id: int, **extra) -> HttpResponse:
    review = q.photo_review(request.seller, shoot_id, photo_id)
    shoot = review.photo.shoot
    if not request.htmx:
        for text in filter(None, [extra.get("error"), extra.get("notice")]):
            messages.info(request, text)
        return redirect("seller:mask_review", shoot_id=shoot.pk)
    context = {"shoot": shoot, "review": review, "editable": shoot.status == S.MASK_REVIEW}
    return render(request, "seller/_photo_review.html", context | extra)


@seller_post
def mask_correct(request: HttpRequest, shoot_id: int, photo_id: int) -> HttpResponse:
    photo = q.photo_for_seller(request.seller, shoot_id, photo_id)
    form = MaskCorrectionForm(request.POST)
    if not form.is_valid():
        error = " ".join(msg for msgs in form.errors.values() for msg in msgs)
        return _photo_panel(request, shoot_id, photo_id, error=error)
    try:
        correction = mask_correct_service(
            photo=photo,
            actor=request.user,
            include_strokes=form.cleaned_data["include_strokes"],
            exclude_strokes=form.cleaned_data["exclude_strokes"],
            brush_radius=form.cleaned_data["brush_radius"],
        )
    except SERVICE_ERRORS as exc:
        return _photo_panel(request, shoot_id, photo_id, error=_message(exc))
    correction = q.correction_for_photo(photo, correction.pk)  # done already in sync mode
    return _photo_panel(request, shoot_id, photo_id, **_correction_outcome(correction))


def _correction_outcome(correction: MaskCorrection | None) -> dict[str, str]:
    """The panel's notice or error about a correction the analysis worker applies."""
    if correction is None:
        return {}
    if correction.status == MaskCorrection.Status.DONE and correction.result:
        return {"notice": f"Mask version {correction.result.version} made from your corrections."}
    if correction.status == MaskCorrection.Status.FAILED:
        return {"error": correction.error or "Your correction could not be applied."}
    return {}  # still being applied: the panel says so itself, and polls


@seller_get
def mask_panel(request: HttpRequest, shoot_id: int, photo_id: int) -> HttpResponse:
    """One photo's review panel, polled while a correction of it is being applied."""
    review = q.photo_review(request.seller, shoot_id, photo_id)
    shoot = review.photo.shoot
    correction_id = request.GET.get("correction", "")
    correction = None
    if correction_id.isdigit():
        correction = q.correction_for_photo(review.photo, int(correction_id))
    context = {"shoot": shoot, "review": review, "editable": shoot.status == S.MASK_REVIEW}
    return render(request, "seller/_photo_review.html", context | _correction_outcome(correction))


@seller_post
def mask_choose(request: HttpRequest, shoot_id: int, photo_id: int) -> HttpResponse:
    form = MaskChoiceForm(request.POST)
    if not form.is_valid():
        raise Http404
    mask = q.mask_for_seller(request.seller, shoot_id, form.cleaned_data["mask"])
    if mask.photo_id != photo_id:
        raise Http404
    try:
        mask_choose_version(mask=mask, actor=request.user)
    except SERVICE_ERRORS as exc:
        return _photo_panel(request, shoot_id, photo_id, error=_message(exc))
    return _photo_panel(request, shoot_id, photo_id, notice=f"Using mask version {mask.version}.")


@seller_post
def shoot_standard_pose(request: HttpRequest, shoot_id: int) -> HttpResponse:
    shoot = q.shoot_for_seller(request.seller, shoot_id)
    try:
        shoot_use_standard_pose(shoot=shoot, actor=request.user)
    except SERVICE_ERRORS as exc:
        messages.error(request, _message(exc))
    else:
        messages.success(request, "The standard pose will be used for photos without a pose.")
    return _go(request, reverse("seller:mask_review", args=[shoot.pk]))


@seller_post
def mask_confirm(request: HttpRequest, shoot_id: int) -> HttpResponse:
    shoot = q.shoot_for_seller(request.seller, shoot_id)
    if q.corrections_pending(shoot):
        messages.error(request, "Your corrections are still being applied; confirm once they are.")
        return _go(request, reverse("seller:mask_review", args=[shoot.pk]))
    try:
        shoot_confirm_mask(shoot=shoot, actor=request.user)
    except SERVICE_ERRORS as exc:
        messages.error(request, _message(exc))
        return _go(request, reverse("seller:mask_review", args=[shoot.pk]))
    messages.success(request, "Mask confirmed. Now pick the faces for your shoot.")
    return _go(request, reverse("seller:faces", args=[shoot.pk]))


# --- face selection ------------------------------------------------------------------------------


@dataclass
class SlicePage:
    """A page of a queryset without a COUNT query: one extra row says whether more follow."""

    object_list: list
    number: int
    has_next: bool

    @classmethod
    def of(cls, queryset, number: str | None, per_page: int) -> SlicePage:
        page = int(number) if number and number.isdigit() and int(number) > 0 else 1
        start = (page - 1) * per_page
        rows = list(queryset[start : start + per_page + 1])
        return cls(rows[:per_page], page, len(rows) > per_page)

    def __iter__(self):
        return iter(self.object_list)

    @property
    def next_page_number(self) -> int:
        return self.number + 1


def _estimate(images: int) -> dict:
    timing = q.seconds_per_image()
    per_image = timing.seconds
    cost_per_hour = float(getattr(settings, "GPU_COST_PER_HOUR", 0) or 0)
    return {
        "images": images,
        "samples": timing.samples,
        "seconds_per_image": per_image,
        "seconds": images * per_image,
        "cost_per_image": per_image * cost_per_hour / 3600,
        "cost": images * per_image * cost_per_hour / 3600,
        "currency": getattr(settings, "GPU_COST_CURRENCY", "$"),
    }


@require_http_methods(["GET", "POST"])
@seller_required
def face_selection(request: HttpRequest, shoot_id: int) -> HttpResponse:
    from .forms import StartGenerationForm

    shoot = q.shoot_for_seller(request.seller, shoot_id)
    filter_form = FaceFilterForm(request.GET)
    faces = q.selectable_faces(filter_form.filters())
    page = SlicePage.of(faces, request.GET.get("page"), FACES_PER_PAGE)
    filter_query = request.GET.copy()
    filter_query.pop("page", None)
    gallery = {"shoot": shoot, "page": page, "filter_query": filter_query.urlencode()}
    if request.htmx and request.method == "GET":
        partial = "_face_cards" if request.GET.get("page") else "_face_gallery"
        return render(request, f"seller/{partial}.html", gallery | {"selected": set()})

    # The valid choices are only needed to check a submission.
    posted = request.method == "POST"
    face_ids = list(q.selectable_faces({}).values_list("pk", flat=True)) if posted else []
    form = StartGenerationForm(
        request.POST or None, face_ids=face_ids, initial={"scene": shoot.scene}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        chosen = list(q.selectable_faces({}).filter(pk__in=data["faces"]))
        try:
            run = shoot_start_generation(
                shoot=shoot,
                faces=chosen,
                variants=data["variants"],
                actor=request.user,
                run_settings={"scene": data["scene"]},
            )
        except SERVICE_ERRORS as exc:
            form.add_error(None, _message(exc))
        else:
            _tell_dropped(request, run)
            images = run.jobs.count()
            messages.success(request, f"Generating {images} images.")
            return _go(request, _shoot_url(shoot))
    selected = {int(pk) for pk in form["faces"].value() or [] if str(pk).isdigit()}
    variants = int(form["variants"].value() or 1)
    context = gallery | {
        "form": form,
        "filter_form": filter_form,
        "selected": selected,
        "estimate": _estimate(len(selected) * variants),
        "can_start": shoot.status in (S.FACE_SELECTION, S.SELLER_REVIEW),
    }
    status = 422 if form.is_bound and form.errors else 200
    return render(request, "seller/faces.html", context, status=status)


# --- results -------------------------------------------------------------------------------------


#: asset statuses the seller can still change their mind about
SELLER_DECIDABLE = frozenset(
    {Asset.Status.GENERATED, Asset.Status.SELLER_APPROVED, Asset.Status.SELLER_REJECTED}
)


def _asset_context(shoot: Shoot, asset: Asset, scores: dict, **extra) -> dict:
    reviewable = shoot.status == S.SELLER_REVIEW and asset.status in SELLER_DECIDABLE
    return {
        "shoot": shoot,
        "asset": asset,
        "scores": scores.get(asset.pk, []),
        "reviewable": reviewable,
        **extra,
    }


@seller_get
def results(request: HttpRequest, shoot_id: int) -> HttpResponse:
    shoot = q.shoot_for_seller(request.seller, shoot_id)
    counts = q.asset_counts(shoot)
    summary = {"shoot": shoot, "counts": counts, "reviewable": shoot.status == S.SELLER_REVIEW}
    if request.htmx and request.GET.get("part") == "summary":
        # Re-read after an approve/reject on this page (event "asset-reviewed").
        return render(request, "seller/_results_summary.html", summary)
    assets = q.shoot_assets(shoot)
    scores = q.qa_scores(assets)
    cards = [_asset_context(shoot, asset, scores) for asset in assets]
    # What QA sent back in its latest round, with reasons: only looked up when QA rejected any
    rejected = any(
        getattr(asset, "qa_review", None) and asset.qa_review.decision == "rejected"
        for asset in assets
    )
    qa_rejections = rejections_for_shoot(shoot=shoot) if rejected else []
    return render(
        request, "seller/results.html", summary | {"cards": cards, "qa_rejections": qa_rejections}
    )


@seller_get
def asset_detail(request: HttpRequest, shoot_id: int, asset_id: int) -> HttpResponse:
    asset = q.asset_for_seller(request.seller, shoot_id, asset_id)
    shoot = asset.job.run.shoot
    siblings = {a.kind: a for a in asset.job.assets.all()}
    photos = q.shoot_photos(shoot)
    context = _asset_context(shoot, asset, q.qa_scores([asset]))
    context |= {
        "compact": True,
        "image": siblings.get(Asset.Kind.IMAGE),
        "video": siblings.get(Asset.Kind.VIDEO),
        "original": photos[0] if photos else None,
        "events": q.asset_timeline(asset),
    }
    context |= _rating_context(request, asset)
    return render(request, "seller/asset_detail.html", context)


def _asset_response(request: HttpRequest, asset: Asset, **extra) -> HttpResponse:
    shoot = asset.job.run.shoot
    if not request.htmx:
        if extra.get("error"):
            messages.error(request, extra["error"])
        return redirect("seller:results", shoot_id=shoot.pk)
    asset.refresh_from_db()
    context = _asset_context(shoot, asset, q.qa_scores([asset]), **extra)
    context["compact"] = request.POST.get("compact") == "1"
    response = render(request, "seller/_asset_card.html", context)
    return trigger_client_event(response, "asset-reviewed")


@seller_post
def asset_approve(request: HttpRequest, shoot_id: int, asset_id: int) -> HttpResponse:
    asset = q.asset_for_seller(request.seller, shoot_id, asset_id)
    try:
        asset_seller_approve(asset=asset, actor=request.user)
    except SERVICE_ERRORS as exc:
        return _asset_response(request, asset, error=_message(exc))
    return _asset_response(request, asset)


@seller_post
def asset_reject(request: HttpRequest, shoot_id: int, asset_id: int) -> HttpResponse:
    asset = q.asset_for_seller(request.seller, shoot_id, asset_id)
    form = RejectAssetForm(request.POST)
    if not form.is_valid():
        return _asset_response(request, asset, error=" ".join(form.errors["reason"]))
    try:
        asset_seller_reject(asset=asset, actor=request.user, reason=form.cleaned_data["reason"])
    except SERVICE_ERRORS as exc:
        return _asset_response(request, asset, error=_message(exc))
    return _asset_response(request, asset)


def _rating_context(request: HttpRequest, asset: Asset, form=None, error: str = "") -> dict:
    rating = q.asset_rating(asset, request.user)
    if form is None:
        initial = {"stars": rating.stars, "comment": rating.comment} if rating else {}
        form = RateAssetForm(initial=initial)
    return {"rating": rating, "rating_form": form, "rating_error": error}


@seller_post
def asset_rate_view(request: HttpRequest, shoot_id: int, asset_id: int) -> HttpResponse:
    """The seller's 1-5 star rating of one of their results (htmx swaps the rating card)."""
    asset = q.asset_for_seller(request.seller, shoot_id, asset_id)
    form = RateAssetForm(request.POST)
    error = ""
    if not form.is_valid():
        error = " ".join(dict.fromkeys(m for errors in form.errors.values() for m in errors))
    else:
        data = form.cleaned_data
        try:
            stars, comment = data["stars"], data["comment"]
            asset_rate(asset=asset, actor=request.user, stars=stars, comment=comment)
        except SERVICE_ERRORS as exc:
            error = _message(exc)
    if request.htmx:
        context = {"shoot": asset.job.run.shoot, "asset": asset}
        context |= _rating_context(request, asset, form if error else None, error)
        return render(request, "seller/_asset_rating.html", context, status=422 if error else 200)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Rating saved: {stars} of 5 stars.")
    return redirect("seller:asset", shoot_id=asset.job.run.shoot_id, asset_id=asset.pk)


@seller_post
def shoot_regenerate(request: HttpRequest, shoot_id: int) -> HttpResponse:
    """Same faces and variants as the last run, new seeds."""
    shoot = q.shoot_for_seller(request.seller, shoot_id)
    faces, variants = q.last_run_faces(shoot)
    last = q.latest_run(shoot)
    same_as_last = {"faces": faces, "variants": variants}
    same_as_last["run_settings"] = dict(last.settings) if last else {}

    def call():
        # The service checks each face's consent now and leaves out those no longer usable.
        run = shoot_start_generation(shoot=shoot, actor=request.user, **same_as_last)
        _tell_dropped(request, run)

    success = "Generating new variants with new seeds."
    return _attempt(request, call, success=success, then=_shoot_url(shoot))


@seller_post
def shoot_send_to_qa_view(request: HttpRequest, shoot_id: int) -> HttpResponse:
    shoot = q.shoot_for_seller(request.seller, shoot_id)
    return _attempt(
        request,
        partial(shoot_send_to_qa, shoot=shoot, actor=request.user),
        success="Sent to QA. We will tell you when they are reviewed.",
        then=_shoot_url(shoot),
        failed=reverse("seller:results", args=[shoot.pk]),
    )


# --- files (always through the seller's own shoots) ---------------------------------------------


def _serve(field_file: FieldFile, *, download: bool = False) -> HttpResponse:
    if not field_file:
        raise Http404
    storage = field_file.storage
    if not isinstance(storage, FileSystemStorage):
        return redirect(field_file.url)  # private bucket: a short-lived signed URL
    try:
        handle = storage.open(field_file.name, "rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    content_type = mimetypes.guess_type(field_file.name)[0] or "application/octet-stream"
    response = FileResponse(
        handle,
        as_attachment=download,
        filename=field_file.name.rsplit("/", 1)[-1],
        content_type=content_type,
    )
    # Stored names never change content (uploads get fresh names), so browsers may keep them.
    response["Cache-Control"] = "private, max-age=86400"
    return response


def _thumbnail(field_file: FieldFile, side: int = THUMB_SIDE) -> HttpResponse:
    """A JPEG thumbnail, made once and kept next to the original in storage."""
    if not field_file:
        raise Http404
    storage = field_file.storage
    stem = field_file.name.rsplit(".", 1)[0]
    name = f"thumbs/{side}/{stem}.jpg"
    if not storage.exists(name):
        try:
            with storage.open(field_file.name, "rb") as handle, Image.open(handle) as img:
                thumb = ImageOps.exif_transpose(img).convert("RGB")
                thumb.thumbnail((side, side))
                buffer = io.BytesIO()
                thumb.save(buffer, "JPEG", quality=82, optimize=True)
        except FileNotFoundError as exc:
            raise Http404 from exc
        name = storage.save(name, ContentFile(buffer.getvalue()))
    return _serve(FieldFile(None, field_file.field, name))


@seller_get
def photo_file(request: HttpRequest, shoot_id: int, photo_id: int, variant: str) -> HttpResponse:
    photo = q.photo_for_seller(request.seller, shoot_id, photo_id)
    if variant == "thumb":
        return _thumbnail(photo.image)
    if variant == "original":
        return _serve(photo.original, download=True)
    return _serve(photo.image)


@seller_get
def mask_file(request: HttpRequest, shoot_id: int, mask_id: int) -> HttpResponse:
    return _serve(q.mask_for_seller(request.seller, shoot_id, mask_id).mask)


@seller_get
def pose_file(request: HttpRequest, shoot_id: int, analysis_id: int) -> HttpResponse:
    return _serve(q.analysis_for_seller(request.seller, shoot_id, analysis_id).pose_image)


@seller_get
def face_thumb(request: HttpRequest, face_id: int) -> HttpResponse:
    """A library face's thumbnail, for faces the seller may pick (active, consented) only."""
    face = get_object_or_404(q.selectable_faces({}), pk=face_id)
    reference = face.primary_reference
    if reference is None:
        raise Http404
    return _serve(reference.thumbnail)


@seller_get
def asset_file(request: HttpRequest, shoot_id: int, asset_id: int, variant: str) -> HttpResponse:
    asset = q.asset_for_seller(request.seller, shoot_id, asset_id)
    if variant == "thumb":
        return _thumbnail(asset.poster if asset.kind == Asset.Kind.VIDEO else asset.file)
    if variant == "poster":
        return _serve(asset.poster)
    return _serve(asset.file, download=request.GET.get("download") == "1")


# --- sign-up (behind settings.SIGNUP_ENABLED) ----------------------------------------------------


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.SIGNUP_ENABLED:
        raise Http404("Sign-up is closed.")
    if request.user.is_authenticated:
        return redirect("seller:dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        seller = seller_create(
            username=data["username"],
            password=data["password1"],
            email=data["email"],
            store_name=data["store_name"],
            catalog_seller_id=data["catalog_seller_id"],
        )
        login(request, seller.user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to Studio, {seller.store_name}.")
        return redirect("seller:dashboard")
    return render(request, "registration/signup.html", {"form": form})
