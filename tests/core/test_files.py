"""core.files.stored_files: files written for a unit of work are removed again when it fails."""

from __future__ import annotations

import errno
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from core import files as core_files
from core.files import StorageWriteError, stored_files
from facelibrary import services as face_services
from facelibrary.gate import PreparedReference
from facelibrary.models import Consent, FaceReference
from tests.facelibrary.factories import DraftFaceFactory


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """An empty MEDIA_ROOT of the test's own (the default storage follows the setting)."""
    settings.MEDIA_ROOT = tmp_path
    assert Path(default_storage.path("x")).parent == tmp_path
    return tmp_path


def files_in(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def disk_full_on_write(monkeypatch):
    """Make the n-th write (1-based) put a few bytes on disk and then fail with ENOSPC, the way
    FileSystemStorage leaves a partial file when the disk fills up mid-write."""
    real_save = FileSystemStorage._save

    def arm(n: int) -> list[str]:
        attempted: list[str] = []

        def save(self, name, content):
            attempted.append(name)
            if len(attempted) == n:
                path = Path(self.path(name))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"partial")
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_save(self, name, content)

        monkeypatch.setattr(FileSystemStorage, "_save", save)
        return attempted

    return arm


def test_a_later_failure_removes_every_file_written_in_the_block(media):
    names = []
    with pytest.raises(RuntimeError, match="insert failed"), stored_files() as files:
        names.append(files.store("photos", b"one", "png"))
        names.append(files.store("masks", b"two", "png"))
        assert files_in(media) == sorted(names)
        raise RuntimeError("insert failed")
    assert len(names) == 2
    assert files_in(media) == []


def test_base_exceptions_also_remove_the_files(media):
    with pytest.raises(KeyboardInterrupt), stored_files() as files:
        files.store("photos", b"one", "png")
        raise KeyboardInterrupt
    assert files_in(media) == []


def test_success_keeps_the_files(media):
    with stored_files() as files:
        first = files.store("photos", b"one", "png")
        second = files.store("assets", b"two", "mp4")
    assert files_in(media) == sorted([first, second])
    assert default_storage.open(first).read() == b"one"
    assert first.startswith("photos/") and second.endswith(".mp4")


def test_a_failed_second_write_leaves_nothing(media, disk_full_on_write):
    attempted = disk_full_on_write(2)
    with pytest.raises(StorageWriteError) as failed, stored_files() as files:
        files.store("originals", b"original bytes", "jpg")
        files.store("photos", b"working png", "png")
        pytest.fail("the second write should have failed")  # pragma: no cover
    assert len(attempted) == 2
    assert isinstance(failed.value.__cause__, OSError)
    assert files_in(media) == []  # neither the first file nor the partial second one


def test_kept_files_are_handed_on_and_not_removed(media):
    with pytest.raises(RuntimeError), stored_files() as files:
        name = files.store("photos", b"one", "png")
        assert files.keep() == [name]
        raise RuntimeError("after the hand-over")
    assert files_in(media) == [name]


def test_discard_removes_the_files_without_an_exception(media):
    with stored_files() as files:
        files.store("assets", b"one", "png")
        files.discard()  # e.g. the job was cancelled while it ran: the result is dropped
    assert files_in(media) == []


def test_tracked_files_written_elsewhere_are_removed_too(media):
    name = core_files.store("facelibrary/consents", b"%PDF", "pdf")  # as FieldFile.save would
    with pytest.raises(ValueError), stored_files() as files:
        files.track(name)
        raise ValueError("row refused")
    assert files_in(media) == []


# --- the face library: a reference whose second write or insert fails leaves no file ---------


def _prepared() -> PreparedReference:
    """A reference as the gate would prepare it (no model inference needed here)."""
    report = SimpleNamespace(
        checks=[],
        embedding=None,
        to_dict=lambda: {"face_box": None, "yaw": None, "pitch": None},
    )
    return PreparedReference(
        png=b"\x89PNG reference",
        thumbnail_jpeg=b"\xff\xd8 thumbnail",
        width=64,
        height=64,
        source_sha256="0" * 64,
        report=report,
        embedding_512=None,
    )


@pytest.mark.django_db
def test_reference_whose_thumbnail_write_fails_leaves_no_file(media, disk_full_on_write):
    face = DraftFaceFactory()
    attempted = disk_full_on_write(2)  # the reference image fits, the thumbnail does not
    with pytest.raises(StorageWriteError):
        face_services.reference_add(face=face, prepared=_prepared(), actor=None)
    assert [name.split("/")[1] for name in attempted] == ["references", "thumbnails"]
    assert files_in(media) == []
    assert not FaceReference.objects.exists()


@pytest.mark.django_db
def test_reference_whose_insert_fails_leaves_no_file(media, monkeypatch):
    face = DraftFaceFactory()

    def insert_fails(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(face_services, "_record_reference", insert_fails)
    with pytest.raises(RuntimeError, match="database gone"):
        face_services.reference_add(face=face, prepared=_prepared(), actor=None)
    assert files_in(media) == []


@pytest.mark.django_db
def test_consent_whose_insert_fails_leaves_no_document(media, monkeypatch):
    face = DraftFaceFactory()

    def insert_fails(self, *args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(Consent, "save", insert_fails)
    document = SimpleUploadedFile("release.pdf", b"%PDF-1.4 signed", content_type="application/pdf")
    with pytest.raises(RuntimeError, match="database gone"):
        face_services.consent_add(
            face=face, licence_terms="Catalog use", actor=None, document=document
        )
    assert files_in(media) == []


@pytest.mark.django_db
def test_reference_that_is_recorded_keeps_both_files(media):
    ref = face_services.reference_add(face=DraftFaceFactory(), prepared=_prepared(), actor=None)
    assert files_in(media) == sorted([ref.image.name, ref.thumbnail.name])
