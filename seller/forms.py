"""Seller forms. They check input shape only; services decide what is allowed."""

from __future__ import annotations

import json
import math
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.core.files.uploadedfile import UploadedFile

from generation.inference.errors import InvalidImageError
from generation.inference.intake import sniff_format
from generation.services import MAX_FACES_PER_RUN, MAX_VARIANTS_PER_FACE

from .models import Category, ScenePreset, Seller, ShootStatus

MAX_PHOTOS_PER_SHOOT = 8
ACCEPT = "image/jpeg,image/png,image/webp,.jpg,.jpeg,.png,.webp"
#: bytes read from each upload to sniff its real type before the full check in the service
_SNIFF_BYTES = 4096


# --- dashboard -----------------------------------------------------------------------------------


class ShootFilterForm(forms.Form):
    q = forms.CharField(label="Search SKU or title", required=False, max_length=100)
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "All statuses"), *ShootStatus.choices]
    )
    category = forms.ChoiceField(
        label="Category", required=False, choices=[("", "All categories"), *Category.choices]
    )

    def filters(self) -> dict[str, str]:
        if not self.is_valid():
            return {"query": "", "status": "", "category": ""}
        data = self.cleaned_data
        return {
            "query": data["q"].strip(),
            "status": data["status"],
            "category": data["category"],
        }


# --- new shoot -----------------------------------------------------------------------------------


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """One or more uploaded photos. Cheap checks here; the service decodes each one fully."""

    widget = MultipleFileInput

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ACCEPT, "multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        files = [f for f in (data if isinstance(data, list | tuple) else [data]) if f]
        if not files:
            raise forms.ValidationError("Add at least one photo of the garment.", code="required")
        if len(files) > MAX_PHOTOS_PER_SHOOT:
            raise forms.ValidationError(
                f"Up to {MAX_PHOTOS_PER_SHOOT} photos per shoot; you added {len(files)}.",
                code="too_many",
            )
        errors = [error for f in files if (error := file_error(f))]
        if errors:
            raise forms.ValidationError(errors)
        return files


def file_error(upload: UploadedFile) -> str:
    """A human message when the upload is obviously unusable (size, type), else ''."""
    name = upload.name or "file"
    limit = settings.UPLOAD_MAX_BYTES
    if upload.size == 0:
        return f"{name}: the file is empty."
    if upload.size > limit:
        # rounded up: a file just over the limit must not read as "25.0 MB; the limit is 25 MB"
        size_mb = math.ceil(upload.size * 10 / 2**20) / 10
        return (
            f"{name}: the file is {size_mb:.1f} MB; the limit is "
            f"{limit / 2**20:.0f} MB. Please upload a smaller photo."
        )
    upload.seek(0)
    head = upload.read(_SNIFF_BYTES)
    upload.seek(0)
    try:
        sniff_format(head)
    except InvalidImageError as exc:
        return f"{name}: {exc}"
    return ""


class NewShootForm(forms.Form):
    sku = forms.CharField(label="SKU", max_length=64, help_text="Your stock-keeping unit code.")
    title = forms.CharField(label="Title", max_length=200)
    category = forms.ChoiceField(label="Category", choices=Category.choices)
    scene = forms.ChoiceField(
        label="Scene preset", choices=ScenePreset.choices, initial=ScenePreset.STUDIO_WHITE
    )
    photos = MultipleImageField(
        label="Photos of the garment",
        help_text=(
            f"JPEG, PNG or WebP, up to {settings.UPLOAD_MAX_BYTES // 2**20} MB each, "
            f"{MAX_PHOTOS_PER_SHOOT} photos at most. Front view first."
        ),
    )

    max_photos = MAX_PHOTOS_PER_SHOOT

    @property
    def max_bytes(self) -> int:
        return settings.UPLOAD_MAX_BYTES

    def clean_sku(self) -> str:
        return self.cleaned_data["sku"].strip()

    def clean_title(self) -> str:
        return self.cleaned_data["title"].strip()


# --- mask review ---------------------------------------------------------------------------------


def _decode_strokes(raw: str) -> list:
    """The JSON list of polylines sent by the page; the service checks each point."""
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError("The brush strokes could not be read.") from exc
    if not isinstance(data, list):
        raise forms.ValidationError("The brush strokes could not be read.")
    return data


class MaskCorrectionForm(forms.Form):
    include_strokes = forms.CharField(required=False, widget=forms.HiddenInput)
    exclude_strokes = forms.CharField(required=False, widget=forms.HiddenInput)
    brush_radius = forms.IntegerField(label="Brush size", min_value=1, max_value=200, initial=12)

    def clean_include_strokes(self) -> list:
        return _decode_strokes(self.cleaned_data["include_strokes"])

    def clean_exclude_strokes(self) -> list:
        return _decode_strokes(self.cleaned_data["exclude_strokes"])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.errors and not data["include_strokes"] and not data["exclude_strokes"]:
            raise forms.ValidationError(
                "Paint at least one stroke: Keep (green) or Remove (red).", code="no_strokes"
            )
        return data


class MaskChoiceForm(forms.Form):
    mask = forms.IntegerField(widget=forms.HiddenInput)


# --- face selection ------------------------------------------------------------------------------

#: Face attributes the gallery can filter on, with their labels (skipped while Face lacks them)
FACE_FILTERS: dict[str, str] = {
    "gender_presentation": "Gender presentation",
    "age_band": "Age",
    "skin_tone": "Skin tone (Monk scale)",
    "region": "Region",
    "expression": "Expression",
    "hair": "Hair",
    "hair_color": "Hair colour",
}


def _face_field_choices(name: str) -> list[tuple[str, str]] | None:
    from facelibrary.models import Face

    if name == "region":
        choices = getattr(Face, "REGION_CHOICES", None) or _model_choices(Face, "region_tags")
    else:
        choices = _model_choices(Face, name)
    return [(str(value), str(label)) for value, label in choices] if choices is not None else None


def _model_choices(model, name: str) -> list[tuple[Any, str]] | None:
    try:
        field = model._meta.get_field(name)
    except Exception:
        return None
    if field.choices:
        return list(field.flatchoices)
    if name == "skin_tone":
        return [(n, f"Monk {n}") for n in range(1, 11)]
    base = getattr(field, "base_field", None)  # ArrayField of choices (region tags)
    if base is not None and base.choices:
        return list(base.flatchoices)
    return None


class FaceFilterForm(forms.Form):
    """Gallery filters built from the Face attributes that exist."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, label in FACE_FILTERS.items():
            choices = _face_field_choices(name)
            if choices:
                self.fields[name] = forms.ChoiceField(
                    label=label, required=False, choices=[("", "Any"), *choices]
                )

    def filters(self) -> dict[str, str]:
        # A hand-edited URL with an unknown value still filters by the fields that are valid.
        self.is_valid()
        return {key: value for key, value in self.cleaned_data.items() if value}


class StartGenerationForm(forms.Form):
    faces = forms.TypedMultipleChoiceField(
        label="Faces", coerce=int, error_messages={"required": "Pick at least one face."}
    )
    variants = forms.TypedChoiceField(
        label="Variants per face",
        coerce=int,
        choices=[(n, str(n)) for n in range(1, MAX_VARIANTS_PER_FACE + 1)],
        initial=2,
    )
    scene = forms.ChoiceField(label="Scene preset", choices=ScenePreset.choices)

    def __init__(self, *args: Any, face_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["faces"].choices = [(pk, str(pk)) for pk in face_ids]

    def clean_faces(self) -> list[int]:
        faces = self.cleaned_data["faces"]
        if len(faces) > MAX_FACES_PER_RUN:
            raise forms.ValidationError(f"Pick at most {MAX_FACES_PER_RUN} faces at a time.")
        return faces


# --- results -------------------------------------------------------------------------------------


class RejectAssetForm(forms.Form):
    reason = forms.CharField(
        label="Why is it rejected?",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say what is wrong, so the next try can do better."},
    )


#: the star choices of the rating form (value, accessible label)
STAR_CHOICES = [(n, f"{n} star{'s' if n > 1 else ''}") for n in range(1, 6)]


class RateAssetForm(forms.Form):
    stars = forms.TypedChoiceField(
        label="Stars",
        coerce=int,
        choices=STAR_CHOICES,
        error_messages={
            "required": "Rate from 1 to 5 stars.",
            "invalid_choice": "Rate from 1 to 5 stars.",
        },
    )
    comment = forms.CharField(
        label="What could be better? (optional)",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


# --- sign-up -------------------------------------------------------------------------------------


class SignupForm(UserCreationForm):
    email = forms.EmailField(label="Email")
    store_name = forms.CharField(label="Store name", max_length=200)
    catalog_seller_id = forms.CharField(
        label="Marketplace seller ID",
        max_length=64,
        help_text="Your seller id in the marketplace catalog.",
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_catalog_seller_id(self) -> str:
        value = self.cleaned_data["catalog_seller_id"].strip()
        if Seller.objects.filter(catalog_seller_id=value).exists():
            raise forms.ValidationError("A store with this marketplace seller ID already exists.")
        return value
