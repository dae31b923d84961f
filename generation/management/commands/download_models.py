"""Download a real model set with checksums: ``manage.py download_models sd15``.

Needs internet access to the Hugging Face Hub (and ``HF_TOKEN`` for gated repositories). Every
file is checked against the Hub's sha256 before the set's manifest is written; workers never
download anything themselves.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from generation.inference.errors import InferenceError


class Command(BaseCommand):
    help = "Download a model set from the Hub into MODEL_ROOT and verify every file's sha256."

    def add_arguments(self, parser) -> None:
        from generation.inference.registry import CATALOGUE

        parser.add_argument(
            "set", help=f"one of: {', '.join(sorted(CATALOGUE))}, or an installed set"
        )
        parser.add_argument("--optional", action="store_true", help="Also fetch optional parts.")
        parser.add_argument(
            "--verify-only",
            action="store_true",
            help="Download nothing; re-hash every installed file against the manifest.",
        )

    def handle(self, *args, set: str, optional: bool, verify_only: bool, **options) -> None:
        from generation.inference.registry import ModelRegistry, download_model_set

        if verify_only:
            try:
                model_set = ModelRegistry(settings.MODEL_ROOT).verify_model_set(set, full_hash=True)
            except InferenceError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(self.style.SUCCESS(f"{set}: {len(model_set.files)} files match"))
            return
        try:
            model_set = download_model_set(
                set,
                settings.MODEL_ROOT,
                include_optional=optional,
                token=os.environ.get("HF_TOKEN"),
                log=self.stdout.write,
            )
        except InferenceError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"{model_set.name}: {len(model_set.files)} files verified")
        )
