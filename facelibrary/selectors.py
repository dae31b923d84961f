"""Reads of the face library: the seller gallery and curator checks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import Consent, ConsentUse, Face, FaceReference, Region

#: gallery filters that match a Face field exactly (a list value means "any of these")
_EXACT_FILTERS = (
    "gender_presentation",
    "age_band",
    "skin_tone",
    "expression",
    "hair",
    "hair_color",
    "source",
)


# --- consent -------------------------------------------------------------------------------------


def valid_consents(*, on: date | None = None) -> QuerySet[Consent]:
    return Consent.objects.valid_on(on or timezone.localdate())


def _valid_consent_exists(on: date | None = None) -> Exists:
    return Exists(valid_consents(on=on).filter(face=OuterRef("pk")))


def has_valid_consent(*, face: Face, on: date | None = None) -> bool:
    return valid_consents(on=on).filter(face=face).exists()


def active_faces_without_valid_consent(*, on: date | None = None) -> QuerySet[Face]:
    return Face.objects.filter(status=Face.Status.ACTIVE).exclude(_valid_consent_exists(on))


def last_consent_end(*, face: Face) -> date | None:
    """The latest expiry date among the face's consents (for the retirement message)."""
    return (
        face.consents.filter(expires_on__isnull=False)
        .order_by("-expires_on")
        .values_list("expires_on", flat=True)
        .first()
    )


# --- consent at the moment of use ---------------------------------------------------------------

#: the uses generation checks: every job makes an image; a video is an extra that needs its own
USE_IMAGES = ConsentUse.CATALOG_IMAGES
USE_VIDEO = ConsentUse.CATALOG_VIDEO


def _in_force(consent: Consent, day: date) -> bool:
    """Started, not expired, not revoked (whatever it allows)."""
    return (
        consent.revoked_at is None
        and consent.valid_from <= day
        and (consent.expires_on is None or consent.expires_on >= day)
    )


def _unusable_reason(face: Face, consents: list[Consent], use: str, day: date) -> str | None:
    in_force = [consent for consent in consents if _in_force(consent, day)]
    covers_images = [consent for consent in in_force if consent.allows_catalog_images]
    if face.status != Face.Status.ACTIVE or not covers_images:
        if not covers_images and consents:
            why = "its consent ended"
        elif not covers_images:
            why = "it has no consent on file"
        elif face.status == Face.Status.RETIRED:
            why = "it was retired from the face library"
        else:
            why = "it is not released for use yet"
        return f"Face {face.code} is no longer available ({why})."
    if use != USE_IMAGES and not any(getattr(c, f"allows_{use}") for c in in_force):
        label = ConsentUse(use).label.lower()
        return f"Face {face.code} may not be used for {label} (its consent does not cover it)."
    return None


def unusable_faces(
    faces: Iterable[Face | int | None], *, use: str = USE_IMAGES, on: date | None = None
) -> dict[int, str]:
    """Faces that may not be used for ``use`` now: face id -> the reason, in a seller's words.

    A face may be used when it is active and has a consent in force (started, not expired, not
    revoked) that covers catalog images and, for another use (``USE_VIDEO``), one covering that
    use too. Status and consents are read from the database (2 queries, whatever the number of
    faces): a face instance held since the run was queued may be stale. Generation calls this
    when a run starts, is regenerated or retried, and when each job (and its video) runs.
    """
    ids = {face if isinstance(face, int) else face.pk for face in faces if face is not None}
    if not ids:
        return {}
    day = on or timezone.localdate()
    consents: dict[int, list[Consent]] = {face_id: [] for face_id in ids}
    for consent in Consent.objects.filter(face_id__in=ids):
        consents[consent.face_id].append(consent)
    found = {face.pk: face for face in Face.objects.filter(pk__in=ids).only("code", "status")}
    problems = {}
    for face_id in sorted(ids):
        face = found.get(face_id)
        if face is None:
            problems[face_id] = "This face no longer exists in the face library."
            continue
        reason = _unusable_reason(face, consents[face_id], use, day)
        if reason:
            problems[face_id] = reason
    return problems


def face_unusable_reason(
    face: Face | None, *, use: str = USE_IMAGES, on: date | None = None
) -> str | None:
    """Why ``face`` may not be used for ``use`` now (None: it may; no face: nothing to check)."""
    if face is None:
        return None
    return unusable_faces([face], use=use, on=on).get(face.pk)


def face_usable(face: Face, *, use: str = USE_IMAGES, on: date | None = None) -> bool:
    return face_unusable_reason(face, use=use, on=on) is None


# --- references ----------------------------------------------------------------------------------


def primary_reference(*, face: Face) -> FaceReference | None:
    return face.references.filter(is_primary=True).first()


def primary_reference_prefetch() -> Prefetch:
    """Prefetch each face's primary reference into ``face.primary_references`` (list of 0-1)."""
    return Prefetch(
        "references",
        queryset=FaceReference.objects.filter(is_primary=True).only(
            "id", "face_id", "thumbnail", "image", "is_primary", "embedding"
        ),
        to_attr="primary_references",
    )


def closest_other_face(
    *, embedding: list[float] | None, exclude_face: Face | None = None
) -> tuple[int, float] | None:
    """(face id, distance) of the nearest *other* face within the duplicate threshold.

    Every stored 128-d embedding is compared in numpy: a library of thousands of references is
    a few MB and a few ms; a vector index (pgvector) is the next step beyond that.
    """
    if embedding is None:
        return None
    from generation.inference.faces import DLIB_DUPLICATE_THRESHOLD, find_duplicates

    rows = FaceReference.objects.filter(embedding__isnull=False)
    if exclude_face is not None:
        rows = rows.exclude(face=exclude_face)
    candidates = [
        (face_id, vector)
        for face_id, vector in rows.values_list("face_id", "embedding")
        if vector and len(vector) == len(embedding)
    ]
    found = find_duplicates(embedding, candidates, threshold=DLIB_DUPLICATE_THRESHOLD)
    return found[0] if found else None


def reference_delete_problem(*, reference: FaceReference) -> str | None:
    """Why this reference may not be deleted now (None: it may)."""
    face = reference.face
    if face.status != Face.Status.ACTIVE or not reference.gate_passed:
        return None
    others = face.references.filter(gate_passed=True).exclude(pk=reference.pk)
    if not others.exists():
        return (
            f"This is the only passing photo of active face {face.code}; retire the face first "
            "or add another photo."
        )
    return None


# --- activation ----------------------------------------------------------------------------------


def face_activation_problems(*, face: Face, on: date | None = None) -> list[str]:
    """What stops ``face`` from being offered to sellers (empty: nothing)."""
    problems = []
    references = list(face.references.all())
    if not references:
        problems.append("It has no reference photo.")
    for ref in references:
        if ref.gate_pending:
            problems.append(
                f"Reference photo {ref.pk} is still being checked by the quality gate; "
                "reload the page in a moment."
            )
        elif not ref.gate_passed:
            reasons = " ".join(ref.failure_messages) or "It failed the quality gate."
            problems.append(f"Reference photo {ref.pk} failed the quality gate: {reasons}")
    passing = [ref for ref in references if ref.gate_passed]
    if passing and not any(ref.is_primary for ref in passing):
        problems.append("It has no primary reference photo; make a passing one primary.")
    if not has_valid_consent(face=face, on=on):
        problems.append(
            "It has no valid consent covering catalog images (missing, not started, expired "
            "or revoked)."
        )
    return problems


# --- seller gallery ------------------------------------------------------------------------------


def gallery_faces(*, filters: dict[str, Any]) -> QuerySet[Face]:
    """Faces a seller may pick: active with a valid consent today, filtered by attributes.

    ``filters`` keys: gender_presentation, age_band, skin_tone, expression, hair, hair_color,
    source (a value or a list of values), region (a Region value; any of a list), skin_tone_min /
    skin_tone_max, q (code contains). Empty values and unknown keys are ignored, so a form's
    ``cleaned_data`` can be passed as is. Each face carries its primary reference
    (``face.thumbnail_url`` needs no further query).
    """
    faces = Face.objects.filter(status=Face.Status.ACTIVE).filter(_valid_consent_exists())
    return (
        faces.filter(_attribute_filter(filters))
        .prefetch_related(primary_reference_prefetch())
        .order_by("code")
    )


def _attribute_filter(filters: dict[str, Any]) -> Q:
    query = Q()
    for name in _EXACT_FILTERS:
        values = _values(filters.get(name))
        if values:
            query &= Q(**{f"{name}__in": values})
    regions = [r for r in _values(filters.get("region")) if r in Region.values]
    if filters.get("region") and not regions:
        return Q(pk__in=[])  # an unknown region matches nothing, rather than everything
    if regions:
        query &= region_filter(regions)
    for key, lookup in (("skin_tone_min", "gte"), ("skin_tone_max", "lte")):
        if filters.get(key) not in (None, ""):
            query &= Q(**{f"skin_tone__{lookup}": int(filters[key])})
    if filters.get("q"):
        query &= Q(code__icontains=str(filters["q"]).strip())
    return query


def _values(value: Any) -> list[Any]:
    if value in (None, "", [], ()):
        return []
    items = list(value) if isinstance(value, list | tuple | set) else [value]
    return [item for item in items if item not in (None, "")]


def region_filter(regions: list[str]) -> Q:
    query = Q()
    for region in regions:
        if connection.vendor == "postgresql":
            query |= Q(region_tags__contains=[region])
        else:
            # SQLite (the embedded default) has no JSON containment; a tag is a quoted slug in
            # the stored JSON text, so the quoted value matches exactly that tag.
            query |= Q(region_tags__icontains=f'"{region}"')
    return query


# --- statistics ----------------------------------------------------------------------------------


def count_subquery(queryset: QuerySet, group_by: str) -> Coalesce:
    """A correlated COUNT(*) subquery (several joined COUNTs would multiply each other)."""
    counted = queryset.order_by().values(group_by).annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def with_curator_columns(faces: QuerySet[Face], *, on: date | None = None) -> QuerySet[Face]:
    """The admin list's curation columns in one query: references (those the gate is still
    checking, those that failed it), consent, duplicates.

    Usage and review counts come from generation (``generation.selectors.with_face_usage``).
    """
    refs = FaceReference.objects.filter(face=OuterRef("pk"))
    consent_until = (
        valid_consents(on=on)
        .filter(face=OuterRef("pk"))
        .order_by(F("expires_on").desc(nulls_first=True))  # no expiry beats any date
        .values("expires_on")[:1]
    )
    closest_duplicate = refs.filter(duplicate_of__isnull=False).order_by("duplicate_distance")
    checking = refs.filter(gate_status=FaceReference.GateStatus.PENDING)
    failing = refs.filter(gate_passed=False).exclude(gate_status=FaceReference.GateStatus.PENDING)
    return faces.annotate(
        reference_count=count_subquery(refs, "face"),
        checking_references=count_subquery(checking, "face"),
        failing_references=count_subquery(failing, "face"),
        consent_valid=_valid_consent_exists(on),
        consent_until=Subquery(consent_until),
        duplicate_face_id=Subquery(closest_duplicate.values("duplicate_of")[:1]),
        duplicate_face_code=Subquery(closest_duplicate.values("duplicate_of__code")[:1]),
    ).prefetch_related(primary_reference_prefetch())
