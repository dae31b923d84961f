from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SellerConfig(AppConfig):
    name = "seller"
    verbose_name = "Sellers and shoots"

    def ready(self) -> None:
        from core.roles import ensure_groups

        # After the last app migrated, so every app's permissions exist.
        post_migrate.connect(ensure_groups, dispatch_uid="studio-ensure-groups")
