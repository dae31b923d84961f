from django.urls import path

from . import views

app_name = "facelibrary"

urlpatterns = [
    path("gallery/", views.gallery, name="gallery"),
]
