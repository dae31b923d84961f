"""Read side of the catalog API. Every query is scoped to what the caller may see."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from generation.models import Asset
from seller.models import ShootStatus

from .auth import Principal, db_datetime
from .models import CatalogClient, CatalogEvent

#: assets the catalog may see: decided by QA and part of an approved (or published) shoot
VISIBLE_ASSET_STATUSES = (Asset.Status.QA_APPROVED, Asset.Status.PUBLISHED)
VISIBLE_SHOOT_STATUSES = (ShootStatus.APPROVED, ShootStatus.PUBLISHED)
#: API names for the two visible asset statuses
API_STATUS = {Asset.Status.QA_APPROVED: "approved", Asset.Status.PUBLISHED: "published"}


def _seller_scope(principal: Principal, seller_path: str) -> Q:
    if principal.all_sellers:
        return Q()
    # one row per (seller, client) pair in the M2M table, so this join never duplicates rows
    return Q(**{f"{seller_path}__catalog_clients": principal.client_id})


def client_sees_seller(*, client: CatalogClient, seller_id: int) -> bool:
    if not client.is_active:
        return False
    return client.all_sellers or client.sellers.filter(pk=seller_id).exists()


def visible_assets() -> QuerySet[Asset]:
    """The catalog gate, for every client: assets QA approved (or published) in a shoot that
    is approved (or published). Both parts are needed: QA approves asset by asset, so an asset
    stays ``qa_approved`` when another asset of its round is rejected and the shoot goes back to
    the seller. The API (``catalog_assets``) and the signed file links (``files.asset_file``)
    both start from here; ``tests/catalog/test_gate.py`` proves each part (docs/security.md)."""
    return Asset.objects.filter(
        status__in=VISIBLE_ASSET_STATUSES,
        job__run__shoot__status__in=VISIBLE_SHOOT_STATUSES,
    )


def catalog_assets(
    *, principal: Principal, seller: str | None = None, sku: str | None = None, status=None
) -> QuerySet[Asset]:
    """Approved/published assets the principal may see, optionally for one seller (their
    marketplace id), one SKU and one API status ("approved" | "published")."""
    qs = (
        visible_assets()
        .filter(_seller_scope(principal, "job__run__shoot__seller"))
        .select_related("job__run__shoot__seller", "job__face")
        .order_by("id")
    )
    if seller:
        qs = qs.filter(job__run__shoot__seller__catalog_seller_id=seller)
    if sku:
        qs = qs.filter(job__run__shoot__sku=sku)
    if status:
        wanted = [db for db, api in API_STATUS.items() if api == status]
        qs = qs.filter(status__in=wanted)
    return qs


@dataclass(frozen=True)
class FeedPage:
    events: list[dict[str, Any]]
    next_cursor: int
    has_more: bool


_FEED_SQL = (
    "SELECT e.id, e.type, e.created_at, e.payload, e.asset_id, a.file, a.poster "
    "FROM {event} e LEFT JOIN {asset} a ON a.id = e.asset_id "
    "WHERE e.id > %(since)s {scope} ORDER BY e.id LIMIT %(limit)s"
)
_FEED_SCOPE = (
    "AND e.seller_id IN (SELECT seller_id FROM {link} WHERE catalogclient_id = %(client)s)"
)


def _feed_sql(*, scoped: bool) -> str:
    """The feed query; table names come from the models, every value is a parameter."""
    link = CatalogClient.sellers.through._meta.db_table
    return _FEED_SQL.format(
        event=CatalogEvent._meta.db_table,
        asset=Asset._meta.db_table,
        scope=_FEED_SCOPE.format(link=link) if scoped else "",
    )


FEED_COLUMNS = ("id", "type", "created_at", "payload", "asset_id", "asset__file", "asset__poster")


def change_feed(*, principal: Principal, since: int, limit: int) -> FeedPage:
    """Events after cursor ``since``, oldest first. ``next_cursor`` is the last id returned (or
    ``since`` when there is nothing new): pass it as ``since`` next time.

    One hand-written query: this is the endpoint catalog clients poll all day, and building the
    equivalent ORM query (scope join, asset join, values()) cost more CPU than running it
    (docs/api.md, Performance). ``tests/catalog`` pins its scoping and paging.
    """
    scoped = not principal.all_sellers
    params = {"since": since, "limit": limit + 1, "client": principal.client_id}
    with connection.cursor() as cursor:
        cursor.execute(_feed_sql(scoped=scoped), params)
        rows = cursor.fetchall()
    has_more = len(rows) > limit
    events = [
        dict(
            zip(
                FEED_COLUMNS,
                (row[0], row[1], db_datetime(row[2]), json.loads(row[3]), *row[4:]),
                strict=True,
            )
        )
        for row in rows[:limit]
    ]
    return FeedPage(events, events[-1]["id"] if events else since, has_more)
