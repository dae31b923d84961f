"""The project's URLs plus the face library's, as the lead will include them."""

from django.urls import include, path

from config.urls import urlpatterns as project_urls

urlpatterns = [path("faces/", include("facelibrary.urls")), *project_urls]
