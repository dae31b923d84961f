from django.apps import AppConfig


class FacelibraryConfig(AppConfig):
    name = "facelibrary"
    verbose_name = "Face library"
