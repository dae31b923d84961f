"""Face library services: the only code that writes faces, references and consents.

Status changes go through ``FACES`` (a ``core.transitions.StateMachine``, like shoots and
assets): a compare-and-swap UPDATE on the status the caller saw, under a row lock on the face,
plus one ``FaceEvent`` in the same transaction. 0 rows means another curator or the expiry job
changed the face first, and we say so (``FaceStatusConflict``) instead of overwriting their
change.

Reference photos go through the quality gate (model inference, ~100 ms) and are written to
storage *before* any transaction is opened; only the row insert is transactional, and the files
are deleted again when it fails. A page request never runs the gate: ``reference_upload`` stores
the photo as "gate pending" and the ``analysis`` worker runs it (``facelibrary.jobs.
check_reference`` -> ``reference_check``); the import command and the face generator call
``reference_add``, which gates synchronously.
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

from core.files import delete_quietly, stored_files
from core.queues import ANALYSIS, enqueue_on_commit, renew_attempt
from core.transitions import (
    StateMachine,
    Transition,
    TransitionConflict,
    TransitionNotAllowed,
    table,
)
from generation.inference.errors import InferenceError, InvalidImageError

from . import selectors
from .gate import DecodedReference, decode_reference, gate_reference, same_person_check
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


#: what a curator reads when the gate job of a photo was lost too often
LOST_GATE = "The quality gate did not complete after {} attempts ({}). "
LOST_GATE += "Delete the photo and upload it again."


class FaceActionRefused(Exception):
    """The action is not allowed for this face now; ``reasons`` says why, for a curator."""

    def __init__(self, reasons: list[str] | str) -> None:
        self.reasons = [reasons] if isinstance(reasons, str) else list(reasons)
        super().__init__(" ".join(self.reasons))


class FaceStatusConflict(FaceActionRefused, TransitionConflict):
    """Someone else changed the face between our read and our write."""


TRANSITIONS: dict[str, Transition] = table(
    Face.Status,
    """
    activate   draft, retired   -> active
    retire     draft, active    -> retired
    """,
)

FACES = StateMachine(Face, FaceEvent, TRANSITIONS, touch=("status_changed_at", "updated_at"))


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


def _change_status(face: Face, action: str, *, actor, note: str, **fields: Any) -> Face:
    """Move ``face`` by ``action`` (``FACES``) from the status the caller saw; the caller holds
    the row lock. Refusals and conflicts come back as the curator-facing exceptions."""
    try:
        return FACES.apply(face, action, actor=actor, note=note, **fields)
    except TransitionConflict:
        current = Face.objects.filter(pk=face.pk).values_list("status", flat=True).first()
        raise FaceStatusConflict(
            f"Face {face.code} changed meanwhile (now {current}); nothing was applied."
        ) from None
    except TransitionNotAllowed as exc:
        raise FaceActionRefused(str(exc)) from None


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
    return _change_status(face, "activate", actor=actor, note="Activated", retired_reason="")


@transaction.atomic
def face_retire(*, face: Face, actor, reason: str) -> Face:
    """draft | active -> retired. The face leaves the gallery; past generations keep it."""
    reason = (reason or "").strip()
    if not reason:
        raise FaceActionRefused("Say why the face is retired.")
    _lock(face)
    if face.status == S.RETIRED:
        raise FaceActionRefused(f"Face {face.code} is already retired.")
    return _change_status(face, "retire", actor=actor, note=reason, retired_reason=reason)


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
    checks, passed = _verdict(face, prepared)
    duplicate = selectors.closest_other_face(embedding=prepared.embedding, exclude_face=face)

    with stored_files() as files:  # a failed thumbnail write or insert removes the image too
        image = files.store("facelibrary/references", prepared.png, "png")
        thumbnail = files.store("facelibrary/thumbnails", prepared.thumbnail_jpeg, "jpg")
        reference = _record_reference(
            face, prepared, checks, passed, duplicate, (image, thumbnail), actor
        )
    if duplicate is not None:
        log.info("reference %s of face %s looks like face %s", reference.pk, face.pk, duplicate)
    return reference


def prepare(data: bytes) -> PreparedReference:
    """Decode and gate ``data`` (slow: model inference); raises InvalidReference."""
    return gate_reference(_decode(data))


def _decode(data: bytes) -> DecodedReference:
    try:
        return decode_reference(data)
    except InvalidImageError as exc:
        raise InvalidReference(str(exc)) from exc


def _verdict(face: Face, prepared: PreparedReference) -> tuple[list[dict], bool]:
    """The gate's checks, plus "same person as the primary reference" for a further photo."""
    checks = [check.to_dict() for check in prepared.report.checks]
    primary = selectors.primary_reference(face=face)
    if primary is not None:
        same_person = same_person_check(prepared.embedding, primary.embedding)
        if same_person is not None:
            checks.append(same_person.to_dict())
    return checks, all(check["passed"] for check in checks)


def _verdict_fields(
    prepared: PreparedReference,
    checks: list[dict],
    passed: bool,
    duplicate: tuple[int, float] | None,
) -> dict:
    """The gate's verdict and measurements, as the reference row stores them."""
    report = prepared.report.to_dict()
    return {
        "gate_passed": passed,
        "gate_checks": checks,
        "face_box": report["face_box"],
        "yaw": report["yaw"],
        "pitch": report["pitch"],
        "embedding": prepared.embedding,
        "embedding_512": prepared.embedding_512,
        "duplicate_of_id": duplicate[0] if duplicate else None,
        "duplicate_distance": duplicate[1] if duplicate else None,
    }


@transaction.atomic
def _record_reference(
    face: Face,
    prepared: PreparedReference,
    checks: list[dict],
    passed: bool,
    duplicate: tuple[int, float] | None,
    names: tuple[str, str],
    actor,
) -> FaceReference:
    _lock(face)  # two uploads at once must not both become the primary reference
    make_primary = passed and not face.references.filter(is_primary=True).exists()
    return FaceReference.objects.create(
        face=face,
        image=names[0],
        thumbnail=names[1],
        width=prepared.width,
        height=prepared.height,
        source_sha256=prepared.source_sha256,
        is_primary=make_primary,
        created_by=actor,
        **_verdict_fields(prepared, checks, passed, duplicate),
    )


# --- references checked by the analysis worker ----------------------------------------------------

GATE_DID_NOT_RUN = "gate"


def reference_upload(*, face: Face, actor, upload: UploadedFile) -> FaceReference:
    """Store an uploaded reference photo now and have the ``analysis`` worker gate it.

    For page requests (the curator's admin): decoding and storing need PIL only, while the gate
    is model inference that the web process never loads. Until the worker has run the gate the
    reference is "gate pending": not passed, so the face cannot be activated, and never primary.
    Raises InvalidReference when the file is not a usable image (nothing is stored).
    """
    decoded = _decode(_read_upload(upload))
    with stored_files() as files:  # a failed write or insert removes what was written
        image = files.store("facelibrary/references", decoded.png, "png")
        thumbnail = files.store("facelibrary/thumbnails", decoded.placeholder_thumbnail(), "jpg")
        with transaction.atomic():
            reference = FaceReference.objects.create(
                face=face,
                image=image,
                thumbnail=thumbnail,
                width=decoded.image.width,
                height=decoded.image.height,
                source_sha256=decoded.source_sha256,
                gate_status=FaceReference.GateStatus.PENDING,
                gate_queued_at=timezone.now(),
                created_by=actor,
            )
            _enqueue_gate(reference)
    return reference


def _enqueue_gate(reference: FaceReference) -> None:
    enqueue_on_commit(
        ANALYSIS, "facelibrary.jobs.check_reference", reference.pk, job_id=reference.gate_job_id
    )


class _NoLongerPending(Exception):
    """The reference was deleted or checked by another run meanwhile."""


def reference_check(*, reference_id: int) -> FaceReference | None:
    """Run the gate on a pending reference (the ``analysis`` worker's job body) and record its
    verdict, the embeddings and a thumbnail centred on the face; the first passing photo of a
    face becomes its primary one. Returns None when the reference is no longer pending."""
    reference = FaceReference.objects.select_related("face").filter(pk=reference_id).first()
    if reference is None or reference.gate_status != FaceReference.GateStatus.PENDING:
        log.info("reference %s is no longer waiting for the gate; skipped", reference_id)
        return None
    try:
        with reference.image.open("rb") as handle:
            stored = handle.read()
        decoded = DecodedReference.from_stored_png(stored, reference.source_sha256)
        prepared = gate_reference(decoded)
        face = reference.face
        checks, passed = _verdict(face, prepared)
        duplicate = selectors.closest_other_face(embedding=prepared.embedding, exclude_face=face)
        with stored_files() as files:  # a failed update removes the new thumbnail again
            thumbnail = files.store("facelibrary/thumbnails", prepared.thumbnail_jpeg, "jpg")
            _record_check(reference, prepared, checks, passed, duplicate, thumbnail)
    except _NoLongerPending:
        log.info("reference %s was deleted or checked meanwhile", reference_id)
        return None
    except InferenceError as exc:
        reference_gate_failed(reference=reference, error=f"The quality gate could not run: {exc}")
        return None
    except Exception as exc:
        error = f"The quality gate failed unexpectedly ({type(exc).__name__}). Upload it again."
        reference_gate_failed(reference=reference, error=error)
        raise
    reference.refresh_from_db()
    return reference


@transaction.atomic
def _record_check(
    reference: FaceReference,
    prepared: PreparedReference,
    checks: list[dict],
    passed: bool,
    duplicate: tuple[int, float] | None,
    thumbnail: str,
) -> None:
    _lock(reference.face)  # serialised with uploads, deletions and primary changes
    make_primary = passed and not reference.face.references.filter(is_primary=True).exists()
    checked = FaceReference.objects.filter(
        pk=reference.pk, gate_status=FaceReference.GateStatus.PENDING
    ).update(
        thumbnail=thumbnail,
        gate_status=FaceReference.GateStatus.CHECKED,
        is_primary=make_primary,
        **_verdict_fields(prepared, checks, passed, duplicate),
    )
    if not checked:
        raise _NoLongerPending
    placeholder = reference.thumbnail.name
    if placeholder:
        transaction.on_commit(lambda: delete_quietly([placeholder]))


def reference_gate_lost(reference: FaceReference, *, reason: str) -> bool:
    """Its gate job was lost once too often (reconciler): the curator is told to upload again."""
    attempts = reference.gate_attempts
    return reference_gate_failed(reference=reference, error=LOST_GATE.format(attempts, reason))


def reference_gate_failed(*, reference: FaceReference, error: str) -> bool:
    """The gate could not judge a pending reference: it stays not passed, with ``error`` as the
    reason the curator sees (its one failed check). False when it was no longer pending."""
    check = {
        "name": GATE_DID_NOT_RUN,
        "value": None,
        "threshold": None,
        "passed": False,
        "message": error,
    }
    return bool(
        FaceReference.objects.filter(
            pk=reference.pk, gate_status=FaceReference.GateStatus.PENDING
        ).update(gate_status=FaceReference.GateStatus.ERROR, gate_passed=False, gate_checks=[check])
    )


def reference_reenqueue_gate(reference: FaceReference, *, note: str) -> bool:
    """Give a pending reference whose gate job was lost a new attempt (reconciler)."""
    pending = FaceReference.GateStatus.PENDING
    renewed = renew_attempt(
        reference, attempts="gate_attempts", queued_at="gate_queued_at", gate_status=pending
    )
    if renewed:
        log.info("reference %s: %s (attempt %s)", reference.pk, note, reference.gate_attempts)
        _enqueue_gate(reference)
    return renewed


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
    with stored_files() as files:
        if document is not None:
            # Write the file first, outside any transaction, under a random name (upload_to);
            # if the row cannot be inserted the file is removed again.
            consent.document.save(document.name, document, save=False)
            files.track(consent.document.name)
        consent.save()
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
