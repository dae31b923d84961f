"""Repair shoots whose job was lost: ``manage.py reconcile [--loop 60]``."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from generation.reconcile import reconcile


class Command(BaseCommand):
    help = "Re-enqueue or fail shoots stuck in analyzing/generating whose job is gone."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--loop", type=int, default=0, help="Repeat every N seconds.")
        parser.add_argument("--grace", type=int, default=None, help="Ignore rows younger than N s.")

    def handle(self, *args, loop: int, grace: int | None, **options) -> None:
        while True:
            report = reconcile(grace_seconds=grace)
            self.stdout.write(str(report.as_dict()))
            if not loop:
                return
            close_old_connections()
            time.sleep(loop)
