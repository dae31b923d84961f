"""The seller gallery selector and the per-face statistics."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from facelibrary.models import Face
from facelibrary.selectors import gallery_faces, with_curator_columns
from generation.models import Asset, GenerationJob, GenerationRun
from generation.selectors import face_stats, with_face_usage
from tests.factories import ShootFactory

from .factories import ConsentFactory, DraftFaceFactory, FaceReferenceFactory, active_face, look

pytestmark = pytest.mark.django_db


def codes(queryset) -> list[str]:
    return [face.code for face in queryset]


def test_gallery_shows_only_active_faces_with_valid_consent():
    shown = active_face(code="OK")
    active_face(code="EXPIRED").consents.update(
        valid_from=timezone.localdate() - timedelta(days=90),
        expires_on=timezone.localdate() - timedelta(days=1),
    )
    active_face(code="REVOKED").consents.update(revoked_at=timezone.now())
    active_face(code="ADS-ONLY").consents.update(allows_catalog_images=False)
    no_consent = active_face(code="NONE")
    no_consent.consents.all().delete()
    draft = DraftFaceFactory(code="DRAFT")
    ConsentFactory(face=draft)
    retired = active_face(code="RETIRED")
    Face.objects.filter(pk=retired.pk).update(status=Face.Status.RETIRED)

    assert codes(gallery_faces(filters={})) == [shown.code]


def test_a_face_leaves_the_gallery_the_day_after_its_consent_ends():
    face = active_face()
    face.consents.update(expires_on=timezone.localdate())
    assert codes(gallery_faces(filters={})) == [face.code]  # valid through its last day
    face.consents.update(expires_on=timezone.localdate() - timedelta(days=1))
    assert codes(gallery_faces(filters={})) == []  # before the expiry job even ran


@pytest.fixture
def library():
    return {
        "A": active_face(
            code="A", **look("feminine", "18-24", 2, ["europe"], "smiling", "long", "blonde")
        ),
        "B": active_face(
            code="B",
            source="ai_generated",
            **look(
                "masculine",
                "35-44",
                8,
                ["sub_saharan_africa", "europe"],
                "neutral",
                "short",
                "black",
            ),
        ),
        "C": active_face(
            code="C", **look("androgynous", "25-34", 5, ["south_asia"], "serious", "covered", "")
        ),
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["A", "B", "C"]),
        ({"gender_presentation": "masculine"}, ["B"]),
        ({"age_band": "25-34"}, ["C"]),
        ({"skin_tone": 2}, ["A"]),
        ({"skin_tone": [5, 8]}, ["B", "C"]),
        ({"skin_tone_min": 4, "skin_tone_max": 6}, ["C"]),
        ({"region": "europe"}, ["A", "B"]),
        ({"region": ["south_asia", "sub_saharan_africa"]}, ["B", "C"]),
        ({"region": "atlantis"}, []),
        ({"expression": "serious"}, ["C"]),
        ({"hair": "covered"}, ["C"]),
        ({"hair_color": "blonde"}, ["A"]),
        ({"source": "ai_generated"}, ["B"]),
        ({"q": "b"}, ["B"]),
        ({"gender_presentation": "feminine", "region": "europe", "page": "2"}, ["A"]),
        ({"gender_presentation": "", "hair": None}, ["A", "B", "C"]),
    ],
)
def test_gallery_filters_on_every_attribute(library, filters, expected):
    assert codes(gallery_faces(filters=filters)) == expected


def test_gallery_query_count_does_not_grow_with_faces(django_assert_num_queries, library):
    with django_assert_num_queries(2):  # faces + their primary reference (thumbnails)
        faces = list(gallery_faces(filters={}))
        urls = [face.thumbnail_url for face in faces]
    assert len(urls) == 3 and all(url.startswith("/media/") for url in urls)
    for _ in range(5):
        active_face()
    with django_assert_num_queries(2):
        assert len([face.thumbnail_url for face in gallery_faces(filters={})]) == 8


def _job(face, run, status=GenerationJob.Status.SUCCEEDED) -> GenerationJob:
    return GenerationJob.objects.create(run=run, face=face, seed=1, status=status)


def _asset(job, status, kind=Asset.Kind.IMAGE) -> Asset:
    return Asset.objects.create(
        job=job, kind=kind, file="assets/x.png", checksum="0" * 64, status=status
    )


def test_face_stats_count_runs_and_reviews():
    used, unused = active_face(), active_face()
    shoot = ShootFactory()
    run1 = GenerationRun.objects.create(shoot=shoot, status=GenerationRun.Status.SUCCEEDED)
    run2 = GenerationRun.objects.create(shoot=shoot, status=GenerationRun.Status.SUCCEEDED)
    jobs = [_job(used, run1), _job(used, run1), _job(used, run2), _job(used, run2)]
    _asset(jobs[0], Asset.Status.QA_APPROVED)
    _asset(jobs[0], Asset.Status.QA_APPROVED, kind=Asset.Kind.VIDEO)  # videos do not count
    _asset(jobs[1], Asset.Status.SELLER_REJECTED)
    _asset(jobs[2], Asset.Status.PUBLISHED)
    _asset(jobs[3], Asset.Status.GENERATED)  # not reviewed yet

    stats = face_stats()
    assert unused.pk not in stats
    s = stats[used.pk]
    assert (s.usage, s.images, s.approved, s.rejected) == (2, 4, 2, 1)
    assert s.approval_rate == pytest.approx(2 / 3)
    assert face_stats(face_ids=[unused.pk]) == {}

    annotated = with_face_usage(Face.objects.filter(pk=used.pk)).get()
    assert (annotated.usage_count, annotated.images_approved, annotated.images_rejected) == (
        2,
        2,
        1,
    )


def test_curator_columns_show_gate_consent_and_duplicates():
    ready = active_face()
    failing = DraftFaceFactory()
    FaceReferenceFactory(face=failing, failing=True)
    FaceReferenceFactory(face=failing, is_primary=True, duplicate_of=ready, duplicate_distance=0.2)
    ConsentFactory(face=failing, expires_on=None)
    rows = {face.pk: face for face in with_curator_columns(Face.objects.all())}
    assert (rows[ready.pk].reference_count, rows[ready.pk].failing_references) == (1, 0)
    assert rows[ready.pk].consent_valid and rows[ready.pk].consent_until is not None
    assert rows[ready.pk].duplicate_face_id is None
    assert (rows[failing.pk].reference_count, rows[failing.pk].failing_references) == (2, 1)
    assert rows[failing.pk].consent_valid and rows[failing.pk].consent_until is None
    assert rows[failing.pk].duplicate_face_id == ready.pk
    # a photo the gate is still checking has not failed: it is counted apart
    FaceReferenceFactory(
        face=failing, is_primary=False, gate_passed=False, gate_status="pending", gate_checks=[]
    )
    row = with_curator_columns(Face.objects.filter(pk=failing.pk)).get()
    assert (row.reference_count, row.failing_references, row.checking_references) == (3, 1, 1)
