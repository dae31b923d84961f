from django.apps import AppConfig


class FacelibraryConfig(AppConfig):
    name = "facelibrary"
    verbose_name = "Face library"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the file clean-up receivers)
