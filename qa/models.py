"""QA: automatic check results, QA submissions and decisions, and seller ratings.

Asset and shoot statuses are not stored here; they change only through their state machines
(``generation.asset_status``, ``seller.services``), driven by ``qa.services`` for QA decisions.
These tables hold what QA needs beside them: the measured scores with their thresholds, who
decided what and why, and the sellers' ratings that feed the statistics page.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class CheckName(models.TextChoices):
    GARMENT_CHANGED = "garment_changed", "Garment pixels changed"
    GARMENT_SSIM = "garment_ssim", "Garment SSIM"
    FACE_IDENTITY = "face_identity", "Face identity distance"
    HAND_COUNT = "hand_count", "Hands visible"
    HAND_PLAUSIBILITY = "hand_plausibility", "Hand landmark plausibility"
    SHARPNESS = "sharpness", "Sharpness"
    EXPOSURE = "exposure", "Exposure (mean luma)"
    RESOLUTION = "resolution", "Resolution (short side)"
    VIDEO_IDENTITY = "video_identity", "Video identity drift"
    VIDEO_GARMENT = "video_garment", "Video garment stability"


class AssetCheck(models.Model):
    """One automatic check of one asset: the score, the limits it was judged by, and the verdict.

    Four verdicts: pass, fail, n/a (``passed`` None: the check does not apply, e.g. no reference
    face or no mask; ``flags`` say why) and error (``errored``: the check itself raised; the
    message is ``details["error"]``). An errored check is not a pass: like a failed one it stops
    a QA approval unless the reviewer gives an override reason (``qa.services.approval_gate``).
    """

    asset = models.ForeignKey(
        "generation.Asset", on_delete=models.CASCADE, related_name="qa_checks"
    )
    name = models.CharField(max_length=30, choices=CheckName.choices)
    score = models.FloatField(null=True, blank=True)
    min_value = models.FloatField(null=True, blank=True, help_text="Pass if score >= this.")
    max_value = models.FloatField(null=True, blank=True, help_text="Pass if score <= this.")
    passed = models.BooleanField(null=True)
    errored = models.BooleanField(
        default=False, help_text="The check raised instead of measuring (see details.error)."
    )
    flags = models.JSONField(default=list, blank=True)
    details = models.JSONField(default=dict, blank=True)
    seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["asset_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "name"], name="one_check_of_each_name"),
            models.CheckConstraint(
                condition=models.Q(errored=False) | models.Q(passed__isnull=True),
                name="errored_check_has_no_verdict",
            ),
        ]
        indexes = [models.Index(fields=["name", "score"])]

    def __str__(self) -> str:
        return f"{self.name}={self.score} ({self.verdict})"

    @property
    def verdict(self) -> str:
        """pass / fail / error / n/a (also the badge's CSS class, without the slash)."""
        if self.errored:
            return "error"
        return {True: "pass", False: "fail", None: "n/a"}[self.passed]

    @property
    def blocks_approval(self) -> bool:
        """A failed or errored check: approving needs an override reason."""
        return self.errored or self.passed is False

    @property
    def threshold_text(self) -> str:
        if self.min_value is not None and self.max_value is not None:
            return f"{self.min_value:g} – {self.max_value:g}"
        if self.min_value is not None:
            return f"≥ {self.min_value:g}"
        if self.max_value is not None:
            return f"≤ {self.max_value:g}"
        return ""


class QASubmission(models.Model):
    """One time a seller sent a shoot's approved assets to QA (a shoot may come back and go
    again). The shoot is settled when every review of its latest submission is decided."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        RETURNED = "returned", "Returned to seller"

    shoot = models.ForeignKey("seller.Shoot", on_delete=models.CASCADE, related_name="qa_rounds")
    number = models.PositiveIntegerField()
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["shoot", "number"], name="unique_qa_round_per_shoot")
        ]

    def __str__(self) -> str:
        return f"QA round {self.number} of shoot {self.shoot_id}"


class RejectionReason(models.TextChoices):
    GARMENT_ALTERED = "garment_altered", "Garment altered"
    FACE_MISMATCH = "face_mismatch", "Face mismatch"
    HANDS = "hands", "Hands"
    ARTEFACT = "artefact", "Artefact"
    POSE = "pose", "Pose"
    OTHER = "other", "Other"


class QAReview(models.Model):
    """The QA decision on one asset. An asset goes to QA at most once (a rejected asset stays
    rejected; the seller regenerates), so this is one-to-one with the asset."""

    class Decision(models.TextChoices):
        PENDING = "pending", "Awaiting QA"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    asset = models.OneToOneField(
        "generation.Asset", on_delete=models.CASCADE, related_name="qa_review"
    )
    submission = models.ForeignKey(QASubmission, on_delete=models.CASCADE, related_name="reviews")
    decision = models.CharField(
        max_length=10, choices=Decision.choices, default=Decision.PENDING, editable=False
    )
    reason = models.CharField(max_length=20, choices=RejectionReason.choices, blank=True)
    comment = models.TextField(blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="qa_decisions",
    )
    submitted_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["submitted_at", "id"]
        verbose_name = "QA review"
        permissions = [("decide_qa", "Can approve or reject assets in QA")]
        indexes = [models.Index(fields=["decision", "submitted_at"])]

    def __str__(self) -> str:
        return f"QA of asset {self.asset_id} ({self.decision})"

    @property
    def reason_text(self) -> str:
        label = self.get_reason_display() if self.reason else ""
        return f"{label}: {self.comment}" if self.comment and label else (label or self.comment)


class AssetRating(models.Model):
    """A seller's 1-5 star rating of a generated asset (the feedback loop's seller side)."""

    asset = models.ForeignKey("generation.Asset", on_delete=models.CASCADE, related_name="ratings")
    rated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    stars = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "rated_by"], name="one_rating_per_user"),
            models.CheckConstraint(
                condition=models.Q(stars__gte=1, stars__lte=5), name="stars_1_to_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stars}★ for asset {self.asset_id}"
