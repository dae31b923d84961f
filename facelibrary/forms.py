"""Forms of the curator's face admin (faces, consents, reasons)."""

from __future__ import annotations

from typing import Any

from django import forms

from .models import Consent, Face, Region
from .services import ATTRIBUTE_FIELDS

REFERENCE_ACCEPT = "image/jpeg,image/png,image/webp"


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django's documented pattern); cleans to a list."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": REFERENCE_ACCEPT}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None) -> list:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class FaceAdminForm(forms.ModelForm):
    region_tags = forms.MultipleChoiceField(
        label="Region tags",
        choices=Region.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    new_references = MultipleFileField(
        label="Add reference photos",
        required=False,
        help_text=(
            "JPEG, PNG or WebP; one person, facing the camera, face at least 128 px. Each photo "
            "goes through the quality gate after you save; its result shows below once the "
            "check is done (reload the page)."
        ),
    )

    class Meta:
        model = Face
        fields = ["code", "source", *ATTRIBUTE_FIELDS]


class NewConsentForm(forms.ModelForm):
    class Meta:
        model = Consent
        fields = [
            "document",
            "licence_terms",
            "valid_from",
            "expires_on",
            "allows_catalog_images",
            "allows_catalog_video",
            "allows_advertising",
            "allows_social_media",
        ]
        widgets = {"licence_terms": forms.Textarea(attrs={"rows": 2, "cols": 40})}


class ReasonForm(forms.Form):
    """The reason asked for by the retire / revoke admin actions."""

    reason = forms.CharField(
        label="Reason", max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )
