"""``manage.py import_faces DIR [--attributes CSV] [--activate]``: bulk import of reference photos.

DIR holds one photo per face, or one sub-folder per face with several photos of that person.
The optional CSV has a ``file`` column (a photo or folder name in DIR) and any of the face
attributes (gender_presentation, age_band, skin_tone, region_tags as "east_asia;europe",
expression, hair, hair_color, notes), ``code``, ``source``, and a consent: licence_terms,
valid_from, expires_on (YYYY-MM-DD), allowed_uses ("catalog_images;catalog_video"),
consent_document (a path inside DIR). Faces are created as drafts; ``--activate`` activates
those that pass the gate and have a valid consent. Photos that fail the gate are reported and
not stored (``--keep-rejected`` stores them, with their report, for a curator to look at).
Photos already in the library (same bytes) are skipped, so a re-run continues where an
interrupted one stopped.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from facelibrary.batch import import_folder, read_attribute_rows
from facelibrary.models import Source


class Command(BaseCommand):
    help = "Import face reference photos from a folder through the quality gate."

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--attributes", type=Path, help="CSV of attributes per photo/folder.")
        parser.add_argument("--source", choices=Source.values, default=Source.LICENSED_MODEL)
        parser.add_argument("--activate", action="store_true", help="Activate faces that can be.")
        parser.add_argument(
            "--keep-rejected",
            action="store_true",
            help="Also store photos that fail the gate (as drafts, with their report).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, directory: Path, attributes: Path | None, **options) -> None:
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a folder.")
        try:
            rows = read_attribute_rows(attributes) if attributes else {}
        except (OSError, ValidationError) as exc:
            raise CommandError(f"Cannot read {attributes}: {exc}") from exc

        def progress(entries):
            return tqdm(
                entries, desc="faces", unit="face", file=sys.stderr, disable=options["no_progress"]
            )

        summary = import_folder(
            directory,
            rows=rows,
            source=options["source"],
            activate=options["activate"],
            keep_rejected=options["keep_rejected"],
            progress=progress,
        )
        for line in summary.lines():
            self.stdout.write(line)
