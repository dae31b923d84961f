"""Generation runs, the per-image jobs inside them, and the assets they produce."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class GenerationRun(models.Model):
    """One request to generate images for a shoot (a set of faces x variants).

    At most one run per shoot is active at a time, enforced by the database.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    shoot = models.ForeignKey("seller.Shoot", on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["shoot"],
                condition=Q(status="active"),
                name="one_active_generation_per_shoot",
            )
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of shoot {self.shoot_id} ({self.status})"


class GenerationJob(models.Model):
    """One generated image (and its optional video) for one face and one variant."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="jobs")
    face = models.ForeignKey("facelibrary.Face", null=True, blank=True, on_delete=models.PROTECT)
    variant = models.PositiveSmallIntegerField(default=0)
    seed = models.BigIntegerField()
    settings = models.JSONField(default=dict, blank=True)
    model_set = models.CharField(max_length=50, blank=True)
    model_hashes = models.JSONField(default=dict, blank=True)
    prompt = models.TextField(blank=True)
    negative_prompt = models.TextField(blank=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, editable=False
    )
    progress_step = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    rq_job_id = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds_per_image = models.FloatField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "queued_at"])]

    def __str__(self) -> str:
        return f"job {self.pk} (face {self.face_id}, variant {self.variant}, {self.status})"


class Asset(models.Model):
    """A generated image or video. Its status moves through seller and QA review."""

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"

    class Status(models.TextChoices):
        GENERATED = "generated", "Generated"
        SELLER_APPROVED = "seller_approved", "Approved by seller"
        SELLER_REJECTED = "seller_rejected", "Rejected by seller"
        QA_APPROVED = "qa_approved", "Approved by QA"
        QA_REJECTED = "qa_rejected", "Rejected by QA"
        PUBLISHED = "published", "Published"

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="assets")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    file = models.FileField(upload_to="assets/%Y/%m/")
    poster = models.ImageField(upload_to="assets/%Y/%m/", blank=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    checksum = models.CharField(max_length=64, help_text="sha256 of the file")
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.GENERATED, editable=False
    )
    status_changed_at = models.DateTimeField(auto_now_add=True)
    seller_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "kind"], name="one_asset_of_each_kind_per_job")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.pk} ({self.status})"


class AssetEvent(models.Model):
    """One status change of an asset: who decided what, and when (the asset's audit trail).

    Written by ``generation.asset_status.ASSETS`` in the transaction that changes the status; the
    actor is the seller, the QA reviewer, or nobody for a catalog publication (the note names the
    catalog client).
    """

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, choices=Asset.Status.choices)
    to_status = models.CharField(max_length=20, choices=Asset.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["asset", "created_at"])]

    def __str__(self) -> str:
        return f"asset {self.asset_id}: {self.from_status} → {self.to_status}"
