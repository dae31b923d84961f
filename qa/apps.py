from django.apps import AppConfig


class QaConfig(AppConfig):
    name = "qa"

    def ready(self) -> None:
        # Imported here because models are not loaded before ready(); generation sends, QA
        # listens, so generation (a lower layer) never imports qa.
        from generation.signals import assets_stored

        from .services import schedule_checks_of_stored_assets

        assets_stored.connect(
            schedule_checks_of_stored_assets, dispatch_uid="qa-schedule-checks-of-stored-assets"
        )
