"""Bulk additions to the library: a folder of photos (``import_faces``) and synthetic faces made
with the generation engine (``generate_faces``). Both go through the same quality gate and the
same services as a curator's upload; the management commands only parse and print.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from . import services
from .models import (
    AgeBand,
    Expression,
    Face,
    FaceReference,
    GenderPresentation,
    Hair,
    HairColor,
    Source,
)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
CONSENT_COLUMNS = ("licence_terms", "valid_from", "expires_on", "allowed_uses", "consent_document")


@dataclass
class PhotoResult:
    label: str  # file name relative to the import folder, or "generated #3"
    passed: bool
    messages: list[str] = field(default_factory=list)
    face_code: str = ""
    duplicate_of: str = ""
    duplicate_distance: float | None = None
    failed_checks: list[str] = field(default_factory=list)


@dataclass
class BatchSummary:
    photos: list[PhotoResult] = field(default_factory=list)
    faces_created: list[str] = field(default_factory=list)
    activated: list[str] = field(default_factory=list)
    not_activated: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # "label: why"
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> list[PhotoResult]:
        return [p for p in self.photos if p.passed]

    @property
    def failed(self) -> list[PhotoResult]:
        return [p for p in self.photos if not p.passed]

    @property
    def duplicates(self) -> list[PhotoResult]:
        return [p for p in self.photos if p.duplicate_of]

    def failure_counts(self) -> Counter[str]:
        return Counter(name for p in self.failed for name in p.failed_checks)

    def lines(self) -> list[str]:
        """A human summary (what the commands print)."""
        out = [
            f"{len(self.photos)} photo(s) checked: {len(self.passed)} passed the quality gate, "
            f"{len(self.failed)} failed.",
            f"{len(self.faces_created)} face(s) created: {', '.join(self.faces_created)}"
            if self.faces_created
            else "No face created.",
        ]
        if self.failed:
            counts = ", ".join(f"{name} {n}" for name, n in self.failure_counts().most_common())
            out.append(f"Failed checks: {counts}.")
            out += [f"  ✗ {p.label}: {' '.join(p.messages)}" for p in self.failed]
        for p in self.duplicates:
            out.append(
                f"  ⚠ {p.label} ({p.face_code}) looks like face {p.duplicate_of} already in the "
                f"library (distance {p.duplicate_distance:.2f})."
            )
        if self.activated:
            out.append(f"Activated: {', '.join(self.activated)}.")
        for code, reasons in self.not_activated.items():
            out.append(f"  not activated {code}: {' '.join(reasons)}")
        out += [f"  skipped {item}" for item in self.skipped]
        out += [f"  error {item}" for item in self.errors]
        return out


def _result(label: str, prepared, reference: FaceReference | None) -> PhotoResult:
    checks = reference.gate_checks if reference else [c.to_dict() for c in prepared.report.checks]
    failed = [c for c in checks if not c["passed"]]
    result = PhotoResult(
        label=label,
        passed=not failed,
        messages=[c["message"] for c in failed],
        failed_checks=[c["name"] for c in failed],
    )
    if reference is not None:
        result.face_code = reference.face.code
        if reference.duplicate_of_id:
            result.duplicate_of = reference.duplicate_of.code
            result.duplicate_distance = reference.duplicate_distance
    return result


def _activate(face: Face, actor, summary: BatchSummary) -> None:
    try:
        services.face_activate(face=face, actor=actor)
    except services.FaceActionRefused as exc:
        summary.not_activated[face.code] = exc.reasons
    else:
        summary.activated.append(face.code)


# --- import a folder -----------------------------------------------------------------------------


@dataclass
class ImportEntry:
    """One face to import: a photo in the folder, or a sub-folder of photos of one person."""

    label: str
    photos: list[Path]
    row: dict[str, str] = field(default_factory=dict)


def find_entries(folder: Path) -> list[ImportEntry]:
    entries = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            photos = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if photos:
                entries.append(ImportEntry(path.name, photos))
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            entries.append(ImportEntry(path.name, [path]))
    return entries


def read_attribute_rows(csv_path: Path) -> dict[str, dict[str, str]]:
    """CSV rows keyed by their ``file`` column (a photo or folder name in the import folder)."""
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if "file" not in (reader.fieldnames or []):
            raise ValidationError(f"{csv_path} needs a 'file' column (a photo or folder name).")
        rows = {}
        for row in reader:
            name = (row.get("file") or "").strip()
            if name:
                rows[name] = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        return rows


def describe_error(exc: Exception) -> str:
    """A one-line message naming the fields of a ValidationError."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in exc.message_dict.items())
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


def face_attributes(row: dict[str, str]) -> dict[str, Any]:
    """Face attributes from a CSV row (empty cells are left unset)."""
    attributes: dict[str, Any] = {}
    for name in services.ATTRIBUTE_FIELDS:
        value = row.get(name, "")
        if not value:
            continue
        if name == "skin_tone":
            attributes[name] = int(value)
        elif name == "region_tags":
            attributes[name] = services.region_values(value.replace(",", ";").split(";"))
        else:
            attributes[name] = value
    return attributes


def import_folder(
    folder: Path,
    *,
    rows: dict[str, dict[str, str]] | None = None,
    source: str = Source.LICENSED_MODEL,
    activate: bool = False,
    keep_rejected: bool = False,
    actor=None,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
) -> BatchSummary:
    summary = BatchSummary()
    entries = find_entries(folder)
    rows = rows or {}
    known = {entry.label for entry in entries}
    missing = [name for name in rows if name not in known]
    summary.errors += [f"{name}: in the CSV but not in {folder}" for name in missing]
    for entry in progress(entries):
        entry.row = rows.get(entry.label, {})
        try:
            _import_entry(
                entry,
                folder,
                source=source,
                activate=activate,
                keep_rejected=keep_rejected,
                actor=actor,
                summary=summary,
            )
        except (ValidationError, ValueError, OSError) as exc:
            summary.errors.append(f"{entry.label}: {describe_error(exc)}")
    return summary


def _import_entry(
    entry: ImportEntry,
    folder: Path,
    *,
    source: str,
    activate: bool,
    keep_rejected: bool,
    actor,
    summary: BatchSummary,
) -> None:
    """One face from one photo or folder. Photos that fail the gate are only reported (their
    face is not created) unless ``keep_rejected``: then they are stored with their report."""
    attributes = face_attributes(entry.row)
    validate_attributes(attributes)  # before the gate: a typo in the CSV costs no inference
    prepared_photos = []
    for path in entry.photos:
        label = str(path.relative_to(folder))
        data = path.read_bytes()
        existing = _already_imported(data)
        if existing:
            summary.skipped.append(f"{label}: already in the library as face {existing}")
            continue
        try:
            prepared_photos.append((label, services.prepare(data)))
        except services.InvalidReference as exc:
            summary.errors.append(f"{label}: {exc}")
    if not keep_rejected:
        for label, prepared in prepared_photos:
            if not prepared.report.passed:
                summary.photos.append(_result(label, prepared, None))
        prepared_photos = [(lb, p) for lb, p in prepared_photos if p.report.passed]
    if not prepared_photos:
        return
    face = services.face_create(
        source=entry.row.get("source") or source,
        code=entry.row.get("code") or None,
        attributes=attributes,
        actor=actor,
    )
    summary.faces_created.append(face.code)
    if entry.row.get("licence_terms"):
        _consent_from_row(face, entry.row, folder, actor)
    for label, prepared in prepared_photos:
        reference = services.reference_add(face=face, prepared=prepared, actor=actor)
        summary.photos.append(_result(label, prepared, reference))
    if activate:
        _activate(face, actor, summary)


def _already_imported(data: bytes) -> str | None:
    from core.files import sha256

    ref = FaceReference.objects.filter(source_sha256=sha256(data)).select_related("face").first()
    return ref.face.code if ref else None


def _consent_from_row(face: Face, row: dict[str, str], folder: Path, actor) -> None:
    document = None
    if row.get("consent_document"):
        path = (folder / row["consent_document"]).resolve()
        if not path.is_relative_to(folder.resolve()):
            raise ValidationError(f"consent_document {row['consent_document']} is outside {folder}")
        document = SimpleUploadedFile(path.name, path.read_bytes())
    uses = [u.strip() for u in row.get("allowed_uses", "").replace(",", ";").split(";")]
    services.consent_add(
        face=face,
        licence_terms=row["licence_terms"],
        valid_from=date.fromisoformat(row["valid_from"]) if row.get("valid_from") else None,
        expires_on=date.fromisoformat(row["expires_on"]) if row.get("expires_on") else None,
        uses=[u for u in uses if u] or ("catalog_images", "catalog_video"),
        document=document,
        actor=actor,
    )


# --- synthetic faces -----------------------------------------------------------------------------

#: attributes drawn at random when the operator does not fix them, so a batch is varied
_VARIED: dict[str, list[Any]] = {
    "gender_presentation": list(GenderPresentation.values),
    "age_band": [v for v in AgeBand.values if v != "65+"],
    "skin_tone": list(range(1, 11)),
    "expression": [Expression.NEUTRAL, Expression.SMILING],
    "hair": [Hair.SHORT, Hair.MEDIUM, Hair.LONG],
    "hair_color": [HairColor.BLACK, HairColor.BROWN, HairColor.BLONDE, HairColor.RED],
}
PORTRAIT_NEGATIVE = (
    "profile view, looking away, turned head, sunglasses, hat, hand on face, multiple people, "
    "cropped face, blurry, out of focus, deformed, disfigured, extra eyes, watermark, text"
)


def parse_attribute_args(pairs: Iterable[str]) -> dict[str, Any]:
    """``["skin_tone=5", "region_tags=east_asia;europe"]`` -> validated face attributes."""
    row = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError(f"Attributes are name=value pairs, got {pair!r}.")
        if name.strip() not in services.ATTRIBUTE_FIELDS:
            raise ValidationError(
                f"Unknown attribute {name!r}; use {', '.join(services.ATTRIBUTE_FIELDS)}."
            )
        row[name.strip()] = value.strip()
    attributes = face_attributes(row)
    validate_attributes(attributes)
    return attributes


def validate_attributes(attributes: dict[str, Any]) -> None:
    """Raise ValidationError (naming the field) for a value a face cannot have."""
    face = Face(code="validation", **attributes)
    face.full_clean(exclude=["code"], validate_unique=False)


def portrait_prompt(attributes: dict[str, Any]) -> str:
    from generation.inference.diffusion import describe_face

    from .identity import prompt_attributes

    face = Face(code="", **attributes)
    who = describe_face(prompt_attributes(face)) or "person"
    return (
        f"studio headshot portrait photo of a {who}, head and shoulders, facing the camera, "
        "looking straight into the lens, plain light grey background, soft even lighting, "
        "sharp focus, high detail, realistic skin texture"
    )


def generate_synthetic(
    *,
    count: int,
    attributes: dict[str, Any],
    model_set: str,
    size: int = 512,
    steps: int = 25,
    seed: int | None = None,
    keep_rejected: bool = False,
    activate: bool = False,
    actor=None,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
) -> BatchSummary:
    """Make ``count`` faces with text-to-image and keep those that pass the gate.

    Attributes not fixed by ``attributes`` are drawn at random per face (seeded), written into
    the prompt and recorded on the face; curators check them before activating. A rejected
    image is discarded unless ``keep_rejected`` (then it is kept as a draft with its report).
    """
    from generation.inference.diffusion import DEFAULT_NEGATIVE_PROMPT, text_to_image
    from generation.inference.intake import encode_png
    from generation.inference.registry import load_manifest

    set_dir = settings.MODEL_ROOT / model_set
    licences = {name: c.licence for name, c in load_manifest(set_dir).components.items()}
    rng = random.Random(seed)
    summary = BatchSummary()
    for index in progress(range(count)):
        face_attrs = {**{k: rng.choice(v) for k, v in _VARIED.items()}, **attributes}
        image_seed = rng.randrange(2**31)
        result = text_to_image(
            portrait_prompt(face_attrs),
            model_set_dir=set_dir,
            device=settings.INFERENCE_DEVICE,
            negative_prompt=f"{PORTRAIT_NEGATIVE}, {DEFAULT_NEGATIVE_PROMPT}",
            width=size,
            height=size,
            seed=image_seed,
            steps=steps,
            commercial=settings.COMMERCIAL_MODE,
        )
        label = f"generated #{index + 1} (seed {image_seed})"
        prepared = services.prepare(encode_png(result.image))
        if not prepared.report.passed and not keep_rejected:
            summary.photos.append(_result(label, prepared, None))
            continue
        face = services.face_create(source=Source.AI_GENERATED, attributes=face_attrs, actor=actor)
        summary.faces_created.append(face.code)
        services.consent_add(
            face=face,
            licence_terms=services.ai_licence_terms(model_set=model_set, licences=licences),
            uses=("catalog_images", "catalog_video", "advertising", "social_media"),
            actor=actor,
        )
        reference = services.reference_add(face=face, prepared=prepared, actor=actor)
        summary.photos.append(_result(label, prepared, reference))
        if activate and reference.gate_passed:
            _activate(face, actor, summary)
    return summary
