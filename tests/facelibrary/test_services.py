"""Status changes (CAS + events), consent and expiry, reference bookkeeping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from facelibrary import jobs, services
from facelibrary.models import Face, FaceEvent, FaceReference
from facelibrary.selectors import face_activation_problems
from tests.factories import UserFactory

from .factories import (
    ConsentFactory,
    DraftFaceFactory,
    FaceReferenceFactory,
    active_face,
    ready_face,
)

A, D, R = Face.Status.ACTIVE, Face.Status.DRAFT, Face.Status.RETIRED
pytestmark = pytest.mark.django_db


def test_activate_a_ready_face_writes_an_event():
    curator = UserFactory()
    face = ready_face()
    face = services.face_activate(face=face, actor=curator)
    assert face.status == A and face.status_changed_at is not None
    event = FaceEvent.objects.get(face=face)
    assert (event.from_status, event.to_status, event.actor) == (D, A, curator)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda f: None, "no reference photo"),
        (lambda f: FaceReferenceFactory(face=f, failing=True), "failed the quality gate"),
        (lambda f: FaceReferenceFactory(face=f), "no valid consent"),
    ],
    ids=["no-photo", "failing-photo", "no-consent"],
)
def test_activation_is_refused_with_the_reason(setup, reason):
    face = DraftFaceFactory()
    setup(face)
    with pytest.raises(services.FaceActionRefused) as refused:
        services.face_activate(face=face, actor=None)
    assert any(reason in text for text in refused.value.reasons), refused.value.reasons
    face.refresh_from_db()
    assert face.status == D and not face.events.exists()


def test_failing_photo_blocks_even_beside_a_passing_one():
    face = ready_face()
    FaceReferenceFactory(face=face, failing=True)
    problems = face_activation_problems(face=face)
    assert len(problems) == 1 and "Face is blurred" in problems[0]


@pytest.mark.parametrize(
    "consent",
    [
        {"expired": True},
        {"valid_from": timezone.localdate() + timedelta(days=3)},
        {"allows_catalog_images": False},
        {"revoked_at": timezone.now()},
    ],
    ids=["expired", "not-started", "other-uses", "revoked"],
)
def test_only_a_current_catalog_consent_counts(consent):
    face = DraftFaceFactory()
    FaceReferenceFactory(face=face)
    ConsentFactory(face=face, **consent)
    with pytest.raises(services.FaceActionRefused, match="no valid consent"):
        services.face_activate(face=face, actor=None)


def test_status_change_is_compare_and_swap():
    face = ready_face()
    stale = Face.objects.get(pk=face.pk)
    services.face_retire(face=face, actor=None, reason="Rejected by curator")
    # ``stale`` still says draft: activating it must not overwrite the retirement
    with pytest.raises(services.FaceStatusConflict):
        services.face_activate(face=stale, actor=None)
    face.refresh_from_db()
    assert face.status == R


def test_retire_needs_a_reason_and_is_not_repeated():
    face = active_face()
    with pytest.raises(services.FaceActionRefused, match="why"):
        services.face_retire(face=face, actor=None, reason="  ")
    services.face_retire(face=face, actor=None, reason="Licence ended")
    face.refresh_from_db()
    assert face.status == R and face.retired_reason == "Licence ended"
    with pytest.raises(services.FaceActionRefused, match="already retired"):
        services.face_retire(face=face, actor=None, reason="again")


def test_retired_face_can_come_back():
    face = active_face()
    services.face_retire(face=face, actor=None, reason="Paused")
    face = services.face_activate(face=face, actor=None)
    assert face.status == A and face.retired_reason == ""
    assert list(face.events.values_list("to_status", flat=True)) == [A, R]


def test_expired_consent_retires_the_face_automatically():
    current = active_face()
    lapsing = active_face()
    lapsing.consents.update(
        valid_from=timezone.localdate() - timedelta(days=400),
        expires_on=timezone.localdate() - timedelta(days=1),
    )
    draft = DraftFaceFactory()  # not active: left alone

    retired = jobs.retire_expired_consents()

    assert retired == [lapsing.pk]
    lapsing.refresh_from_db()
    assert lapsing.status == R
    assert lapsing.retired_reason.startswith("Consent expired on ")
    current.refresh_from_db()
    draft.refresh_from_db()
    assert (current.status, draft.status) == (A, D)
    assert jobs.retire_expired_consents() == []  # idempotent


def test_expiry_on_a_given_day():
    face = active_face()
    end = face.consents.get().expires_on
    assert services.retire_expired_consents(today=end) == []
    assert services.retire_expired_consents(today=end + timedelta(days=1)) == [face.pk]


def test_revoking_the_last_consent_retires_the_face():
    face = active_face()
    consent = face.consents.get()
    services.consent_revoke(consent=consent, actor=None, reason="Model asked to stop")
    face.refresh_from_db()
    assert face.status == R and "Model asked to stop" in face.retired_reason
    with pytest.raises(services.FaceActionRefused, match="already revoked"):
        services.consent_revoke(consent=consent, actor=None, reason="again")


def test_revoking_one_of_two_consents_keeps_the_face():
    face = active_face()
    ConsentFactory(face=face, expires_on=None)
    services.consent_revoke(consent=face.consents.first(), actor=None, reason="replaced")
    face.refresh_from_db()
    assert face.status == A


def test_consent_document_gets_a_random_name():
    face = DraftFaceFactory()
    document = SimpleUploadedFile("Jane Doe release.pdf", b"%PDF-1.4 signed", "application/pdf")
    consent = services.consent_add(
        face=face,
        licence_terms="Catalog only",
        expires_on=timezone.localdate() + timedelta(days=30),
        uses=["catalog_images"],
        document=document,
        actor=None,
    )
    assert consent.document.name.startswith("facelibrary/consents/")
    assert consent.document.name.endswith(".pdf") and "Jane" not in consent.document.name
    assert consent.allowed_uses == ["catalog_images"]


def test_consent_must_not_end_before_it_starts():
    with pytest.raises(ValidationError):
        services.consent_add(
            face=DraftFaceFactory(),
            licence_terms="x",
            valid_from=timezone.localdate(),
            expires_on=timezone.localdate() - timedelta(days=1),
            actor=None,
        )


def test_consent_document_type_is_checked():
    with pytest.raises(ValidationError):
        services.consent_add(
            face=DraftFaceFactory(),
            licence_terms="x",
            document=SimpleUploadedFile("run.exe", b"MZ"),
            actor=None,
        )


def test_last_passing_photo_of_an_active_face_cannot_be_deleted():
    face = active_face()
    ref = face.references.get()
    with pytest.raises(services.FaceActionRefused, match="only passing photo"):
        services.reference_delete(reference=ref, actor=None)
    assert FaceReference.objects.filter(pk=ref.pk).exists()


def test_deleting_the_primary_promotes_another_passing_photo():
    face = ready_face()
    first = face.references.get()
    failing = FaceReferenceFactory(face=face, failing=True)
    second = FaceReferenceFactory(face=face, is_primary=False)
    services.reference_delete(reference=first, actor=None)
    second.refresh_from_db()
    failing.refresh_from_db()
    assert second.is_primary and not failing.is_primary


def test_make_primary_only_for_passing_photos():
    face = ready_face()
    other = FaceReferenceFactory(face=face, is_primary=False)
    bad = FaceReferenceFactory(face=face, failing=True)
    services.reference_make_primary(reference=other, actor=None)
    assert list(face.references.filter(is_primary=True)) == [other]
    with pytest.raises(services.FaceActionRefused):
        services.reference_make_primary(reference=bad, actor=None)


def test_face_create_validates_attributes_and_makes_codes():
    face = services.face_create(
        source="ai_generated",
        attributes={"skin_tone": 7, "region_tags": ["south_asia"], "hair": "braids"},
        actor=None,
    )
    assert face.code.startswith("AI-") and face.status == D
    with pytest.raises(ValidationError):
        services.face_create(attributes={"skin_tone": 11}, actor=None)
    with pytest.raises(ValidationError):
        services.face_create(attributes={"region_tags": ["atlantis"]}, actor=None)
    with pytest.raises(ValidationError):
        services.face_create(attributes={"favourite_colour": "red"}, actor=None)
    with pytest.raises(ValidationError, match="taken"):
        services.face_create(code=face.code, actor=None)


def test_region_values_accept_labels():
    assert services.region_values(["East Asia", "europe", " "]) == ["east_asia", "europe"]
    with pytest.raises(ValidationError):
        services.region_values(["Narnia"])
