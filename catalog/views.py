"""Catalog sync API (v1). Views parse, call a selector or a service, and render; nothing else."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import ReadOnlyModelViewSet

from core.transitions import TransitionError
from generation.models import Asset

from . import files
from .auth import (
    ClientRateThrottle,
    ClientTokenAuthentication,
    FileRateThrottle,
    HasScope,
    StaffSessionAuthentication,
)
from .models import CatalogClient, Scope
from .selectors import catalog_assets, change_feed
from .serializers import (
    AssetQuerySerializer,
    AssetSerializer,
    FeedPageSerializer,
    PublishSerializer,
    feed_item,
    parse_feed_query,
)
from .services import asset_publish

ERRORS = {
    401: OpenApiResponse(description="No token, or an invalid or revoked one."),
    403: OpenApiResponse(description="The token lacks the scope this endpoint needs."),
    429: OpenApiResponse(description="Too many requests; see Retry-After."),
}

ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Asset id.")


class CatalogPagination(LimitOffsetPagination):
    max_limit = 500
    #: PostgreSQL's OFFSET is a bigint: a bigger one is an error, not an empty page
    max_offset = 10**12

    def get_offset(self, request) -> int:
        return min(super().get_offset(request), self.max_offset)


class CatalogAPIView(APIView):
    authentication_classes = [ClientTokenAuthentication, StaffSessionAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [ClientRateThrottle]
    required_scope = Scope.READ


@extend_schema(tags=["assets"])
class AssetViewSet(CatalogAPIView, ReadOnlyModelViewSet):
    """Approved assets (photos and videos) of the sellers this client serves."""

    serializer_class = AssetSerializer
    pagination_class = CatalogPagination
    parser_classes = [JSONParser]
    required_scopes = {"publish": Scope.PUBLISH}
    # ids past 18 digits are not ids (and would overflow bigint): the router 404s them
    lookup_value_regex = "[0-9]{1,18}"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular building the schema
            return Asset.objects.none()
        query = AssetQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return catalog_assets(principal=self.request.user, **query.validated_data)

    @extend_schema(
        parameters=[AssetQuerySerializer],
        responses={200: AssetSerializer(many=True), 400: OpenApiResponse(), **ERRORS},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        parameters=[ID], responses={200: AssetSerializer, 404: OpenApiResponse(), **ERRORS}
    )
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        parameters=[ID],
        request=PublishSerializer,
        responses={
            200: AssetSerializer,
            400: OpenApiResponse(description="Invalid body."),
            404: OpenApiResponse(description="Not an asset this client can see."),
            409: OpenApiResponse(description="The asset cannot be published now."),
            **ERRORS,
        },
        summary="Acknowledge the asset as published in the catalog",
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        body = PublishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        asset = get_object_or_404(catalog_assets(principal=request.user), pk=pk)
        client = CatalogClient.objects.filter(pk=request.user.client_id).first()
        if client is None:  # staff browsing with a session are read-only
            raise NotFound()
        try:
            asset = asset_publish(asset=asset, client=client, **body.validated_data)
        except DjangoPermissionDenied:
            raise NotFound() from None
        except TransitionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        asset = catalog_assets(principal=request.user).get(pk=asset.pk)
        return Response(self.get_serializer(asset).data)


@extend_schema(tags=["changes"])
class ChangeFeedView(CatalogAPIView):
    """Everything that changed for this client's sellers, oldest first, from a cursor."""

    @extend_schema(
        operation_id="changes_list",
        parameters=[
            OpenApiParameter("since", str, description="Cursor (`next_cursor`); default 0."),
            OpenApiParameter("limit", int, description="1-500, default 100."),
        ],
        responses={
            200: FeedPageSerializer,
            400: OpenApiResponse(description="Bad cursor or limit."),
            **ERRORS,
        },
    )
    def get(self, request):
        since, limit = parse_feed_query(request.query_params)
        page = change_feed(principal=request.user, since=since, limit=limit)
        links = files.FileLinks(request)
        return Response(
            {
                "results": [feed_item(links, row) for row in page.events],
                "next_cursor": str(page.next_cursor),
                "has_more": page.has_more,
            }
        )


@extend_schema(exclude=True)
class AssetFileView(APIView):
    """A file behind a signed link from ``url`` / ``poster_url`` (no token: the link is it)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [FileRateThrottle]

    def get(self, request, token: str):
        return files.asset_file(request, token)
