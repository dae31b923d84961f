"""``manage.py generate_faces --count N [--attributes name=value ...]``: synthetic library faces.

Each face is made with text-to-image on the configured model set (GENERATION_MODEL_SET under
MODEL_ROOT), then goes through the same quality gate as an uploaded photo. Faces that pass are
saved as drafts with source ``ai_generated`` and a licence record naming the model set; images
that fail are discarded (``--keep-rejected`` keeps them as drafts, with their report).
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from facelibrary.batch import describe_error, generate_synthetic, parse_attribute_args
from generation.inference.errors import InferenceError


class Command(BaseCommand):
    help = "Generate synthetic faces with the generation engine, through the quality gate."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument(
            "--attributes",
            nargs="*",
            default=[],
            metavar="NAME=VALUE",
            help="Fixed attributes, e.g. gender_presentation=feminine skin_tone=6 "
            "region_tags=east_asia; the others vary per face.",
        )
        parser.add_argument("--model-set", default=None, help="Default: GENERATION_MODEL_SET.")
        parser.add_argument("--size", type=int, default=512, help="Image side in px (x8).")
        parser.add_argument("--steps", type=int, default=25)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--keep-rejected", action="store_true")
        parser.add_argument("--activate", action="store_true")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, count: int, **options) -> None:
        if not 1 <= count <= 500:
            raise CommandError("--count must be between 1 and 500.")
        if options["size"] % 8:
            raise CommandError("--size must be a multiple of 8.")
        try:
            attributes = parse_attribute_args(options["attributes"])
        except (ValidationError, ValueError) as exc:
            raise CommandError(describe_error(exc)) from exc
        model_set = options["model_set"] or settings.GENERATION_MODEL_SET

        def progress(items):
            return tqdm(
                items, desc="faces", unit="face", file=sys.stderr, disable=options["no_progress"]
            )

        try:
            summary = generate_synthetic(
                count=count,
                attributes=attributes,
                model_set=model_set,
                progress=progress,
                # these options are named after the generate_synthetic arguments they set
                **{k: options[k] for k in ("size", "steps", "seed", "keep_rejected", "activate")},
            )
        except InferenceError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Model set {model_set}, {count} image(s) generated.")
        for line in summary.lines():
            self.stdout.write(line)
