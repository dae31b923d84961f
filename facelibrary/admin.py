"""Face library admin for curators (staff in the ``face_curators`` group).

Status never changes through a form field: the bulk actions call ``services.face_activate`` /
``face_retire`` and report every refusal with its reasons. Reference photos are uploaded through
a file field on the face form and stored *after* the admin's transaction has committed
(``changeform_view``); the quality gate (model inference, which a page request never loads) then
runs in the ``analysis`` worker, and the page shows "Checking…" until its verdict is recorded. New
consents are recorded after the commit too, so their documents are not written inside it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from core.admin_tools import ChoiceFilter, ReadOnlyTabularInline
from core.files import safe_display_name
from generation.selectors import face_stats, with_face_usage

from . import selectors, services
from .forms import FaceAdminForm, NewConsentForm, ReasonForm
from .models import MONK_SCALE, Consent, Face, FaceEvent, FaceReference, Region, Source

THUMB_PX = 56


# --- small renderers -----------------------------------------------------------------------------


def _thumb(ref: FaceReference | None, *, alt: str, size: int = THUMB_PX) -> SafeString | str:
    if ref is None or not ref.thumbnail:
        return "—"
    return format_html(
        '<img src="{}" width="{}" height="{}" alt="{}" loading="lazy" style="border-radius:4px">',
        ref.thumbnail.url,
        size,
        size,
        alt,
    )


def _face_link(face_id: int | None, label: str | None = None) -> SafeString | str:
    if not face_id:
        return "—"
    url = reverse("admin:facelibrary_face_change", args=[face_id])
    return format_html('<a href="{}">{}</a>', url, label or f"face {face_id}")


def _checks_table(checks: list[dict]) -> SafeString | str:
    if not checks:
        return "—"
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                c["name"],
                _number(c["value"]),
                _threshold(c["threshold"]),
                "✓ pass" if c["passed"] else "✗ FAIL",
                c["message"],
            )
            for c in checks
        ),
    )
    return format_html(
        "<table><thead><tr><th>check</th><th>value</th><th>limit</th><th>result</th>"
        "<th>message</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


def _number(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _threshold(value: Any) -> str:
    if isinstance(value, list):
        return "–".join(_number(v) for v in value)
    return _number(value)


# --- list filters --------------------------------------------------------------------------------


class RegionFilter(ChoiceFilter):
    title = "region"
    parameter_name = "region"
    options = {
        region: (label, lambda qs, region=region: qs.filter(selectors.region_filter([region])))
        for region, label in Region.choices
    }


def _consent_expiring(queryset: QuerySet) -> QuerySet:
    soon = timezone.localdate() + timedelta(days=30)
    return queryset.filter(consent_valid=True, consent_until__lte=soon)


class GateFilter(ChoiceFilter):
    title = "quality gate"
    parameter_name = "gate"
    options = {
        "passed": (
            "All photos pass",
            lambda qs: qs.filter(
                reference_count__gt=0, failing_references=0, checking_references=0
            ),
        ),
        "failing": ("A photo fails", lambda qs: qs.filter(failing_references__gt=0)),
        "checking": ("A photo is being checked", lambda qs: qs.filter(checking_references__gt=0)),
        "none": ("No photo", lambda qs: qs.filter(reference_count=0)),
    }


class ConsentFilter(ChoiceFilter):
    title = "consent"
    parameter_name = "consent"
    options = {
        "valid": ("Valid", lambda qs: qs.filter(consent_valid=True)),
        "expiring": ("Expires within 30 days", _consent_expiring),
        "invalid": ("Missing, expired or revoked", lambda qs: qs.filter(consent_valid=False)),
    }


class DuplicateFilter(ChoiceFilter):
    title = "possible duplicate"
    parameter_name = "duplicate"
    options = {
        "yes": ("Flagged", lambda qs: qs.filter(duplicate_face_id__isnull=False)),
        "no": ("Not flagged", lambda qs: qs.filter(duplicate_face_id__isnull=True)),
    }


# --- inlines -------------------------------------------------------------------------------------


class ReferenceFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        for form in self.deleted_forms:
            if form.instance.pk:
                problem = selectors.reference_delete_problem(reference=form.instance)
                if problem:
                    raise ValidationError(problem)


class ReferenceColumns:
    """The reference photo columns the face page inline and the reference list share."""

    #: side of the photo thumbnail column, in CSS pixels
    photo_px = THUMB_PX

    @admin.display(description="photo")
    def photo(self, ref: FaceReference):
        return _thumb(ref, alt=f"Reference {ref.pk}", size=self.photo_px)

    @admin.display(description="possible duplicate of")
    def duplicate(self, ref: FaceReference):
        if not ref.duplicate_of_id:
            return "—"
        link = _face_link(ref.duplicate_of_id, str(ref.duplicate_of))
        return format_html("⚠ {} (distance {})", link, f"{ref.duplicate_distance:.2f}")


class FaceReferenceInline(ReferenceColumns, admin.TabularInline):
    model = FaceReference
    fk_name = "face"
    formset = ReferenceFormSet
    extra = 0
    fields = readonly_fields = ("photo", "is_primary", "gate_result", "pose", "duplicate")
    verbose_name = "reference photo"
    show_change_link = True
    photo_px = 96

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # photos come in through the face form's upload field (and the gate)

    @admin.display(description="quality gate")
    def gate_result(self, ref: FaceReference):
        if ref.gate_pending:
            return "⏳ Checking… (reload the page for the result)"
        if ref.gate_passed:
            return "✓ passed"
        items = format_html_join("", "<li>{}</li>", ((m,) for m in ref.failure_messages))
        return format_html("<strong>✗ failed</strong><ul>{}</ul>", items)

    @admin.display(description="yaw / pitch")
    def pose(self, ref: FaceReference):
        if ref.yaw is None:
            return "—"
        return f"{ref.yaw:+.0f}° / {ref.pitch:+.0f}°"


class ConsentColumns:
    """The consent columns the face page inline and the consent list share."""

    #: what a consent grants, for how long, and the signed document behind it
    terms_fields = ("document", "licence_terms", "valid_from", "expires_on", "uses", "state")

    @admin.display(description="allowed uses")
    def uses(self, consent: Consent):
        return ", ".join(use.replace("_", " ") for use in consent.allowed_uses) or "—"

    @admin.display(description="state")
    def state(self, consent: Consent):
        return _consent_state(consent)


class ConsentInline(ConsentColumns, ReadOnlyTabularInline):
    """Recorded consents: evidence, so read-only (end one with the Consents list's revoke)."""

    model = Consent
    fields = ConsentColumns.terms_fields
    verbose_name = "consent / licence"
    verbose_name_plural = "consents / licences"
    show_change_link = True


class NewConsentInline(admin.StackedInline):
    model = Consent
    form = NewConsentForm
    extra = 0
    can_delete = False
    verbose_name = "new consent / licence"
    verbose_name_plural = "add a consent / licence"

    def get_queryset(self, request):
        return super().get_queryset(request).none()

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_add_permission(request, obj)


class FaceEventInline(ReadOnlyTabularInline):
    model = FaceEvent
    fields = ("created_at", "from_status", "to_status", "actor", "note")
    verbose_name = "status change"

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _consent_state(consent: Consent) -> str:
    today = timezone.localdate()
    if consent.revoked_at:
        return f"revoked {consent.revoked_at:%Y-%m-%d}: {consent.revoked_reason}"
    if consent.valid_from > today:
        return f"starts {consent.valid_from}"
    if consent.expires_on and consent.expires_on < today:
        return f"expired {consent.expires_on}"
    if not consent.allows_catalog_images:
        return "valid, but not for catalog images"
    return "valid"


# --- work done after the admin's transaction -----------------------------------------------------


@dataclass
class _Pending:
    """Uploads the face form received; processed once the face row is committed."""

    face: Face | None = None
    photos: list = field(default_factory=list)
    consents: list[dict] = field(default_factory=list)


# --- actions that need a reason ------------------------------------------------------------------

#: an admin action given the reason the curator typed
ReasonedAction = Callable[[Any, HttpRequest, QuerySet, str], None]


def _asks_reason(*, title: str, intro: str) -> Callable[[ReasonedAction], Callable[..., Any]]:
    """Make an admin action ask for a reason first (it is recorded on every event it writes).

    The first call, from the change list, shows ``action_reason.html``: the selected objects, a
    reason field and ``title`` on the button; that page posts the action again with ``apply``,
    and once the reason is valid the action runs with it.
    """

    def decorate(run: ReasonedAction) -> Callable[..., Any]:
        @functools.wraps(run)
        def action(model_admin: Any, request: HttpRequest, queryset: QuerySet) -> Any:
            form = ReasonForm(request.POST if "apply" in request.POST else None)
            if form.is_valid():
                run(model_admin, request, queryset, form.cleaned_data["reason"])
                return None
            context = {
                **model_admin.admin_site.each_context(request),
                "title": title,
                "intro": intro,
                "objects": list(queryset),
                "form": form,
                "action": run.__name__,
                "opts": model_admin.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "facelibrary/admin/action_reason.html", context)

        return action

    return decorate


# --- face ----------------------------------------------------------------------------------------


@admin.register(Face)
class FaceAdmin(admin.ModelAdmin):
    form = FaceAdminForm
    list_display = (
        "thumbnail",
        "code",
        "status",
        "attributes",
        "skin",
        "gate",
        "consent",
        "duplicate",
        "usage",
        "approval_rate",
    )
    list_display_links = ("thumbnail", "code")
    list_filter = (
        "status",
        "source",
        "gender_presentation",
        "age_band",
        "skin_tone",
        RegionFilter,
        "expression",
        "hair",
        "hair_color",
        GateFilter,
        ConsentFilter,
        DuplicateFilter,
    )
    search_fields = ("code", "notes")
    list_per_page = 50
    actions = ["activate_faces", "retire_faces"]
    readonly_fields = (
        "status",
        "status_changed_at",
        "retired_reason",
        "activation_check",
        "statistics",
        "created_by",
        "created_at",
    )
    fieldsets = (
        (None, {"fields": ("code", "source", "status", "activation_check", "new_references")}),
        (
            "Attributes",
            {
                "fields": (
                    ("gender_presentation", "age_band"),
                    "skin_tone",
                    "region_tags",
                    ("expression", "hair", "hair_color"),
                    "notes",
                )
            },
        ),
        (
            "History and use",
            {
                "fields": (
                    "statistics",
                    "status_changed_at",
                    "retired_reason",
                    "created_by",
                    "created_at",
                )
            },
        ),
    )
    inlines = [FaceReferenceInline, ConsentInline, NewConsentInline, FaceEventInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Face]:
        failing = (
            FaceReference.objects.filter(gate_passed=False)
            .exclude(gate_status=FaceReference.GateStatus.PENDING)
            .only("id", "face_id", "gate_checks")
        )
        faces = with_face_usage(selectors.with_curator_columns(super().get_queryset(request)))
        return faces.prefetch_related(
            Prefetch("references", queryset=failing, to_attr="failing_refs")
        )

    # --- columns ---

    @admin.display(description="photo")
    def thumbnail(self, face: Face):
        return _thumb(face.primary_reference, alt=f"Face {face.code}")

    @admin.display(description="skin", ordering="skin_tone")
    def skin(self, face: Face):
        if face.skin_tone is None:
            return "—"
        return format_html(
            '<span style="display:inline-block;width:1em;height:1em;border:1px solid #888;'
            'background:{};vertical-align:middle" aria-hidden="true"></span>&nbsp;Monk&nbsp;{}',
            MONK_SCALE[face.skin_tone],
            face.skin_tone,
        )

    @admin.display(description="attributes")
    def attributes(self, face: Face):
        parts = [
            face.get_gender_presentation_display(),
            face.get_age_band_display(),
            ", ".join(face.region),
            face.get_expression_display(),
            " ".join(p for p in (face.get_hair_display(), face.get_hair_color_display()) if p),
            "AI generated" if face.source == Source.AI_GENERATED else "",
        ]
        return " · ".join(str(p) for p in parts if p) or "—"

    @admin.display(description="quality gate")
    def gate(self, face: Face):
        if not face.reference_count:
            return "no photo"
        if face.checking_references and not face.failing_references:
            return f"⏳ checking {face.checking_references} of {face.reference_count} photo(s)"
        if not face.failing_references:
            return f"✓ {face.reference_count} photo(s) pass"
        first = face.failing_refs[0].failure_messages if face.failing_refs else []
        return format_html(
            '<span title="{}">✗ {} of {} fail: {}</span>',
            " ".join(first),
            face.failing_references,
            face.reference_count,
            Truncator(first[0]).chars(40) if first else "",
        )

    @admin.display(description="consent", ordering="consent_until")
    def consent(self, face: Face):
        if not face.consent_valid:
            return "✗ none valid"
        return f"✓ until {face.consent_until}" if face.consent_until else "✓ no expiry"

    @admin.display(description="duplicate of")
    def duplicate(self, face: Face):
        if not face.duplicate_face_id:
            return "—"
        return format_html("⚠ {}", _face_link(face.duplicate_face_id, face.duplicate_face_code))

    @admin.display(description="usage", ordering="usage_count")
    def usage(self, face: Face):
        return face.usage_count

    @admin.display(description="approved")
    def approval_rate(self, face: Face):
        decided = face.images_approved + face.images_rejected
        if not decided:
            return "—"
        return f"{face.images_approved / decided:.0%} ({face.images_approved}/{decided})"

    # --- detail fields ---

    @admin.display(description="can it be activated?")
    def activation_check(self, face: Face):
        if face.pk is None:
            return "Save the face with a reference photo and a consent first."
        if face.status == Face.Status.ACTIVE:
            return "Active: offered to sellers."
        problems = selectors.face_activation_problems(face=face)
        if not problems:
            return "✓ Ready: use the “Activate” action in the face list."
        items = format_html_join("", "<li>{}</li>", ((p,) for p in problems))
        return format_html("<strong>Not yet:</strong><ul>{}</ul>", items)

    @admin.display(description="usage and approval")
    def statistics(self, face: Face):
        if face.pk is None:
            return "—"
        stats = face_stats(face_ids=[face.pk]).get(face.pk)
        if stats is None:
            return "Not used in any generation yet."
        rate = f"{stats.approval_rate:.0%}" if stats.approval_rate is not None else "—"
        return (
            f"{stats.usage} generation run(s), {stats.images} image(s); "
            f"{stats.approved} approved, {stats.rejected} rejected (approval rate {rate})."
        )

    # --- saving: attributes in the transaction, uploads after it ---

    def save_model(self, request, obj: Face, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        pending = self._pending(request)
        pending.face = obj
        pending.photos.extend(form.cleaned_data.get("new_references") or [])

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is FaceReference:
            formset.save(commit=False)
            for reference in formset.deleted_objects:
                services.reference_delete(reference=reference, actor=request.user)
            return
        if issubclass(formset.form, NewConsentForm):
            formset.save(commit=False)  # unsaved: recorded by consent_add after the commit
            for consent_form in formset.forms:
                if consent_form.has_changed() and consent_form.cleaned_data:
                    self._pending(request).consents.append(dict(consent_form.cleaned_data))
            return
        super().save_formset(request, form, formset, change)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        request._facelibrary_pending = _Pending()
        # super() runs its POST handling in transaction.atomic; once it returns, the face row
        # is committed and the file writes can run without holding it open (the gate itself
        # runs in the analysis worker).
        response = super().changeform_view(request, object_id, form_url, extra_context)
        pending: _Pending = request._facelibrary_pending
        if pending.face is not None:
            self._record_consents(request, pending)
            self._add_photos(request, pending)
        return response

    @staticmethod
    def _pending(request) -> _Pending:
        if not hasattr(request, "_facelibrary_pending"):
            request._facelibrary_pending = _Pending()
        return request._facelibrary_pending

    def _record_consents(self, request, pending: _Pending) -> None:
        for data in pending.consents:
            uses = [
                name
                for name in ("catalog_images", "catalog_video", "advertising", "social_media")
                if data.get(f"allows_{name}")
            ]
            try:
                services.consent_add(
                    face=pending.face,
                    licence_terms=data["licence_terms"],
                    valid_from=data.get("valid_from"),
                    expires_on=data.get("expires_on"),
                    uses=uses,
                    document=data.get("document") or None,
                    actor=request.user,
                )
            except ValidationError as exc:
                messages.error(request, f"The consent was not recorded: {'; '.join(exc.messages)}")
            else:
                messages.success(request, "Consent recorded.")

    def _add_photos(self, request, pending: _Pending) -> None:
        for upload in pending.photos:
            name = safe_display_name(getattr(upload, "name", ""))
            try:
                ref = services.reference_upload(
                    face=pending.face, upload=upload, actor=request.user
                )
            except services.InvalidReference as exc:
                messages.error(request, f"{name}: not added. {exc}")
                continue
            ref.refresh_from_db()  # checked already where the queue runs jobs at once
            if ref.gate_pending:
                messages.info(
                    request,
                    f"{name}: added; the quality gate is checking it (reload the page for the "
                    "result).",
                )
            elif ref.gate_passed:
                messages.success(request, f"{name}: passed the quality gate.")
            else:
                reasons = " ".join(ref.failure_messages)
                messages.error(request, f"{name}: failed the quality gate. {reasons}")
            if ref.duplicate_of_id:
                messages.warning(
                    request,
                    format_html(
                        "{}: this person looks like {} already in the library (distance {}).",
                        name,
                        _face_link(ref.duplicate_of_id, str(ref.duplicate_of)),
                        f"{ref.duplicate_distance:.2f}",
                    ),
                )

    # --- bulk actions ---

    @admin.action(description="Activate selected faces", permissions=["change"])
    def activate_faces(self, request, queryset) -> None:
        self._each_face(
            request,
            queryset,
            "activated",
            lambda face: services.face_activate(face=face, actor=request.user),
        )

    @admin.action(description="Retire selected faces…", permissions=["change"])
    @_asks_reason(
        title="Retire faces",
        intro="Retired faces leave the seller gallery at once. Past shoots keep them.",
    )
    def retire_faces(self, request, queryset, reason: str) -> None:
        self._each_face(
            request,
            queryset,
            "retired",
            lambda face: services.face_retire(face=face, actor=request.user, reason=reason),
        )

    def _each_face(self, request, queryset, verb: str, change: Callable[[Face], object]) -> None:
        """Apply ``change`` to every selected face in code order, then report what was done and
        every refusal with its reasons (one refused face does not stop the others)."""
        done, refused = [], []
        for face in queryset.order_by("code"):
            try:
                change(face)
            except services.FaceActionRefused as exc:
                refused.append((face, exc.reasons))
            else:
                done.append(face.code)
        if done:
            messages.success(request, f"{len(done)} face(s) {verb}: {', '.join(done)}.")
        for face, reasons in refused:
            # plain text: admin styles every <li> inside its message list as a message of its own
            messages.error(request, f"Face {face.code} was not {verb}: {' · '.join(reasons)}")


# --- references ----------------------------------------------------------------------------------


@admin.register(FaceReference)
class FaceReferenceAdmin(ReferenceColumns, admin.ModelAdmin):
    """Read-only view of every reference with its full gate report; pick the primary one here."""

    list_display = (
        "photo",
        "face",
        "is_primary",
        "gate_status",
        "gate_passed",
        "failures",
        "duplicate",
    )
    list_filter = (
        "gate_status",
        "gate_passed",
        "is_primary",
        ("duplicate_of", admin.EmptyFieldListFilter),
    )
    search_fields = ("face__code",)
    list_select_related = ("face", "duplicate_of")
    actions = ["make_primary"]
    fields = readonly_fields = (
        "face",
        "large_photo",
        "is_primary",
        "gate_status",
        "gate_passed",
        "checks",
        "face_box",
        "yaw",
        "pitch",
        "embedding_models",
        "duplicate",
        "source_sha256",
        "created_by",
        "created_at",
    )

    def has_add_permission(self, request) -> bool:
        return False  # through the face form, so every photo passes the gate first

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # through the face form's inline, which checks the face stays usable

    @admin.display(description="photo")
    def large_photo(self, ref: FaceReference):
        return _thumb(ref, alt=f"Reference {ref.pk}", size=256)

    @admin.display(description="why it failed")
    def failures(self, ref: FaceReference):
        return " ".join(ref.failure_messages) or "—"

    @admin.display(description="checks")
    def checks(self, ref: FaceReference):
        return _checks_table(ref.gate_checks)

    @admin.display(description="embeddings")
    def embedding_models(self, ref: FaceReference):
        models = []
        if ref.embedding:
            models.append(f"dlib {len(ref.embedding)}-d")
        if ref.embedding_512:
            models.append(f"insightface {len(ref.embedding_512)}-d")
        return ", ".join(models) or "none (no single face found)"

    @admin.action(description="Make the selected photo its face's primary", permissions=["change"])
    def make_primary(self, request, queryset) -> None:
        if queryset.count() != 1:
            messages.error(request, "Select exactly one photo.")
            return
        try:
            ref = services.reference_make_primary(reference=queryset.get(), actor=request.user)
        except services.FaceActionRefused as exc:
            messages.error(request, " ".join(exc.reasons))
        else:
            messages.success(request, f"Photo {ref.pk} is now the primary photo of {ref.face}.")


# --- consents ------------------------------------------------------------------------------------


class ConsentStateFilter(ChoiceFilter):
    title = "state"
    parameter_name = "state"
    options = {
        "valid": ("Valid", lambda qs: qs.valid_on(timezone.localdate())),
        "expired": (
            "Expired",
            lambda qs: qs.filter(expires_on__lt=timezone.localdate(), revoked_at__isnull=True),
        ),
        "revoked": ("Revoked", lambda qs: qs.filter(revoked_at__isnull=False)),
    }


@admin.register(Consent)
class ConsentAdmin(ConsentColumns, admin.ModelAdmin):
    """Consents are added on the face page and never edited; they can be revoked here."""

    list_display = ("face", "valid_from", "expires_on", "uses", "state", "document")
    list_filter = (ConsentStateFilter, "expires_on", "allows_advertising", "allows_social_media")
    search_fields = ("face__code", "licence_terms")
    list_select_related = ("face",)
    date_hierarchy = "expires_on"
    actions = ["revoke"]
    fields = readonly_fields = ("face", *ConsentColumns.terms_fields, "created_by", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke selected consents…", permissions=["change"])
    @_asks_reason(
        title="Revoke consents",
        intro="An active face left without a valid consent is retired at once.",
    )
    def revoke(self, request, queryset, reason: str) -> None:
        for consent in queryset.select_related("face"):
            try:
                services.consent_revoke(consent=consent, actor=request.user, reason=reason)
            except services.FaceActionRefused as exc:
                messages.error(request, " ".join(exc.reasons))
            else:
                messages.success(request, f"Consent {consent.pk} of {consent.face} revoked.")
