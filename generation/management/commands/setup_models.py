"""Make sure the configured model sets exist: build the tiny offline sets when they are asked for.

Real weights are never fetched here; ``manage.py download_models SET`` does that where internet
exists. This keeps ``./dev run`` working on a fresh machine with no network.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Build the tiny model sets if the configured sets are tiny ones and missing."

    def handle(self, *args, **options) -> None:
        wanted = {settings.GENERATION_MODEL_SET, settings.VIDEO_MODEL_SET}
        tiny = sorted(name for name in wanted if name.startswith("tiny-"))
        missing = [
            name for name in tiny if not (settings.MODEL_ROOT / name / "manifest.json").exists()
        ]
        if not missing:
            self.stdout.write(f"model sets ready under {settings.MODEL_ROOT}")
            return
        from generation.inference.tiny import make_tiny_models

        self.stdout.write(f"building tiny offline model sets {missing} in {settings.MODEL_ROOT}")
        make_tiny_models(settings.MODEL_ROOT, sets=tuple(missing))
