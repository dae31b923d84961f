"""Catalog writes: publication, change-feed events with their webhook outbox rows, API tokens.

``asset_publish`` is the catalog's decision: a client says an approved asset is live. It moves the
asset through the asset state machine (``generation.asset_status``; the ``AssetEvent`` has no
user as actor and a note naming the client) and publishes the shoot with its last asset.

Events are written inside the transaction that approves (``qa.services``) or publishes, so an
approval without its event (or the reverse) cannot be committed.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.transitions import TransitionNotAllowed
from generation.asset_status import lock_shoot_of, shoot_assets, transition
from generation.models import Asset
from seller.models import Shoot, ShootStatus
from seller.services import shoot_publish

from .auth import generate_token, hash_token
from .models import (
    CatalogClient,
    CatalogEvent,
    ClientToken,
    EventType,
    Publication,
    Scope,
    WebhookDelivery,
)
from .selectors import client_sees_seller

#: pg_advisory_xact_lock key for "appending to the change feed" (any constant bigint)
FEED_LOCK_KEY = 7_311_020_001


def _lock_feed() -> None:
    """Serialise event inserts until commit, so ids become visible in increasing order.

    Without it a transaction that took id 11 could commit after one that took id 12; a client
    that had already read up to 12 (cursor since=12) would never see 11. Approvals are rare and
    their transactions short, so one lock costs nothing measurable. SQLite writes are
    serialised anyway.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FEED_LOCK_KEY])


def asset_snapshot(asset: Asset) -> dict[str, Any]:
    job = asset.job
    return {
        "id": asset.pk,
        "kind": asset.kind,
        "width": asset.width,
        "height": asset.height,
        "checksum": asset.checksum,
        "face": job.face.code if job.face_id else None,
        "href": f"/api/v1/assets/{asset.pk}/",
    }


def _shoot_fields(shoot: Shoot) -> dict[str, Any]:
    return {
        "seller_id": shoot.seller.catalog_seller_id,
        "sku": shoot.sku,
        "shoot_id": shoot.pk,
        "title": shoot.title,
        "category": shoot.category,
    }


def _subscribers(event: CatalogEvent) -> list[CatalogClient]:
    clients = (
        CatalogClient.objects.filter(is_active=True)
        .exclude(webhook_url="")
        .filter(Q(all_sellers=True) | Q(sellers=event.seller_id))
        .distinct()
    )
    return [client for client in clients if client.wants_webhook(event.type)]


def _append(event_type: str, shoot: Shoot, payload: dict, asset: Asset | None = None):
    from .webhooks import enqueue_delivery

    event = CatalogEvent.objects.create(
        type=event_type, seller_id=shoot.seller_id, shoot=shoot, asset=asset, payload=payload
    )
    now = timezone.now()
    for client in _subscribers(event):
        delivery = WebhookDelivery.objects.create(
            event=event, client=client, url=client.webhook_url, next_attempt_at=now
        )
        enqueue_delivery(delivery_id=delivery.pk, attempt=1)
    return event


def _assets_of(shoot: Shoot, status: str) -> list[Asset]:
    return list(
        Asset.objects.filter(job__run__shoot=shoot, status=status)
        .select_related("job__face")
        .order_by("id")
    )


def record_shoot_approved(*, shoot: Shoot) -> list[CatalogEvent]:
    """One ``asset.approved`` per approved asset and one ``shoot.approved`` (with all of them)."""
    _lock_feed()
    shoot = Shoot.objects.select_related("seller").get(pk=shoot.pk)
    base = _shoot_fields(shoot)
    assets = _assets_of(shoot, Asset.Status.QA_APPROVED)
    events = [
        _append(EventType.ASSET_APPROVED, shoot, {**base, "asset": asset_snapshot(a)}, asset=a)
        for a in assets
    ]
    events.append(
        _append(EventType.SHOOT_APPROVED, shoot, {**base, "asset_ids": [a.pk for a in assets]})
    )
    return events


def record_asset_published(*, asset: Asset, shoot: Shoot, client: CatalogClient) -> CatalogEvent:
    _lock_feed()
    shoot = Shoot.objects.select_related("seller").get(pk=shoot.pk)
    asset = Asset.objects.select_related("job__face").get(pk=asset.pk)
    payload = {**_shoot_fields(shoot), "asset": asset_snapshot(asset), "client": client.name}
    return _append(EventType.ASSET_PUBLISHED, shoot, payload, asset=asset)


def record_shoot_published(*, shoot: Shoot) -> CatalogEvent:
    _lock_feed()
    shoot = Shoot.objects.select_related("seller").get(pk=shoot.pk)
    ids = [a.pk for a in _assets_of(shoot, Asset.Status.PUBLISHED)]
    return _append(EventType.SHOOT_PUBLISHED, shoot, {**_shoot_fields(shoot), "asset_ids": ids})


# --- publication -------------------------------------------------------------------------------


@transaction.atomic
def asset_publish(*, asset: Asset, client: CatalogClient, external_id: str = "") -> Asset:
    """A catalog client acknowledges ``asset`` as live. Idempotent per client. When the shoot's
    last approved asset is published, the shoot is published too."""
    shoot = lock_shoot_of(asset)
    if not client_sees_seller(client=client, seller_id=shoot.seller_id):
        raise PermissionDenied("This client does not serve this seller.")
    asset.refresh_from_db()
    if asset.status == Asset.Status.PUBLISHED:
        Publication.objects.get_or_create(
            asset=asset, client=client, defaults={"external_id": external_id}
        )
        return asset
    if shoot.status != ShootStatus.APPROVED:
        raise TransitionNotAllowed("Only assets of an approved shoot can be published.")
    note = f"Published by catalog client {client.name}"
    asset = transition(asset, "publish", actor=None, note=note)
    Publication.objects.create(asset=asset, client=client, external_id=external_id)
    record_asset_published(asset=asset, shoot=shoot, client=client)
    if not shoot_assets(shoot).filter(status=Asset.Status.QA_APPROVED).exists():
        shoot = shoot_publish(shoot=shoot, note=note)
        record_shoot_published(shoot=shoot)
    return asset


# --- tokens ------------------------------------------------------------------------------------


def client_token_create(
    *, client: CatalogClient, name: str, scopes: list[str]
) -> tuple[ClientToken, str]:
    """A new token for ``client``; returns the row and the token (shown once, never stored)."""
    unknown = set(scopes) - set(Scope.values)
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    raw = generate_token()
    token = ClientToken.objects.create(
        client=client,
        name=name,
        prefix=raw[:12],
        key_hash=hash_token(raw),
        scopes=sorted(set(scopes)),
    )
    return token, raw


def client_token_revoke(*, token: ClientToken) -> bool:
    """Revoke at once (the next request with it gets 401). False if it already was revoked."""
    return bool(
        ClientToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


@transaction.atomic
def webhook_delivery_retry(*, delivery: WebhookDelivery) -> bool:
    """Admin: send a failed (or still pending) delivery again now."""
    from .webhooks import enqueue_delivery

    changed = WebhookDelivery.objects.filter(
        pk=delivery.pk,
        status__in=[WebhookDelivery.Status.FAILED, WebhookDelivery.Status.PENDING],
    ).update(status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now())
    if changed:
        delivery.refresh_from_db()
        enqueue_delivery(delivery_id=delivery.pk, attempt=delivery.attempts + 1, manual=True)
    return bool(changed)
