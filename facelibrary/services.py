"""Face library services: the only code that writes faces, references and consents.

Status changes are compare-and-swap UPDATEs (``filter(pk=..., status=<what the caller saw>)``)
under a row lock on the face, like shoot transitions: 0 rows means another curator or the expiry
job changed the face first, and we say so instead of overwriting their change. Each change
writes a ``FaceEvent`` in the same transaction.

Reference photos go through the quality gate (model inference, ~100 ms) and are written to
storage *before* any transaction is opened; only the row insert is transactional, and the files
are deleted again when it fails.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from seller.imagefiles import delete_quietly, store

from . import selectors
from .models import Consent, Face, FaceEvent, FaceReference, Region, Source

if TYPE_CHECKING:
    from .gate import PreparedReference

log = logging.getLogger(__name__)
S = Face.Status

#: faces may be added with attribute values from these fields (everything a curator filters on)
ATTRIBUTE_FIELDS = (
    "gender_presentation",
    "age_band",
    "skin_tone",
    "region_tags",
    "expression",
    "hair",
    "hair_color",
    "notes",
)
CONSENT_DOCUMENT_MAX_BYTES = 10 * 1024 * 1024
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: codes are read aloud


class FaceActionRefused(Exception):
    """The action is not allowed for this face now; ``reasons`` says why, for a curator."""

    def __init__(self, reasons: list[str] | str) -> None:
        self.reasons = [reasons] if isinstance(reasons, str) else list(reasons)
        super().__init__(" ".join(self.reasons))


class FaceStatusConflict(FaceActionRefused):
    """Someone else changed the face between our read and our write."""


class InvalidReference(Exception):
    """The upload is not a usable image file at all (nothing was stored)."""


# --- faces ---------------------------------------------------------------------------------------


def new_face_code(prefix: str = "F") -> str:
    return f"{prefix}-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


def face_create(
    *,
    source: str = Source.LICENSED_MODEL,
    code: str | None = None,
    attributes: dict[str, Any] | None = None,
    actor=None,
) -> Face:
    """A new draft face; ``attributes`` are validated against the model's choices."""
    attributes = dict(attributes or {})
    unknown = set(attributes) - set(ATTRIBUTE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown face attribute(s): {', '.join(sorted(unknown))}.")
    for _ in range(5):
        face = Face(code=code or new_face_code("AI" if source == Source.AI_GENERATED else "F"))
        face.source = source
        face.created_by = actor
        for name, value in attributes.items():
            setattr(face, name, value)
        face.full_clean(validate_unique=False)
        try:
            with transaction.atomic():
                face.save()
            return face
        except IntegrityError:
            if code:  # the caller's own code is taken: that is their error to fix
                raise ValidationError({"code": f"Face code {code} is taken."}) from None
    raise RuntimeError("could not find a free face code")  # 32^6 codes: practically unreachable


def _change_status(face: Face, *, to: str, actor, note: str, **fields: Any) -> Face:
    """CAS from the status the caller saw to ``to``; the caller holds the row lock."""
    expected = face.status
    now = timezone.now()
    changed = Face.objects.filter(pk=face.pk, status=expected).update(
        status=to, status_changed_at=now, updated_at=now, **fields
    )
    if changed == 0:
        current = Face.objects.filter(pk=face.pk).values_list("status", flat=True).first()
        raise FaceStatusConflict(
            f"Face {face.code} changed meanwhile (now {current}); nothing was applied."
        )
    FaceEvent.objects.create(face=face, from_status=expected, to_status=to, actor=actor, note=note)
    face.refresh_from_db()
    return face


def _lock(face: Face) -> None:
    # Serialises activation against consent revocation: otherwise a face could be activated on
    # a consent that is being revoked in a concurrent transaction.
    Face.objects.select_for_update().filter(pk=face.pk).first()


@transaction.atomic
def face_activate(*, face: Face, actor) -> Face:
    """draft | retired -> active, only for a face whose references all passed the gate and
    that has a valid consent covering catalog images."""
    _lock(face)
    if face.status == S.ACTIVE:
        raise FaceActionRefused(f"Face {face.code} is already active.")
    problems = selectors.face_activation_problems(face=face)
    if problems:
        raise FaceActionRefused(problems)
    return _change_status(face, to=S.ACTIVE, actor=actor, note="Activated", retired_reason="")


@transaction.atomic
def face_retire(*, face: Face, actor, reason: str) -> Face:
    """draft | active -> retired. The face leaves the gallery; past generations keep it."""
    reason = (reason or "").strip()
    if not reason:
        raise FaceActionRefused("Say why the face is retired.")
    _lock(face)
    if face.status == S.RETIRED:
        raise FaceActionRefused(f"Face {face.code} is already retired.")
    return _change_status(face, to=S.RETIRED, actor=actor, note=reason, retired_reason=reason)


def retire_expired_consents(*, today: date | None = None) -> list[int]:
    """Retire every active face that has no valid consent any more; returns their ids.

    Run periodically (config/cron.py). The gallery already hides such faces at once (its query
    checks consent validity); this makes the status say so too, with a reason and an event.
    """
    today = today or timezone.localdate()
    retired = []
    for face in selectors.active_faces_without_valid_consent(on=today):
        ended = selectors.last_consent_end(face=face)
        reason = f"Consent expired on {ended}." if ended else "No valid consent."
        try:
            face_retire(face=face, actor=None, reason=reason)
        except FaceActionRefused as exc:  # a curator retired it meanwhile: nothing to do
            log.info("face %s not retired by the expiry job: %s", face.pk, exc)
            continue
        retired.append(face.pk)
    if retired:
        log.info("retired %d face(s) whose consent expired: %s", len(retired), retired)
    return retired


# --- references ----------------------------------------------------------------------------------


def _read_upload(upload: UploadedFile) -> bytes:
    upload.seek(0)
    return upload.read()


def reference_add(
    *,
    face: Face,
    actor,
    image_bytes: bytes | None = None,
    upload: UploadedFile | None = None,
    prepared: PreparedReference | None = None,
) -> FaceReference:
    """Add a reference photo to ``face``: gate, embeddings, thumbnail, duplicate search.

    Pass exactly one of ``image_bytes``, ``upload`` or an already ``prepared`` reference. A photo
    that fails the gate is still stored, with its checks, so the curator sees why; such a face
    cannot be activated until the failing photo is deleted. Raises InvalidReference when the
    file is not a usable image (nothing is stored). Must not be called inside a transaction:
    the gate runs model inference, which would hold the transaction open.
    """
    if sum(x is not None for x in (image_bytes, upload, prepared)) != 1:
        raise TypeError("pass exactly one of image_bytes, upload or prepared")
    if prepared is None:
        prepared = prepare(image_bytes if image_bytes is not None else _read_upload(upload))
    checks = [check.to_dict() for check in prepared.report.checks]
    primary = selectors.primary_reference(face=face)
    same_person = _same_person(prepared, primary)
    if same_person is not None:
        checks.append(same_person.to_dict())
    passed = all(check["passed"] for check in checks)
    duplicate = selectors.closest_other_face(embedding=prepared.embedding, exclude_face=face)

    written = [store("facelibrary/references", prepared.png, "png")]
    written.append(store("facelibrary/thumbnails", prepared.thumbnail_jpeg, "jpg"))
    try:
        reference = _record_reference(face, prepared, checks, passed, duplicate, written, actor)
    except BaseException:
        delete_quietly(written)
        raise
    if duplicate is not None:
        log.info("reference %s of face %s looks like face %s", reference.pk, face.pk, duplicate)
    return reference


def prepare(data: bytes) -> PreparedReference:
    """Decode and gate ``data`` (slow: model inference); raises InvalidReference."""
    from generation.inference.errors import InvalidImageError

    from .gate import prepare_reference  # imports the face models: only where they are used

    try:
        return prepare_reference(data)
    except InvalidImageError as exc:
        raise InvalidReference(str(exc)) from exc


def _same_person(prepared: PreparedReference, primary: FaceReference | None):
    from .gate import same_person_check

    if primary is None:
        return None
    return same_person_check(prepared.embedding, primary.embedding)


@transaction.atomic
def _record_reference(
    face: Face,
    prepared: PreparedReference,
    checks: list[dict],
    passed: bool,
    duplicate: tuple[int, float] | None,
    written: list[str],
    actor,
) -> FaceReference:
    _lock(face)  # two uploads at once must not both become the primary reference
    report = prepared.report.to_dict()
    make_primary = passed and not face.references.filter(is_primary=True).exists()
    return FaceReference.objects.create(
        face=face,
        image=written[0],
        thumbnail=written[1],
        width=prepared.width,
        height=prepared.height,
        source_sha256=prepared.source_sha256,
        is_primary=make_primary,
        gate_passed=passed,
        gate_checks=checks,
        face_box=report["face_box"],
        yaw=report["yaw"],
        pitch=report["pitch"],
        embedding=prepared.embedding,
        embedding_512=prepared.embedding_512,
        duplicate_of_id=duplicate[0] if duplicate else None,
        duplicate_distance=duplicate[1] if duplicate else None,
        created_by=actor,
    )


@transaction.atomic
def reference_make_primary(*, reference: FaceReference, actor) -> FaceReference:
    """Make a passing reference the face's primary one (the image the generator uses)."""
    if not reference.gate_passed:
        raise FaceActionRefused("Only a photo that passed the quality gate can be primary.")
    _lock(reference.face)
    FaceReference.objects.filter(face_id=reference.face_id, is_primary=True).update(
        is_primary=False
    )
    FaceReference.objects.filter(pk=reference.pk).update(is_primary=True)
    reference.refresh_from_db()
    log.info("reference %s made primary of face %s by %s", reference.pk, reference.face_id, actor)
    return reference


@transaction.atomic
def reference_delete(*, reference: FaceReference, actor) -> None:
    """Delete a reference; another passing one becomes primary. Its files go after commit."""
    face = reference.face
    _lock(face)
    problem = selectors.reference_delete_problem(reference=reference)
    if problem:
        raise FaceActionRefused(problem)
    was_primary = reference.is_primary
    reference.delete()  # files: facelibrary.signals deletes them once this commits
    if was_primary:
        successor = face.references.filter(gate_passed=True).order_by("id").first()
        if successor is not None:
            FaceReference.objects.filter(pk=successor.pk).update(is_primary=True)
    log.info("reference %s of face %s deleted by %s", reference.pk, face.pk, actor)


# --- consent -------------------------------------------------------------------------------------


def consent_add(
    *,
    face: Face,
    licence_terms: str,
    actor,
    valid_from: date | None = None,
    expires_on: date | None = None,
    uses: Iterable[str] = ("catalog_images", "catalog_video"),
    document: UploadedFile | None = None,
) -> Consent:
    """Record a signed release / licence. The document is stored under a random name."""
    consent = Consent(
        face=face,
        licence_terms=licence_terms,
        valid_from=valid_from or timezone.localdate(),
        expires_on=expires_on,
        created_by=actor,
    )
    uses = set(uses)
    for field in ("catalog_images", "catalog_video", "advertising", "social_media"):
        setattr(consent, f"allows_{field}", field in uses)
    if document is not None:
        if document.size > CONSENT_DOCUMENT_MAX_BYTES:
            raise ValidationError({"document": "The document is larger than 10 MB."})
        consent.document = document
    consent.full_clean()
    if document is not None:
        # Write the file first, outside any transaction, under a random name (upload_to); if
        # the row cannot be inserted the file is removed again.
        consent.document.save(document.name, document, save=False)
    try:
        consent.save()
    except BaseException:
        if consent.document:
            delete_quietly([consent.document.name])
        raise
    return consent


def consent_revoke(*, consent: Consent, actor, reason: str) -> Consent:
    """End a consent now; an active face left without a valid one is retired at once."""
    reason = (reason or "").strip()
    if not reason:
        raise FaceActionRefused("Say why the consent is revoked.")
    with transaction.atomic():
        _lock(consent.face)
        changed = Consent.objects.filter(pk=consent.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_reason=reason
        )
        if changed == 0:
            raise FaceActionRefused(f"Consent {consent.pk} was already revoked.")
        consent.refresh_from_db()
        face = consent.face
        face.refresh_from_db()
        if face.status == S.ACTIVE and not selectors.has_valid_consent(face=face):
            face_retire(face=face, actor=actor, reason=f"Consent revoked: {reason}")
    log.info("consent %s of face %s revoked by %s", consent.pk, consent.face_id, actor)
    return consent


def ai_licence_terms(*, model_set: str, licences: dict[str, str]) -> str:
    parts = ", ".join(f"{name}: {licence}" for name, licence in sorted(licences.items()))
    return (
        f"Synthetic face generated with model set {model_set} ({parts or 'licence unknown'}). "
        "It depicts no real person; no model release is needed."
    )


def region_values(tags: Iterable[str]) -> list[str]:
    """Region tags from values or labels ("East Asia" or "east_asia"), for importers."""
    by_label = {label.lower(): value for value, label in Region.choices}
    out = []
    for tag in tags:
        tag = tag.strip()
        if not tag:
            continue
        value = tag if tag in Region.values else by_label.get(tag.lower())
        if value is None:
            raise ValidationError(f"Unknown region {tag!r}; use one of {', '.join(Region.values)}.")
        out.append(value)
    return out
