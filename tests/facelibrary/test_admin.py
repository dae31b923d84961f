"""The face library admin: who may enter, bulk actions and their refusals, uploads, consents."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from core.queues import get_queue
from core.roles import FACE_CURATORS
from facelibrary.jobs import check_reference
from facelibrary.models import Consent, Face, FaceReference
from tests.factories import SellerFactory, UserFactory

from .factories import (
    ConsentFactory,
    DraftFaceFactory,
    FaceReferenceFactory,
    active_face,
    ready_face,
)

pytestmark = pytest.mark.django_db
FACES = reverse("admin:facelibrary_face_changelist")


@pytest.fixture
def curator(client):
    user = UserFactory(is_staff=True, groups=[FACE_CURATORS])
    client.force_login(user)
    return user


def change_url(face: Face) -> str:
    return reverse("admin:facelibrary_face_change", args=[face.pk])


def texts(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- who may enter -------------------------------------------------------------------------------


def test_seller_is_sent_to_the_admin_login(client):
    client.force_login(SellerFactory().user)
    for url in (FACES, reverse("admin:facelibrary_consent_changelist")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_anonymous_is_sent_to_the_admin_login(client):
    response = client.get(FACES)
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_staff_without_curator_permissions_is_refused(client):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(FACES).status_code == 403
    assert client.get(change_url(DraftFaceFactory())).status_code == 403


def test_curator_group_has_the_face_permissions(curator):
    assert curator.has_perms(
        ["facelibrary.change_face", "facelibrary.add_facereference", "facelibrary.add_consent"]
    )


# --- the list ------------------------------------------------------------------------------------


def test_list_shows_thumbnails_and_curator_columns(client, curator):
    face = active_face(code="SHOWN")
    failing = DraftFaceFactory(code="FAILING")
    FaceReferenceFactory(face=failing, failing=True)
    response = client.get(FACES)
    assert response.status_code == 200
    html = response.content.decode()
    assert face.primary_reference.thumbnail.url in html
    assert 'alt="Face SHOWN"' in html
    assert "✓ until" in html  # consent column
    assert "Face is blurred" in html  # why the failing face fails, in the list
    assert "✗ none valid" in html


def test_list_query_count_does_not_grow_with_rows(client, curator):
    def queries_for_list() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert client.get(FACES).status_code == 200
        return len(captured)

    ready_face()
    few = queries_for_list()
    for _ in range(6):
        active_face()
        DraftFaceFactory()
    assert queries_for_list() == few


def test_duplicate_column_links_the_other_face(client, curator):
    original = active_face(code="ORIGINAL")
    copy = DraftFaceFactory(code="COPY")
    FaceReferenceFactory(face=copy, duplicate_of=original, duplicate_distance=0.12)
    html = client.get(f"{FACES}?duplicate=yes").content.decode()
    assert f'<a href="{change_url(original)}">ORIGINAL</a>' in html


@pytest.mark.parametrize(
    "query",
    [
        "status=active",
        "source__exact=ai_generated",
        "gender_presentation__exact=feminine",
        "age_band__exact=25-34",
        "skin_tone__exact=5",
        "region=europe",
        "expression__exact=neutral",
        "hair__exact=long",
        "hair_color__exact=brown",
        "gate=passed",
        "gate=failing",
        "gate=checking",
        "gate=none",
        "consent=valid",
        "consent=expiring",
        "consent=invalid",
        "duplicate=yes",
        "q=F0",
        "o=-9",
        "o=7",
    ],
)
def test_every_filter_works(client, curator, query):
    ready_face()
    active_face()
    response = client.get(f"{FACES}?{query}")
    assert response.status_code == 200  # an invalid filter would redirect to ?e=1


def test_region_filter_selects(client, curator):
    europe = active_face(region_tags=["europe"])
    asia = active_face(region_tags=["east_asia"])
    listed = client.get(f"{FACES}?region=east_asia").context["cl"].result_list
    assert [f.pk for f in listed] == [asia.pk] and europe.pk not in [f.pk for f in listed]


# --- bulk actions --------------------------------------------------------------------------------


def act(client, action: str, faces, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [f.pk for f in faces], **extra}
    return client.post(FACES, data, follow=True)


def test_bulk_activate_activates_ready_faces_and_says_why_others_are_refused(client, curator):
    ready = ready_face(code="READY")
    failing = DraftFaceFactory(code="FAILS")
    FaceReferenceFactory(face=failing, failing=True)
    ConsentFactory(face=failing)
    unconsented = DraftFaceFactory(code="NOCONSENT")
    FaceReferenceFactory(face=unconsented)

    response = act(client, "activate_faces", [ready, failing, unconsented])

    statuses = dict(Face.objects.values_list("code", "status"))
    assert statuses == {"READY": "active", "FAILS": "draft", "NOCONSENT": "draft"}
    messages = " ".join(texts(response))
    assert "1 face(s) activated: READY" in messages
    assert "Face FAILS was not activated" in messages and "Face is blurred" in messages
    assert "Face NOCONSENT was not activated" in messages and "no valid consent" in messages


def test_bulk_retire_asks_for_a_reason_first(client, curator):
    faces = [active_face(), active_face()]
    confirm = act(client, "retire_faces", faces)
    assert confirm.status_code == 200
    assert b"Retire faces" in confirm.content and b'name="reason"' in confirm.content
    assert Face.objects.filter(status="active").count() == 2

    empty = act(client, "retire_faces", faces, apply="yes", reason="")
    assert b"This field is required" in empty.content
    assert Face.objects.filter(status="active").count() == 2

    done = act(client, "retire_faces", faces, apply="yes", reason="Contract ended")
    assert "2 face(s) retired" in " ".join(texts(done))
    assert set(Face.objects.values_list("retired_reason", flat=True)) == {"Contract ended"}


def test_retiring_an_already_retired_face_is_refused_with_a_reason(client, curator):
    face = DraftFaceFactory()
    Face.objects.filter(pk=face.pk).update(status=Face.Status.RETIRED)
    response = act(client, "retire_faces", [face], apply="yes", reason="again")
    assert "is already retired" in " ".join(texts(response))


def test_seller_cannot_run_actions(client):
    face = ready_face()
    client.force_login(SellerFactory().user)
    client.post(FACES, {"action": "activate_faces", ACTION_CHECKBOX_NAME: [face.pk]})
    face.refresh_from_db()
    assert face.status == Face.Status.DRAFT


# --- the face page: uploads (gated by the analysis worker), consents, reasons --------------------


def inline_data(response) -> dict:
    """Management forms and existing rows of every inline on a change page."""
    data = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name in formset.management_form.fields:
            data[f"{formset.prefix}-{name}"] = formset.management_form[name].value()
        for form in formset.initial_forms:
            data[f"{form.prefix}-id"] = form.instance.pk
            data[f"{form.prefix}-face"] = form.instance.face_id
    return data


def face_fields(face: Face) -> dict:
    return {
        "code": face.code,
        "source": face.source,
        "gender_presentation": face.gender_presentation,
        "age_band": face.age_band,
        "skin_tone": face.skin_tone or "",
        "region_tags": face.region_tags,
        "expression": face.expression,
        "hair": face.hair,
        "hair_color": face.hair_color,
        "notes": face.notes,
    }


@pytest.fixture
def rq_mode(settings, redis_conn):
    settings.QUEUE_MODE = "rq"
    return redis_conn


def test_uploaded_photos_are_checked_by_the_worker_and_the_page_shows_the_result(
    client, curator, face_bytes, garment_bytes, rq_mode, django_capture_on_commit_callbacks
):
    face = DraftFaceFactory()
    page = client.get(change_url(face))
    assert "It has no reference photo." in page.content.decode()
    data = {
        **face_fields(face),
        **inline_data(page),
        "new_references": [
            SimpleUploadedFile("portrait.png", face_bytes(5), "image/png"),
            SimpleUploadedFile("dress.jpg", garment_bytes, "image/jpeg"),
            SimpleUploadedFile("notes.txt", b"hello", "text/plain"),
        ],
        "_continue": "1",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(change_url(face), data, follow=True)
    checking = "added; the quality gate is checking it (reload the page for the result)."
    messages = texts(response)
    assert f"portrait.png: {checking}" in messages and f"dress.jpg: {checking}" in messages
    assert any(m.startswith("notes.txt: not added.") for m in messages)
    refs = list(face.references.order_by("id"))
    assert [r.gate_status for r in refs] == ["pending", "pending"]
    assert not any(r.gate_passed or r.is_primary for r in refs)
    assert get_queue("analysis").job_ids == [r.gate_job_id for r in refs]  # the gate's jobs
    html = response.content.decode()
    assert "Checking…" in html and "is still being checked by the quality gate" in html

    for ref in refs:  # what the analysis worker does with them
        check_reference(ref.pk)
    refs = list(face.references.order_by("id"))
    assert [r.gate_passed for r in refs] == [True, False]
    assert refs[0].is_primary and refs[0].created_by == curator
    html = client.get(change_url(face)).content.decode()  # the curator reloads the face page
    assert "✓ passed" in html and "Checking…" not in html
    assert "✗ failed" in html and "No face found" in html
    assert "failed the quality gate" in html  # the activation check lists it


def test_new_face_with_photo_and_consent_can_be_activated_once_checked(
    client, curator, face_bytes, rq_mode, django_capture_on_commit_callbacks
):
    add_url = reverse("admin:facelibrary_face_add")
    page = client.get(add_url)
    data = {
        "code": "NEW-1",
        "source": "licensed_model",
        "gender_presentation": "masculine",
        "age_band": "35-44",
        "skin_tone": "7",
        "region_tags": ["sub_saharan_africa"],
        "expression": "neutral",
        "hair": "short",
        "hair_color": "black",
        "notes": "",
        **inline_data(page),
        "new_references": [SimpleUploadedFile("a.jpg", face_bytes(9), "image/jpeg")],
        "consents-2-TOTAL_FORMS": "1",
        "consents-2-0-licence_terms": "Model release, catalog use, 2 years",
        "consents-2-0-valid_from": timezone.localdate().isoformat(),
        "consents-2-0-expires_on": (timezone.localdate() + timedelta(days=730)).isoformat(),
        "consents-2-0-allows_catalog_images": "on",
        "consents-2-0-document": SimpleUploadedFile("signed.pdf", b"%PDF-1.4", "application/pdf"),
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(add_url, data, follow=True)
    assert response.status_code == 200, response.content[:500]
    face = Face.objects.get(code="NEW-1")
    assert face.created_by == curator and face.region_tags == ["sub_saharan_africa"]
    consent = Consent.objects.get(face=face)
    assert consent.document.name.startswith("facelibrary/consents/")
    reference = face.references.get()

    response = act(client, "activate_faces", [face])  # still being checked: refused
    assert any("still being checked" in m for m in texts(response))
    face.refresh_from_db()
    assert face.status == Face.Status.DRAFT

    check_reference(reference.pk)
    assert face.references.get().gate_passed
    act(client, "activate_faces", [face])
    face.refresh_from_db()
    assert face.status == Face.Status.ACTIVE


def test_deleting_the_only_passing_photo_of_an_active_face_is_refused(client, curator):
    face = active_face()
    page = client.get(change_url(face))
    data = {**face_fields(face), **inline_data(page), "references-0-DELETE": "on"}
    response = client.post(change_url(face), data)
    assert response.status_code == 200  # the form comes back with the error
    assert "only passing photo of active face" in response.content.decode()
    assert face.references.count() == 1


def test_deleting_a_failing_photo_through_the_page(client, curator):
    face = ready_face()
    bad = FaceReferenceFactory(face=face, failing=True)
    page = client.get(change_url(face))
    data = {**face_fields(face), **inline_data(page)}
    index = next(k for k, v in data.items() if k.endswith("-id") and v == bad.pk)
    data[index.replace("-id", "-DELETE")] = "on"
    client.post(change_url(face), data)
    assert list(face.references.all()) == [face.primary_reference]


def test_status_is_not_editable_on_the_page(client, curator):
    face = ready_face()
    page = client.get(change_url(face))
    data = {**face_fields(face), **inline_data(page), "status": "active"}
    client.post(change_url(face), data)
    face.refresh_from_db()
    assert face.status == Face.Status.DRAFT


# --- consents and references ---------------------------------------------------------------------


def test_revoking_a_consent_in_admin_retires_the_face(client, curator):
    face = active_face()
    consent = face.consents.get()
    url = reverse("admin:facelibrary_consent_changelist")
    data = {"action": "revoke", ACTION_CHECKBOX_NAME: [consent.pk]}
    assert b'name="reason"' in client.post(url, data).content
    response = client.post(url, {**data, "apply": "yes", "reason": "Withdrawn"}, follow=True)
    assert any("revoked" in m for m in texts(response))
    face.refresh_from_db()
    assert face.status == Face.Status.RETIRED
    assert client.get(reverse("admin:facelibrary_consent_add")).status_code == 403


def test_reference_page_shows_every_check(client, curator):
    ref = FaceReferenceFactory(failing=True)
    url = reverse("admin:facelibrary_facereference_change", args=[ref.pk])
    html = client.get(url).content.decode()
    assert "sharpness" in html and "✗ FAIL" in html and "✓ pass" in html
    listing = client.get(reverse("admin:facelibrary_facereference_changelist")).content.decode()
    assert "Face is blurred" in listing


def test_make_primary_action(client, curator):
    face = ready_face()
    other = FaceReferenceFactory(face=face, is_primary=False)
    url = reverse("admin:facelibrary_facereference_changelist")
    client.post(url, {"action": "make_primary", ACTION_CHECKBOX_NAME: [other.pk]})
    assert FaceReference.objects.get(face=face, is_primary=True) == other
