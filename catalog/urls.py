"""Catalog API routes, included at ``/api/`` by config/urls.py."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from .views import AssetFileView, AssetViewSet, ChangeFeedView

app_name = "catalog"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("assets", AssetViewSet, basename="asset")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("v1/changes/", ChangeFeedView.as_view(), name="changes"),
    path("v1/files/<str:token>/", AssetFileView.as_view(), name="asset-file"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="catalog:schema"), name="docs"),
]
