"""reference_add on real photos: the gate's verdict, what is stored, duplicates; and the
admin's uploads, stored as "gate pending" and gated by the analysis worker (reference_check)."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from facelibrary import gate, selectors, services
from facelibrary.models import FaceReference
from generation.inference import faces
from generation.inference.errors import ModelMissingError
from generation.inference.faces import DLIB_DUPLICATE_THRESHOLD

from .factories import ConsentFactory, DraftFaceFactory

pytestmark = pytest.mark.django_db


def add(data: bytes, face=None) -> FaceReference:
    return services.reference_add(face=face or DraftFaceFactory(), image_bytes=data, actor=None)


def failed_names(ref: FaceReference) -> set[str]:
    return {check["name"] for check in ref.failed_checks}


def test_each_sample_face_passes_and_everything_is_stored(face_bytes):
    for index in range(1, 11):
        ref = add(face_bytes(index))
        assert ref.gate_passed, (index, ref.failure_messages)
        assert ref.is_primary  # the first passing photo of a face becomes its primary
        names = [check["name"] for check in ref.gate_checks]
        assert names[:3] == ["face_count", "face_size", "upright"]
        assert {"yaw", "pitch", "sharpness", "brightness", "clipping"} <= set(names)
        for check in ref.gate_checks:  # each check with its value and its limit
            assert isinstance(check["value"], float)
            assert check["threshold"] is not None and check["message"]
        assert len(ref.embedding) == 128
        assert ref.embedding_512 is None  # no insightface weights in the test model root
        assert ref.face_box and ref.yaw is not None and ref.pitch is not None
        assert default_storage.exists(ref.image.name)
        assert default_storage.exists(ref.thumbnail.name)
        assert ref.duplicate_of is None  # ten different people


def test_stored_name_is_never_the_uploaded_file_name(face_bytes):
    upload = SimpleUploadedFile("Jane Doe passport.png", face_bytes(3), content_type="image/png")
    ref = services.reference_add(face=DraftFaceFactory(), upload=upload, actor=None)
    for name in (ref.image.name, ref.thumbnail.name):
        assert "Jane" not in name and "passport" not in name
        assert name.startswith("facelibrary/")
    assert (ref.width, ref.height) == (512, 512)


def test_two_people_fail_on_face_count(two_people_bytes):
    ref = add(two_people_bytes)
    assert not ref.gate_passed and not ref.is_primary
    assert failed_names(ref) == {"face_count"}
    assert ref.failure_messages == [
        "2 faces found; a reference photo must show exactly one person."
    ]
    assert ref.embedding is None


def test_garment_photo_fails_with_no_face(garment_bytes):
    ref = add(garment_bytes)
    assert failed_names(ref) == {"face_count"}
    assert ref.failure_messages[0].startswith("No face found")


def test_tiny_face_fails_on_size(tiny_face_bytes):
    ref = add(tiny_face_bytes)
    assert failed_names(ref) == {"face_size"}
    check = next(c for c in ref.gate_checks if c["name"] == "face_size")
    assert check["value"] < check["threshold"] == 128
    assert "at least 128 px" in check["message"]


def test_blurred_copy_fails_on_sharpness(blurred_bytes):
    ref = add(blurred_bytes)
    assert failed_names(ref) == {"sharpness"}
    assert "blurred" in ref.failure_messages[0]


@pytest.mark.parametrize("copy", ["mirrored_bytes", "recrop_bytes"])
def test_same_person_as_another_face_is_flagged(request, face_bytes, copy):
    original = add(face_bytes(1))
    ref = add(request.getfixturevalue(copy))
    assert ref.gate_passed  # a duplicate is a flag for the curator, not a gate failure
    assert ref.duplicate_of_id == original.face_id
    assert ref.duplicate_distance < DLIB_DUPLICATE_THRESHOLD


def test_different_people_are_not_flagged(face_bytes):
    refs = [add(face_bytes(index)) for index in (1, 2, 5, 9, 10)]
    assert [ref.duplicate_of_id for ref in refs] == [None] * 5


def test_second_photo_of_the_same_face_is_no_duplicate(face_bytes, mirrored_bytes):
    face = DraftFaceFactory()
    add(face_bytes(1), face)
    second = add(mirrored_bytes, face)
    assert second.gate_passed and not second.is_primary
    assert second.duplicate_of is None  # only *other* faces count
    same = next(c for c in second.gate_checks if c["name"] == "same_person")
    assert same["passed"]


def test_photo_of_somebody_else_on_a_face_fails_same_person(face_bytes):
    face = DraftFaceFactory()
    add(face_bytes(1), face)
    other = add(face_bytes(2), face)
    assert not other.gate_passed
    assert failed_names(other) == {"same_person"}
    assert "different person" in other.failure_messages[0]


def test_not_an_image_is_refused_and_nothing_is_stored():
    face = DraftFaceFactory()
    with pytest.raises(services.InvalidReference, match="not a JPEG, PNG or WebP"):
        add(b"%PDF-1.4 definitely not a photo", face)
    assert not face.references.exists()


def test_thumbnail_is_a_square_crop_around_the_face(face_bytes):
    ref = add(face_bytes(9))  # 600x900 portrait
    with default_storage.open(ref.thumbnail.name) as handle:
        from PIL import Image

        assert Image.open(handle).size == (gate.THUMBNAIL_SIZE, gate.THUMBNAIL_SIZE)


@pytest.mark.django_db(transaction=True)
def test_gate_runs_outside_any_transaction(monkeypatch, face_bytes):
    seen = []
    real = faces.assess_face_photo

    def spy(image, **kwargs):
        seen.append(connection.in_atomic_block)
        return real(image, **kwargs)

    monkeypatch.setattr(faces, "assess_face_photo", spy)  # gate imports it when the gate runs
    ref = add(face_bytes(4))
    assert ref.gate_passed and seen == [False]


def test_insightface_embedding_is_stored_when_its_weights_exist(monkeypatch, face_bytes):
    """The real ArcFace model is not shipped; a stand-in checks what the library does with it."""

    class FakeEmbedder:
        def __init__(self, model_root):
            self.model_root = model_root

        def embed(self, image, face):
            assert face.short_side >= 128  # handed the face the gate found
            return [0.0] * 511 + [1.0]

    monkeypatch.setattr(faces, "InsightFaceEmbedder", FakeEmbedder)
    ref = add(face_bytes(6))
    assert len(ref.embedding_512) == 512 and ref.embedding_512[-1] == 1.0
    assert len(ref.embedding) == 128  # dlib's stays the one duplicates are searched with


# --- uploads gated by the analysis worker --------------------------------------------------------

PENDING, CHECKED, ERROR = FaceReference.GateStatus


def upload_pending(data: bytes, face=None) -> FaceReference:
    upload = SimpleUploadedFile("portrait.png", data, content_type="image/png")
    return services.reference_upload(face=face or DraftFaceFactory(), upload=upload, actor=None)


def test_an_upload_is_stored_pending_and_the_worker_gives_the_gate_verdict(
    face_bytes, django_capture_on_commit_callbacks
):
    pending = upload_pending(face_bytes(5))
    assert pending.gate_status == PENDING and pending.gate_checks == []
    assert not pending.gate_passed and not pending.is_primary and pending.embedding is None
    assert default_storage.exists(pending.image.name)
    placeholder = pending.thumbnail.name  # the photo's centre until the face is known
    assert default_storage.exists(placeholder)

    with django_capture_on_commit_callbacks(execute=True):
        checked = services.reference_check(reference_id=pending.pk)
    assert checked.gate_status == CHECKED and checked.gate_passed and checked.is_primary
    assert checked.thumbnail.name != placeholder and not default_storage.exists(placeholder)
    # the very verdict the synchronous path (import command, face generator) gives
    synchronous = add(face_bytes(5))
    for name in ("gate_checks", "face_box", "yaw", "pitch", "embedding", "width", "height"):
        assert getattr(checked, name) == getattr(synchronous, name), name
    assert checked.source_sha256 == synchronous.source_sha256
    assert services.reference_check(reference_id=pending.pk) is None  # a second run: skipped


def test_a_pending_photo_keeps_its_face_from_activation(face_bytes):
    face = DraftFaceFactory()
    ConsentFactory(face=face)
    pending = upload_pending(face_bytes(7), face)
    assert selectors.face_activation_problems(face=face) == [
        f"Reference photo {pending.pk} is still being checked by the quality gate; "
        "reload the page in a moment."
    ]
    with pytest.raises(services.FaceActionRefused, match="still being checked"):
        services.face_activate(face=face, actor=None)
    services.reference_check(reference_id=pending.pk)
    assert selectors.face_activation_problems(face=face) == []


def test_a_gate_that_cannot_run_records_why(monkeypatch, face_bytes):
    pending = upload_pending(face_bytes(2))

    def missing(image, **kwargs):
        raise ModelMissingError("dlib's face models are not installed")

    monkeypatch.setattr(faces, "assess_face_photo", missing)
    assert services.reference_check(reference_id=pending.pk) is None
    pending.refresh_from_db()
    assert pending.gate_status == ERROR and not pending.gate_passed
    assert pending.failure_messages == [
        "The quality gate could not run: dlib's face models are not installed"
    ]


def test_a_photo_deleted_before_its_check_is_skipped(face_bytes):
    pending = upload_pending(face_bytes(3))
    services.reference_delete(reference=pending, actor=None)
    assert services.reference_check(reference_id=pending.pk) is None
    assert not FaceReference.objects.exists()


def test_an_upload_that_is_no_image_is_refused_and_nothing_is_stored():
    face = DraftFaceFactory()
    with pytest.raises(services.InvalidReference, match="not a JPEG, PNG or WebP"):
        upload_pending(b"%PDF-1.4 definitely not a photo", face)
    assert not face.references.exists()
