"""Sellers, shoots (one garment's virtual photoshoot) and the shoot's audit trail.

``Shoot.status`` is never assigned directly: services in ``seller/services.py`` change it with a
compare-and-swap UPDATE and write a ``ShootEvent`` for every change.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Seller(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="seller"
    )
    store_name = models.CharField(max_length=200)
    catalog_seller_id = models.CharField(
        max_length=64, unique=True, help_text="The seller's id in the marketplace catalog."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.store_name


class Category(models.TextChoices):
    DRESS = "dress", "Dress"
    TOP = "top", "Top"
    BOTTOM = "bottom", "Bottom"
    FULL_OUTFIT = "full_outfit", "Full outfit"
    SAREE = "saree", "Saree"
    KURTA = "kurta", "Kurta"


class ScenePreset(models.TextChoices):
    STUDIO_WHITE = "studio_white", "Studio, white backdrop"
    STUDIO_GREY = "studio_grey", "Studio, grey backdrop"
    STREET = "street", "City street"
    OUTDOOR = "outdoor", "Outdoors, daylight"
    RUNWAY = "runway", "Runway"


class ShootStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    ANALYZING = "analyzing", "Analyzing"
    ANALYSIS_FAILED = "analysis_failed", "Analysis failed"
    MASK_REVIEW = "mask_review", "Mask review"
    FACE_SELECTION = "face_selection", "Face selection"
    GENERATING = "generating", "Generating"
    GENERATION_FAILED = "generation_failed", "Generation failed"
    SELLER_REVIEW = "seller_review", "Seller review"
    QA_REVIEW = "qa_review", "QA review"
    APPROVED = "approved", "Approved"
    PUBLISHED = "published", "Published"


class Shoot(models.Model):
    seller = models.ForeignKey(Seller, on_delete=models.CASCADE, related_name="shoots")
    sku = models.CharField("SKU", max_length=64)
    title = models.CharField(max_length=200)
    category = models.CharField(max_length=20, choices=Category.choices)
    scene = models.CharField(
        max_length=20, choices=ScenePreset.choices, default=ScenePreset.STUDIO_WHITE
    )
    status = models.CharField(
        max_length=20, choices=ShootStatus.choices, default=ShootStatus.UPLOADED, editable=False
    )
    status_changed_at = models.DateTimeField(auto_now_add=True)
    # The RQ job that currently owns the shoot (analysis). Deterministic: shoot-<id>-analysis-<n>.
    analysis_job_id = models.CharField(max_length=100, blank=True, editable=False)
    analysis_attempts = models.PositiveIntegerField(default=0, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["seller", "-created_at"]),
            models.Index(fields=["status", "status_changed_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.sku} – {self.title}"


class ShootPhoto(models.Model):
    """A seller photo of the garment. The original bytes are kept; ``image`` is the working copy."""

    shoot = models.ForeignKey(Shoot, on_delete=models.CASCADE, related_name="photos")
    original = models.FileField(upload_to="originals/%Y/%m/")
    image = models.ImageField(upload_to="photos/%Y/%m/", width_field="width", height_field="height")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    original_name = models.CharField(max_length=255, blank=True)
    original_format = models.CharField(max_length=10, blank=True)
    sha256 = models.CharField(max_length=64)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.original_name or f"photo {self.pk}"


class ShootEvent(models.Model):
    """One status change of a shoot: the audit trail and the seller's timeline."""

    shoot = models.ForeignKey(Shoot, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, choices=ShootStatus.choices)
    to_status = models.CharField(max_length=20, choices=ShootStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["shoot", "created_at"])]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}"


class PhotoAnalysis(models.Model):
    """Pose and person mask found in one photo by one analysis run."""

    class PoseSource(models.TextChoices):
        DETECTED = "detected", "Detected"
        TEMPLATE = "template", "Standard pose template"

    photo = models.ForeignKey(ShootPhoto, on_delete=models.CASCADE, related_name="analyses")
    attempt = models.PositiveIntegerField(default=1)
    keypoints = models.JSONField(null=True, blank=True, help_text="OpenPose body-18 [x, y, conf]")
    pose_source = models.CharField(max_length=10, choices=PoseSource.choices, blank=True)
    pose_image = models.ImageField(upload_to="analysis/%Y/%m/", blank=True)
    person_mask = models.ImageField(upload_to="analysis/%Y/%m/", blank=True)
    quality = models.JSONField(default=dict, blank=True)
    flags = models.JSONField(default=list, blank=True)
    low_quality = models.BooleanField(default=False)
    seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"analysis {self.pk} of photo {self.photo_id}"


class MaskVersion(models.Model):
    """A garment mask for a photo. Every version is kept; exactly one per photo is chosen."""

    class Source(models.TextChoices):
        AUTO = "auto", "Automatic"
        CORRECTED = "corrected", "Seller correction"

    photo = models.ForeignKey(ShootPhoto, on_delete=models.CASCADE, related_name="masks")
    analysis = models.ForeignKey(
        PhotoAnalysis, null=True, on_delete=models.SET_NULL, related_name="masks"
    )
    version = models.PositiveIntegerField()
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.AUTO)
    mask = models.ImageField(upload_to="masks/%Y/%m/")
    feathered = models.ImageField(upload_to="masks/%Y/%m/", blank=True)
    hints = models.JSONField(default=dict, blank=True)
    quality = models.JSONField(default=dict, blank=True)
    is_chosen = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["photo", "version"], name="unique_mask_version_per_photo"
            ),
            models.UniqueConstraint(
                fields=["photo"], condition=Q(is_chosen=True), name="one_chosen_mask_per_photo"
            ),
        ]

    def __str__(self) -> str:
        return f"mask v{self.version} of photo {self.photo_id}"


class MaskCorrection(models.Model):
    """The seller's strokes on a photo's mask, waiting for the ``analysis`` worker.

    The web process never runs the segmentation: it records the strokes here and enqueues
    ``seller.jobs.correct_mask``, which refines the mask with them and makes the new version.
    One correction per photo at a time; the mask review page polls until it is done or failed.
    A correction whose job was lost gets a new attempt from the reconciler (a new job id), and
    fails with a reason once ``JOB_MAX_ATTEMPTS`` are spent.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Being applied"
        DONE = "done", "Applied"
        FAILED = "failed", "Failed"

    #: a correction pending for longer since it was (re-)enqueued lost its job: the seller may
    #: paint again, and the new correction fails the old one (the analysis queue's job timeout)
    STALE_AFTER = timedelta(seconds=600)

    photo = models.ForeignKey(ShootPhoto, on_delete=models.CASCADE, related_name="corrections")
    #: every stroke to apply (``MaskHints.to_dict()`` form): those of the version it corrects,
    #: then the new ones
    hints = models.JSONField(default=dict)
    include_count = models.PositiveIntegerField(default=0, help_text="New include strokes.")
    exclude_count = models.PositiveIntegerField(default=0, help_text="New exclude strokes.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    result = models.ForeignKey(
        MaskVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    #: the job's attempt (the reconciler re-enqueues a lost one) and when it was last enqueued
    attempts = models.PositiveSmallIntegerField(default=1)
    queued_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["queued_at"],
                condition=Q(status="pending"),
                name="mask_correction_pending",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["photo"],
                condition=Q(status="pending"),
                name="one_pending_mask_correction_per_photo",
            ),
        ]

    def __str__(self) -> str:
        return f"mask correction {self.pk} of photo {self.photo_id} ({self.status})"

    @property
    def job_id(self) -> str:
        """The RQ job id of the current attempt (deterministic, like ``shoot-12-analysis-2``)."""
        return f"mask-correction-{self.pk}-{self.attempts}"
