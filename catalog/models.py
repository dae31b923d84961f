"""Catalog sync: API clients and their tokens, the change feed, and the webhook outbox.

``CatalogEvent`` is both the change feed (its id is the cursor) and the outbox: it is written in
the same transaction as the approval or publication it describes, together with one
``WebhookDelivery`` per subscribed client. A worker delivers them later; nothing is lost if the
worker, Redis or the receiver is down, because the rows are the source of truth.
"""

from __future__ import annotations

import secrets

from django.db import models


class Scope(models.TextChoices):
    READ = "assets:read", "Read approved assets and the change feed"
    PUBLISH = "assets:publish", "Acknowledge assets as published"


class EventType(models.TextChoices):
    ASSET_APPROVED = "asset.approved", "Asset approved"
    ASSET_PUBLISHED = "asset.published", "Asset published"
    SHOOT_APPROVED = "shoot.approved", "Shoot approved"
    SHOOT_PUBLISHED = "shoot.published", "Shoot published"


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def default_webhook_events() -> list[str]:
    return [EventType.SHOOT_APPROVED, EventType.SHOOT_PUBLISHED]


class CatalogClient(models.Model):
    """A system that pulls approved assets (a marketplace catalog). It sees only its sellers."""

    name = models.CharField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)
    all_sellers = models.BooleanField(
        default=False, help_text="See every seller's assets (otherwise only the sellers below)."
    )
    sellers = models.ManyToManyField("seller.Seller", blank=True, related_name="catalog_clients")
    webhook_url = models.URLField(blank=True, help_text="Leave empty for no webhooks.")
    webhook_secret = models.CharField(
        max_length=100,
        default=new_webhook_secret,
        help_text="HMAC-SHA256 key for the X-Studio-Signature header.",
    )
    webhook_events = models.JSONField(
        default=default_webhook_events,
        blank=True,
        help_text=f"Event types to deliver; any of {', '.join(EventType.values)}.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def wants_webhook(self, event_type: str) -> bool:
        return bool(self.webhook_url) and self.is_active and event_type in self.webhook_events


class ClientToken(models.Model):
    """An API token. Only its SHA-256 is stored; the token itself is shown once, when made."""

    client = models.ForeignKey(CatalogClient, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100, help_text="What uses it, e.g. 'catalog sync prod'.")
    prefix = models.CharField(max_length=16, editable=False, help_text="First characters.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list, help_text=f"Any of {', '.join(Scope.values)}.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.client})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class CatalogEvent(models.Model):
    """One change the catalog should know about. ``id`` is the change-feed cursor: events are
    inserted under a transaction-scoped lock, so ids become visible in increasing order."""

    type = models.CharField(max_length=30, choices=EventType.choices)
    seller = models.ForeignKey("seller.Seller", on_delete=models.CASCADE, related_name="+")
    shoot = models.ForeignKey("seller.Shoot", on_delete=models.CASCADE, related_name="+")
    asset = models.ForeignKey(
        "generation.Asset", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["seller", "id"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.type}"


class Publication(models.Model):
    """A client's acknowledgement that an asset is live in its catalog."""

    asset = models.ForeignKey(
        "generation.Asset", on_delete=models.CASCADE, related_name="publications"
    )
    client = models.ForeignKey(CatalogClient, on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "client"], name="one_publication_per_client")
        ]

    def __str__(self) -> str:
        return f"asset {self.asset_id} published by {self.client_id}"


class WebhookDelivery(models.Model):
    """One event to one client's webhook URL; retried with backoff until delivered."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (attempts exhausted)"

    event = models.ForeignKey(CatalogEvent, on_delete=models.CASCADE, related_name="deliveries")
    client = models.ForeignKey(CatalogClient, on_delete=models.CASCADE, related_name="deliveries")
    url = models.URLField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, editable=False
    )
    attempts = models.PositiveIntegerField(default=0, editable=False)
    next_attempt_at = models.DateTimeField(editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "client"], name="one_delivery_per_client")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"event {self.event_id} → {self.client} ({self.status})"


class WebhookAttempt(models.Model):
    """Every HTTP attempt of a delivery, kept for the admin and for support."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="one_row_per_attempt")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
