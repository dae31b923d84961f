"""The curated face library. A face is an identity the generator will reproduce."""

from __future__ import annotations

from django.db import models


class Face(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    code = models.CharField(max_length=32, unique=True, help_text="Display code shown to sellers.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    usage_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code
