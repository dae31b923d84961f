"""Forms: the curator's face form (admin) and the seller gallery's filters."""

from __future__ import annotations

from typing import Any

from django import forms

from .models import (
    SKIN_TONE_CHOICES,
    AgeBand,
    Consent,
    Expression,
    Face,
    GenderPresentation,
    Hair,
    HairColor,
    Region,
)

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
            "goes through the quality gate when you save; the result is shown below."
        ),
    )

    class Meta:
        model = Face
        fields = [
            "code",
            "source",
            "gender_presentation",
            "age_band",
            "skin_tone",
            "region_tags",
            "expression",
            "hair",
            "hair_color",
            "notes",
        ]


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


def _any(choices) -> list[tuple[Any, str]]:
    return [("", "Any"), *[(str(value), str(label)) for value, label in choices]]


class GalleryFilterForm(forms.Form):
    """The seller gallery's filters (GET). Every field is optional; ``filters()`` feeds
    ``selectors.gallery_faces``."""

    gender_presentation = forms.ChoiceField(
        label="Gender presentation", required=False, choices=_any(GenderPresentation.choices)
    )
    age_band = forms.ChoiceField(label="Age", required=False, choices=_any(AgeBand.choices))
    skin_tone = forms.TypedChoiceField(
        label="Skin tone (Monk scale)",
        required=False,
        coerce=int,
        empty_value=None,
        choices=_any(SKIN_TONE_CHOICES),
    )
    region = forms.ChoiceField(label="Region", required=False, choices=_any(Region.choices))
    expression = forms.ChoiceField(
        label="Expression", required=False, choices=_any(Expression.choices)
    )
    hair = forms.ChoiceField(label="Hair", required=False, choices=_any(Hair.choices))
    hair_color = forms.ChoiceField(
        label="Hair colour", required=False, choices=_any(HairColor.choices)
    )

    def filters(self) -> dict[str, Any]:
        if not self.is_valid():
            # A hand-edited URL with an unknown value filters by the fields that are valid.
            return {
                key: value
                for key, value in self.cleaned_data.items()
                if key not in self.errors and value not in (None, "")
            }
        return {key: value for key, value in self.cleaned_data.items() if value not in (None, "")}
