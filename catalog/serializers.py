"""Catalog API representations. Feed items are built as plain dicts (see ``feed_item``) for
speed; the serializers below still describe them, for the OpenAPI schema."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generation.models import Asset

from .files import FileLinks, file_url
from .models import EventType
from .selectors import API_STATUS


class AssetSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    seller_id = serializers.CharField(source="job.run.shoot.seller.catalog_seller_id")
    sku = serializers.CharField(source="job.run.shoot.sku")
    shoot_id = serializers.IntegerField(source="job.run.shoot_id")
    title = serializers.CharField(source="job.run.shoot.title")
    category = serializers.CharField(source="job.run.shoot.category")
    face = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    poster_url = serializers.SerializerMethodField()
    status_changed_at = serializers.DateTimeField()

    class Meta:
        model = Asset
        fields = [
            "id",
            "kind",
            "status",
            "seller_id",
            "sku",
            "shoot_id",
            "title",
            "category",
            "face",
            "width",
            "height",
            "checksum",
            "url",
            "poster_url",
            "status_changed_at",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=["approved", "published"]))
    def get_status(self, asset: Asset) -> str:
        return API_STATUS[asset.status]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_face(self, asset: Asset) -> str | None:
        return asset.job.face.code if asset.job.face_id else None

    @extend_schema_field(serializers.URLField())
    def get_url(self, asset: Asset) -> str | None:
        return file_url(
            self.context["request"], asset_id=asset.pk, which="file", name=asset.file.name
        )

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_poster_url(self, asset: Asset) -> str | None:
        return file_url(
            self.context["request"], asset_id=asset.pk, which="poster", name=asset.poster.name
        )


class AssetQuerySerializer(serializers.Serializer):
    seller = serializers.CharField(
        required=False, max_length=64, help_text="Seller's marketplace id (catalog_seller_id)."
    )
    sku = serializers.CharField(required=False, max_length=64)
    status = serializers.ChoiceField(required=False, choices=["approved", "published"])


class PublishSerializer(serializers.Serializer):
    external_id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        default="",
        help_text="The asset's id in your catalog (optional, for support).",
    )


MAX_CURSOR = 2**63 - 1
MAX_FEED_LIMIT = 500
DEFAULT_FEED_LIMIT = 100
_CURSOR = re.compile(r"[0-9]{1,19}")
_LIMIT = re.compile(r"[0-9]{1,3}")


def parse_feed_query(params) -> tuple[int, int]:
    """``(since, limit)`` from the query string, or a 400 naming the bad parameter.

    Hand-written rather than a Serializer: it runs on every poll of the hottest endpoint.
    An absent or empty parameter takes its default.
    """
    errors: dict[str, list[str]] = {}
    since, limit = 0, DEFAULT_FEED_LIMIT
    raw = params.get("since", "")
    if raw:
        if _CURSOR.fullmatch(raw) and int(raw) <= MAX_CURSOR:
            since = int(raw)
        else:
            errors["since"] = ["Cursor must be the next_cursor of an earlier page."]
    raw = params.get("limit", "")
    if raw:
        if _LIMIT.fullmatch(raw) and 1 <= int(raw) <= MAX_FEED_LIMIT:
            limit = int(raw)
        else:
            errors["limit"] = [f"Limit must be an integer from 1 to {MAX_FEED_LIMIT}."]
    if errors:
        raise serializers.ValidationError(errors)
    return since, limit


class FeedAssetSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Asset.Kind.choices)
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    checksum = serializers.CharField()
    face = serializers.CharField(allow_null=True)
    href = serializers.CharField(help_text="Path of the asset in this API.")
    url = serializers.URLField(allow_null=True)
    poster_url = serializers.URLField(allow_null=True)


class FeedEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    cursor = serializers.CharField()
    type = serializers.ChoiceField(choices=EventType.choices)
    created_at = serializers.DateTimeField()
    seller_id = serializers.CharField()
    sku = serializers.CharField()
    shoot_id = serializers.IntegerField()
    title = serializers.CharField()
    category = serializers.CharField()
    asset = FeedAssetSerializer(allow_null=True, required=False)
    asset_ids = serializers.ListField(child=serializers.IntegerField(), required=False)


class FeedPageSerializer(serializers.Serializer):
    results = FeedEventSerializer(many=True)
    next_cursor = serializers.CharField(help_text="Pass as ?since= to get the next events.")
    has_more = serializers.BooleanField()


def iso(value: datetime) -> str:
    """What DRF's encoder writes for a datetime (done here: the encoder's fallback hook costs
    more than the formatting on a 500-event page)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def feed_item(links: FileLinks, row: dict[str, Any]) -> dict[str, Any]:
    """One feed event from a ``change_feed`` row."""
    payload = row["payload"]
    item = {
        "id": row["id"],
        "cursor": str(row["id"]),
        "type": row["type"],
        "created_at": iso(row["created_at"]),
        **{k: v for k, v in payload.items() if k != "client"},
    }
    asset = payload.get("asset")
    if asset is not None:
        asset_id = asset["id"]
        item["asset"] = {
            **asset,
            "url": links.url(asset_id=asset_id, which="file", name=row["asset__file"]),
            "poster_url": links.url(asset_id=asset_id, which="poster", name=row["asset__poster"]),
        }
    return item
