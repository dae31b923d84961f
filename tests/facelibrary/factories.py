"""Factories for face library rows (references are made without running the gate: service
tests that are not about the gate should not pay for model inference)."""

from __future__ import annotations

import io
from datetime import timedelta

import factory
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from facelibrary.models import Consent, Face, FaceReference
from tests.factories import FaceFactory


def png_file(color=(180, 150, 130), size=(64, 64), name="ref.png") -> ContentFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name=name)


PASSING_CHECKS = [
    {"name": "face_count", "value": 1.0, "threshold": 1.0, "passed": True, "message": "1 face."},
    {"name": "sharpness", "value": 12.0, "threshold": 4.0, "passed": True, "message": "Sharp."},
]
FAILING_CHECKS = [
    {"name": "face_count", "value": 1.0, "threshold": 1.0, "passed": True, "message": "1 face."},
    {
        "name": "sharpness",
        "value": 1.0,
        "threshold": 4.0,
        "passed": False,
        "message": "Face is blurred (sharpness 1.0, at least 4.0 needed).",
    },
]


class DraftFaceFactory(FaceFactory):
    """A draft face with attributes and no consent (tests add what they need)."""

    status = Face.Status.DRAFT
    gender_presentation = "feminine"
    age_band = "25-34"
    skin_tone = 5
    region_tags = factory.LazyFunction(lambda: ["europe"])
    expression = "neutral"
    hair = "long"
    hair_color = "brown"

    @factory.post_generation
    def consent(self, create, extracted, **kwargs):
        """No consent, whatever the status (FaceFactory gives active faces one)."""


class FaceReferenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FaceReference

    face = factory.SubFactory(DraftFaceFactory)
    image = factory.LazyFunction(lambda: png_file(size=(256, 256)))
    thumbnail = factory.LazyFunction(lambda: png_file(name="thumb.png"))
    width = 256
    height = 256
    source_sha256 = factory.Sequence(lambda n: f"{n:064x}")
    is_primary = True
    gate_passed = True
    gate_checks = factory.LazyFunction(lambda: list(PASSING_CHECKS))
    embedding = factory.LazyFunction(lambda: [0.0] * 128)

    class Params:
        failing = factory.Trait(
            gate_passed=False,
            is_primary=False,
            gate_checks=factory.LazyFunction(lambda: list(FAILING_CHECKS)),
        )


class ConsentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consent

    face = factory.SubFactory(DraftFaceFactory)
    licence_terms = "Model release: catalog images and video, worldwide."
    valid_from = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=30))
    expires_on = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=365))

    class Params:
        expired = factory.Trait(
            valid_from=factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=400)),
            expires_on=factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=1)),
        )


def look(
    gender_presentation: str,
    age_band: str,
    skin_tone: int,
    region_tags: list[str],
    expression: str,
    hair: str,
    hair_color: str,
) -> dict[str, object]:
    """A face's descriptive attributes (what sellers filter on and the prompt describes), as
    keyword arguments for the face factories."""
    return {
        "gender_presentation": gender_presentation,
        "age_band": age_band,
        "skin_tone": skin_tone,
        "region_tags": region_tags,
        "expression": expression,
        "hair": hair,
        "hair_color": hair_color,
    }


def ready_face(**kwargs) -> Face:
    """A draft face that can be activated: a passing primary reference and a valid consent."""
    face = DraftFaceFactory(**kwargs)
    FaceReferenceFactory(face=face)
    ConsentFactory(face=face)
    return face


def active_face(**kwargs) -> Face:
    """An active, consented face placed directly (test set-up only; code uses services)."""
    face = ready_face(**kwargs)
    Face.objects.filter(pk=face.pk).update(status=Face.Status.ACTIVE)
    face.refresh_from_db()
    return face
