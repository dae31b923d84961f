"""Build tiny randomly initialised model sets (same classes as the real ones) for tests and the
offline demo: ``manage.py make_tiny_models [--sets tiny-sd15 tiny-svd] [--force]``."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

TINY_SETS = ("tiny-sd15", "tiny-sdxl", "tiny-svd")


class Command(BaseCommand):
    help = "Build tiny offline model sets under MODEL_ROOT."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--sets", nargs="+", default=list(TINY_SETS), choices=TINY_SETS)
        parser.add_argument("--force", action="store_true", help="Rebuild sets that exist.")

    def handle(self, *args, sets: list[str], force: bool, **options) -> None:
        from generation.inference.tiny import make_tiny_models

        built = make_tiny_models(settings.MODEL_ROOT, sets=tuple(sets), force=force)
        for name, path in built.items():
            self.stdout.write(f"{name}: {path}")
