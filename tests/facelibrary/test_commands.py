"""import_faces and generate_faces, end to end through the gate."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from core.files import sha256 as sha256_bytes
from facelibrary.models import Consent, Face, FaceReference

from .conftest import FACE_FILES


def sha256(path) -> str:
    return sha256_bytes(path.read_bytes())


pytestmark = pytest.mark.django_db


@pytest.fixture
def import_dir(tmp_path, samples_dir, mirrored_bytes, garment_bytes, blurred_bytes):
    """A folder like a curator's delivery (copies in a temp folder, never in the repo):
    face02-04, one person with two photos in a sub-folder (face01 and its mirror image), a
    re-crop of face04 (the same person again), a garment photo and a blurred photo."""
    from PIL import Image

    folder = tmp_path / "delivery"
    folder.mkdir()
    for name in FACE_FILES[1:4]:  # face02-04
        shutil.copy(samples_dir / "faces" / name, folder / name)
    with Image.open(samples_dir / "faces" / FACE_FILES[3]) as face04:
        face04.convert("RGB").crop((30, 30, 490, 490)).save(folder / "zz-recrop.png")
    person = folder / "anna"
    person.mkdir()
    shutil.copy(samples_dir / "faces" / FACE_FILES[0], person / "front.png")
    (person / "mirrored.png").write_bytes(mirrored_bytes)
    (folder / "dress.jpg").write_bytes(garment_bytes)
    (folder / "soft.png").write_bytes(blurred_bytes)
    (folder / "release-anna.pdf").write_bytes(b"%PDF-1.4 signed release")
    (folder / "README.txt").write_text("not a photo")
    return folder


@pytest.fixture
def attributes_csv(tmp_path):
    expires = (timezone.localdate() + timedelta(days=365)).isoformat()
    path = tmp_path / "attributes.csv"
    path.write_text(
        "file,code,gender_presentation,age_band,skin_tone,region_tags,hair,licence_terms,"
        "expires_on,allowed_uses,consent_document\n"
        f"anna,ANNA,feminine,25-34,3,Europe;east_asia,long,Model release 2y,{expires},"
        "catalog_images;catalog_video,release-anna.pdf\n"
        f"face02.png,,feminine,35-44,9,sub_saharan_africa,short,Licence,{expires},"
        "catalog_images,\n"
    )
    return path


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, "--no-progress", stdout=out)
    return out.getvalue()


def test_import_folder_with_attributes_and_activation(import_dir, attributes_csv):
    output = run("import_faces", str(import_dir), "--attributes", str(attributes_csv), "--activate")

    assert "8 photo(s) checked: 6 passed the quality gate, 2 failed." in output
    assert "Failed checks: face_count 1, sharpness 1." in output
    assert "✗ dress.jpg: No face found" in output
    assert "✗ soft.png: Face is blurred" in output
    face04 = Face.objects.get(references__source_sha256=sha256(import_dir / "face04.png"))
    recrop = Face.objects.get(references__source_sha256=sha256(import_dir / "zz-recrop.png"))
    assert f"zz-recrop.png ({recrop.code}) looks like face {face04.code}" in output

    # one face per photo or sub-folder; photos that failed the gate are not stored
    assert Face.objects.count() == 5 and FaceReference.objects.count() == 6
    assert not FaceReference.objects.filter(gate_passed=False).exists()
    anna = Face.objects.get(code="ANNA")
    assert anna.references.count() == 2 and anna.region_tags == ["europe", "east_asia"]
    consent = Consent.objects.get(face=anna)
    assert consent.document.name.startswith("facelibrary/consents/")
    assert consent.allowed_uses == ["catalog_images", "catalog_video"]
    face02 = Face.objects.get(references__source_sha256=sha256(import_dir / "face02.png"))
    assert (face02.skin_tone, face02.age_band) == (9, "35-44")

    # activated: the faces with a consent; the others stay drafts, and the summary says why
    assert set(Face.objects.filter(status="active")) == {anna, face02}
    assert "not activated" in output and "no valid consent" in output

    # a re-run finds every stored photo and creates nothing
    again = run("import_faces", str(import_dir))
    assert Face.objects.count() == 5 and FaceReference.objects.count() == 6
    assert again.count("already in the library") == 6


def test_import_can_keep_rejected_photos_for_review(import_dir):
    output = run("import_faces", str(import_dir), "--keep-rejected")
    assert "8 photo(s) checked: 6 passed the quality gate, 2 failed." in output
    assert FaceReference.objects.filter(gate_passed=False).count() == 2
    assert not Face.objects.filter(status="active").exists()
    assert set(Face.objects.values_list("source", flat=True)) == {"licensed_model"}


def test_import_reports_bad_csv_values(import_dir, tmp_path):
    csv = tmp_path / "a.csv"
    csv.write_text("file,skin_tone\nmissing.png,4\nface03.png,12\n")
    output = run("import_faces", str(import_dir), "--attributes", str(csv))
    assert "error missing.png: in the CSV but not in" in output
    assert "error face03.png: skin_tone: Value 12 is not a valid choice." in output
    assert not Face.objects.filter(skin_tone=12).exists()


def test_import_refuses_a_missing_folder(tmp_path):
    with pytest.raises(CommandError, match="not a folder"):
        run("import_faces", str(tmp_path / "nope"))


def generate_small(count: int, *options: str) -> str:
    """``generate_faces`` at 64 px in 2 steps: with the tiny set, noise images in seconds."""
    return run("generate_faces", "--count", str(count), "--size", "64", "--steps", "2", *options)


@pytest.mark.slow
def test_generate_faces_with_tiny_weights_is_rejected_by_the_gate(tiny_models, settings):
    """Tiny random weights make noise: the same gate refuses every image, nothing is kept."""
    settings.GENERATION_MODEL_SET = "tiny-sd15"
    output = generate_small(
        3, "--seed", "7", "--attributes", "gender_presentation=feminine", "skin_tone=6"
    )
    assert "Model set tiny-sd15, 3 image(s) generated." in output
    assert "3 photo(s) checked: 0 passed the quality gate, 3 failed." in output
    assert "Failed checks: face_count 3." in output
    assert "No face created." in output
    assert not Face.objects.exists() and not FaceReference.objects.exists()


@pytest.mark.slow
def test_generate_faces_keep_rejected_stores_drafts_that_cannot_be_activated(tiny_models, settings):
    settings.GENERATION_MODEL_SET = "tiny-sd15"
    output = generate_small(
        1, "--keep-rejected", "--activate", "--attributes", "region_tags=south_asia"
    )
    face = Face.objects.get()
    assert face.source == "ai_generated" and face.status == "draft"
    assert face.region_tags == ["south_asia"] and face.code.startswith("AI-")
    ref = face.references.get()
    assert not ref.gate_passed and not ref.is_primary
    assert ref.failure_messages[0].startswith("No face found")
    licence = face.consents.get()
    assert "tiny-sd15" in licence.licence_terms and "apache-2.0" in licence.licence_terms
    assert "1 face(s) created" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "0"], "between 1 and 500"),
        (["--count", "1", "--size", "60"], "multiple of 8"),
        (["--count", "1", "--attributes", "skin_tone=11"], "11"),
        (["--count", "1", "--attributes", "eyes=blue"], "Unknown attribute"),
        (["--count", "1", "--attributes", "skin_tone"], "name=value"),
    ],
)
def test_generate_faces_validates_its_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        run("generate_faces", *args)
