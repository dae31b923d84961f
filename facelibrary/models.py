"""The curated face library.

A ``Face`` is one identity the generator reproduces. It has one or more ``FaceReference`` photos
(each run through the quality gate, with its checks and embeddings stored), a ``Consent`` /
licence record per agreement, and a status (draft -> active -> retired) that changes only through
``facelibrary.services``. Every status change writes a ``FaceEvent``.

Usage and approval rates are not stored here: they are counted from ``GenerationJob`` and
``Asset`` rows (``facelibrary.selectors.face_stats``), so they can never drift.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import PurePath

from django.conf import settings
from django.core.validators import FileExtensionValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import cached_property

# --- vocabularies --------------------------------------------------------------------------------


class Source(models.TextChoices):
    AI_GENERATED = "ai_generated", "AI generated"
    LICENSED_MODEL = "licensed_model", "Licensed model"


class GenderPresentation(models.TextChoices):
    FEMININE = "feminine", "Feminine"
    MASCULINE = "masculine", "Masculine"
    ANDROGYNOUS = "androgynous", "Androgynous"


class AgeBand(models.TextChoices):
    A18_24 = "18-24", "18–24"
    A25_34 = "25-34", "25–34"
    A35_44 = "35-44", "35–44"
    A45_54 = "45-54", "45–54"
    A55_64 = "55-64", "55–64"
    A65_PLUS = "65+", "65+"


#: The Monk Skin Tone scale (Google, Dr. Ellis Monk; CC-BY 4.0): value -> published swatch colour.
MONK_SCALE: dict[int, str] = {
    1: "#f6ede4",
    2: "#f3e7db",
    3: "#f7ead0",
    4: "#eadaba",
    5: "#d7bd96",
    6: "#a07e56",
    7: "#825c43",
    8: "#604134",
    9: "#3a312a",
    10: "#292420",
}
SKIN_TONE_CHOICES = [(n, f"Monk {n}") for n in MONK_SCALE]


class Region(models.TextChoices):
    """Broad regions of ancestry (a face may carry several tags)."""

    EAST_ASIA = "east_asia", "East Asia"
    SOUTHEAST_ASIA = "southeast_asia", "Southeast Asia"
    SOUTH_ASIA = "south_asia", "South Asia"
    CENTRAL_ASIA = "central_asia", "Central Asia"
    MENA = "mena", "Middle East & North Africa"
    SUB_SAHARAN_AFRICA = "sub_saharan_africa", "Sub-Saharan Africa"
    EUROPE = "europe", "Europe"
    LATIN_AMERICA = "latin_america", "Latin America & Caribbean"
    NORTH_AMERICA = "north_america", "North America"
    OCEANIA = "oceania", "Oceania & Pacific"


class Expression(models.TextChoices):
    NEUTRAL = "neutral", "Neutral"
    SMILING = "smiling", "Smiling"
    LAUGHING = "laughing", "Laughing"
    SERIOUS = "serious", "Serious"


class Hair(models.TextChoices):
    """Length / style."""

    BALD = "bald", "Bald / shaved"
    SHORT = "short", "Short"
    MEDIUM = "medium", "Medium"
    LONG = "long", "Long"
    BRAIDS = "braids", "Braids / locs"
    COVERED = "covered", "Covered (headscarf)"


class HairColor(models.TextChoices):
    BLACK = "black", "Black"
    BROWN = "brown", "Brown"
    BLONDE = "blonde", "Blonde"
    RED = "red", "Red"
    GREY = "grey", "Grey / white"
    DYED = "dyed", "Dyed"


class ConsentUse(models.TextChoices):
    """What a consent / licence allows; the gallery needs catalog images."""

    CATALOG_IMAGES = "catalog_images", "Catalog images"
    CATALOG_VIDEO = "catalog_video", "Catalog video"
    ADVERTISING = "advertising", "Advertising"
    SOCIAL_MEDIA = "social_media", "Social media"


#: the use a consent must allow for the face to be offered to sellers
REQUIRED_USE = ConsentUse.CATALOG_IMAGES


def _random_name(folder: str, extension: str) -> str:
    # Stored names never contain the uploader's file name (it can leak personal data and is
    # attacker-controlled); the extension is checked by the field's validator first.
    return f"facelibrary/{folder}/{uuid.uuid4().hex}.{extension.lower().lstrip('.')}"


def consent_document_path(instance: Consent, filename: str) -> str:
    return _random_name("consents", PurePath(filename).suffix or ".bin")


# --- face ----------------------------------------------------------------------------------------


class Face(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    #: region choices for filter forms (seller.forms reads this name)
    REGION_CHOICES = Region.choices

    code = models.CharField(max_length=32, unique=True, help_text="Display code shown to sellers.")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.DRAFT, editable=False
    )
    status_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    retired_reason = models.TextField(blank=True, editable=False)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.LICENSED_MODEL)
    gender_presentation = models.CharField(
        max_length=12, choices=GenderPresentation.choices, blank=True
    )
    age_band = models.CharField(max_length=5, choices=AgeBand.choices, blank=True)
    skin_tone = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        choices=SKIN_TONE_CHOICES,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="Monk Skin Tone scale, 1 (lightest) to 10 (darkest).",
    )
    region_tags = models.JSONField(
        default=list, blank=True, help_text="Regions of ancestry (values of Region)."
    )
    expression = models.CharField(max_length=10, choices=Expression.choices, blank=True)
    hair = models.CharField(max_length=10, choices=Hair.choices, blank=True)
    hair_color = models.CharField(max_length=10, choices=HairColor.choices, blank=True)
    notes = models.TextField(blank=True, help_text="Curator notes (not shown to sellers).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        indexes = [models.Index(fields=["status", "code"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(skin_tone__isnull=True) | Q(skin_tone__gte=1, skin_tone__lte=10),
                name="face_skin_tone_on_monk_scale",
            )
        ]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        tags = self.region_tags or []
        unknown = [t for t in tags if t not in Region.values]
        if not isinstance(tags, list) or unknown:
            raise ValidationError({"region_tags": f"Unknown region tag(s): {unknown}."})

    # Readers below use the primary reference that selectors prefetch into
    # ``primary_references`` (a list of 0 or 1); without the prefetch they run one query.

    @cached_property
    def primary_reference(self) -> FaceReference | None:
        prefetched = getattr(self, "primary_references", None)
        if prefetched is not None:
            return prefetched[0] if prefetched else None
        return self.references.filter(is_primary=True).first()

    @property
    def thumbnail_url(self) -> str:
        ref = self.primary_reference
        return ref.thumbnail.url if ref is not None and ref.thumbnail else ""

    @property
    def embedding(self) -> list[float] | None:
        """The primary reference's 128-d dlib embedding (what qa.checks compares with)."""
        ref = self.primary_reference
        return ref.embedding if ref is not None else None

    @property
    def region(self) -> list[str]:
        """Readable region tags (the seller gallery shows them as tags)."""
        labels = dict(Region.choices)
        return [str(labels.get(tag, tag)) for tag in self.region_tags or []]

    @property
    def skin_tone_hex(self) -> str:
        return MONK_SCALE.get(self.skin_tone or 0, "")


class FaceReference(models.Model):
    """One reference photo of a face, with the gate's verdict and the identity embeddings.

    A photo uploaded through the admin is stored at once as "gate pending" and the ``analysis``
    worker runs the gate (``facelibrary.jobs.check_reference``); until then it has not passed.
    """

    class GateStatus(models.TextChoices):
        PENDING = "pending", "Checking…"
        CHECKED = "checked", "Checked"
        ERROR = "error", "Could not be checked"

    face = models.ForeignKey(Face, on_delete=models.CASCADE, related_name="references")
    image = models.ImageField(max_length=200, editable=False)
    thumbnail = models.ImageField(max_length=200, editable=False)
    width = models.PositiveIntegerField(default=0, editable=False)
    height = models.PositiveIntegerField(default=0, editable=False)
    source_sha256 = models.CharField(
        max_length=64, db_index=True, editable=False, help_text="sha256 of the uploaded bytes"
    )
    is_primary = models.BooleanField(default=False, editable=False)
    #: has the gate judged the photo yet? (``gate_passed`` is its verdict once ``checked``)
    gate_status = models.CharField(
        max_length=10, choices=GateStatus.choices, default=GateStatus.CHECKED, editable=False
    )
    #: the gate job's attempt (the reconciler re-enqueues a lost one) and when it was enqueued
    gate_attempts = models.PositiveSmallIntegerField(default=1, editable=False)
    gate_queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    gate_passed = models.BooleanField(default=False, editable=False)
    #: [{name, value, threshold, passed, message}, ...] as the gate measured them
    gate_checks = models.JSONField(default=list, editable=False)
    face_box = models.JSONField(null=True, blank=True, editable=False)
    yaw = models.FloatField(null=True, blank=True, editable=False)
    pitch = models.FloatField(null=True, blank=True, editable=False)
    #: dlib ResNet, 128 floats (None when no single face was found)
    embedding = models.JSONField(null=True, blank=True, editable=False)
    #: insightface ArcFace, 512 floats, L2-normalised (only when its weights are installed)
    embedding_512 = models.JSONField(null=True, blank=True, editable=False)
    duplicate_of = models.ForeignKey(
        Face,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        help_text="Another library face this photo's person is within the identity threshold of.",
    )
    duplicate_distance = models.FloatField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_primary", "id"]
        indexes = [
            models.Index(
                fields=["gate_queued_at"],
                condition=Q(gate_status="pending"),
                name="reference_gate_pending",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["face"], condition=Q(is_primary=True), name="one_primary_reference_per_face"
            )
        ]

    def __str__(self) -> str:
        return f"reference {self.pk} of {self.face}"

    @property
    def gate_pending(self) -> bool:
        return self.gate_status == self.GateStatus.PENDING

    @property
    def gate_job_id(self) -> str:
        """The RQ job id of the gate's current attempt."""
        return f"face-reference-{self.pk}-gate-{self.gate_attempts}"

    @property
    def failed_checks(self) -> list[dict]:
        return [check for check in self.gate_checks if not check.get("passed")]

    @property
    def failure_messages(self) -> list[str]:
        return [check["message"] for check in self.failed_checks]


class ConsentQuerySet(models.QuerySet):
    def valid_on(self, day: date) -> ConsentQuerySet:
        """Consents that cover catalog images on ``day``: started, not expired, not revoked."""
        return self.filter(
            Q(expires_on__isnull=True) | Q(expires_on__gte=day),
            revoked_at__isnull=True,
            valid_from__lte=day,
            allows_catalog_images=True,
        )


class Consent(models.Model):
    """A signed model release or licence for a face (for AI-generated faces: the model licence).

    A record is evidence, so it is not edited after it was made: a new agreement is a new record,
    and an ended one is revoked (``services.consent_revoke``), which retires the face when no
    other valid consent is left.
    """

    face = models.ForeignKey(Face, on_delete=models.CASCADE, related_name="consents")
    document = models.FileField(
        upload_to=consent_document_path,
        max_length=200,
        blank=True,
        validators=[FileExtensionValidator(["pdf", "jpg", "jpeg", "png"])],
        help_text="Signed release or licence (PDF, JPEG or PNG).",
    )
    licence_terms = models.TextField(help_text="What was agreed, in words.")
    valid_from = models.DateField(default=timezone.localdate)
    expires_on = models.DateField(null=True, blank=True, help_text="Empty: does not expire.")
    allows_catalog_images = models.BooleanField("catalog images", default=True)
    allows_catalog_video = models.BooleanField("catalog video", default=True)
    allows_advertising = models.BooleanField("advertising", default=False)
    allows_social_media = models.BooleanField("social media", default=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_reason = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ConsentQuerySet.as_manager()

    class Meta:
        ordering = ["-valid_from", "-id"]
        indexes = [models.Index(fields=["face", "expires_on"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_on__isnull=True) | Q(expires_on__gte=models.F("valid_from")),
                name="consent_expires_after_start",
            )
        ]

    def __str__(self) -> str:
        until = f"until {self.expires_on}" if self.expires_on else "no expiry"
        return f"consent {self.pk} for {self.face} ({until})"

    @property
    def allowed_uses(self) -> list[str]:
        return [use.value for use in ConsentUse if getattr(self, f"allows_{use.value}")]

    def is_valid_on(self, day: date) -> bool:
        return (
            self.revoked_at is None
            and self.valid_from <= day
            and (self.expires_on is None or self.expires_on >= day)
            and self.allows_catalog_images
        )


class FaceEvent(models.Model):
    """One status change of a face: the audit trail curators see on the face page."""

    face = models.ForeignKey(Face, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=10, choices=Face.Status.choices)
    to_status = models.CharField(max_length=10, choices=Face.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.face}: {self.from_status} -> {self.to_status}"
