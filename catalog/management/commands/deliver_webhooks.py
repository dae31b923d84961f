"""Enqueue due webhook deliveries and recover stuck ones: once, or every --every seconds."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from catalog.webhooks import sweep


class Command(BaseCommand):
    help = "Enqueue due webhook deliveries (and recover ones whose worker died)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--every", type=float, default=0, help="Repeat every N seconds.")

    def handle(self, *args, every: float, **options) -> None:
        while True:
            self.stdout.write(str(sweep()))
            if not every:
                return
            time.sleep(every)
