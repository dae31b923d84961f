"""Face detection, embeddings, duplicates and the reference-photo gate, on the real sample photos.

No Django: these run with ``-p no:django`` as well as under the project's pytest-django config.
Degraded copies (blur, darkness, a second face, a tiny face) are made in memory from the samples;
nothing is written into the repository.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from generation.inference import faces
from generation.inference.cache import models
from generation.inference.errors import InvalidImageError, ModelMissingError

REPO = Path(__file__).resolve().parents[2]
FACE_FILES = [f"face{i:02d}.{'png' if i <= 8 else 'jpg'}" for i in range(1, 11)]
GARMENT_FILES = [
    "dress_draped.jpg",
    "dress_floral.jpg",
    "dress_knit.jpg",
    "flatlay_dress.jpg",
    "flatlay_tunic.jpg",
    "hanger_dress.jpg",
    "vitonhd_04469.jpg",
    "vitonhd_09133.jpg",
    "vitonhd_09263.jpg",
    "vitonhd_09290.jpg",
]


# --- fixtures (own samples_dir: the shared conftest's one needs Django settings) ---------------


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    path = Path(os.environ.get("STUDIO_SAMPLES_DIR", REPO.parent / "shared" / "samples"))
    if not (path / "faces").is_dir():
        pytest.skip(f"sample photos not found at {path} (set STUDIO_SAMPLES_DIR)")
    return path


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="session")
def face_photos(samples_dir: Path) -> dict[str, np.ndarray]:
    return {name: load_rgb(samples_dir / "faces" / name) for name in FACE_FILES}


@pytest.fixture(scope="session")
def reports(face_photos: dict[str, np.ndarray]) -> dict[str, faces.FaceQualityReport]:
    """The gate's report on each of the 10 reference photos, computed once."""
    return {name: faces.assess_face_photo(image) for name, image in face_photos.items()}


def scaled(image: np.ndarray, factor: float) -> np.ndarray:
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interpolation)


def failed(report: faces.FaceQualityReport) -> set[str]:
    return {check.name for check in report.failed_checks}


# --- the gate on good photos -------------------------------------------------------------------


@pytest.mark.parametrize("name", FACE_FILES)
def test_every_sample_reference_passes(name: str, reports: dict) -> None:
    report = reports[name]
    assert report.passed, report.messages
    assert [c.name for c in report.checks] == [
        "face_count",
        "face_size",
        "upright",
        "yaw",
        "pitch",
        "sharpness",
        "brightness",
        "clipping",
    ]
    assert report.embedding is not None
    assert report.embedding.shape == (faces.DLIB_EMBEDDING_DIM,)
    assert abs(report.yaw) < 10  # all ten look at the camera (measured |yaw| <= 6 deg)
    left, top, right, bottom = report.face_box
    assert right - left >= 250 and bottom - top >= 250  # 512-900 px portraits, faces ~260-360 px


def test_report_to_dict_is_plain_json(reports: dict) -> None:
    data = reports["face01.png"].to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["passed"] is True
    assert len(data["embedding"]) == 128 and all(type(x) is float for x in data["embedding"])
    assert all(type(x) is int for x in data["face_box"])
    assert type(data["yaw"]) is float and type(data["pitch"]) is float
    brightness = next(c for c in data["checks"] if c["name"] == "brightness")
    assert brightness["threshold"] == [50.0, 220.0]
    for check in data["checks"]:
        assert set(check) == {"name", "value", "threshold", "passed", "message"}
        assert type(check["value"]) is float and type(check["passed"]) is bool


def test_pil_input_and_exif_rotation(samples_dir: Path) -> None:
    upright = Image.open(samples_dir / "faces" / "face03.png").convert("RGB")
    # stored sideways with EXIF orientation 6 ("rotate 90 clockwise to view"), as phones do
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    sideways.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    buffer.seek(0)

    report = faces.assess_face_photo(Image.open(buffer))
    assert report.passed, report.messages


# --- the gate on bad photos --------------------------------------------------------------------


def test_two_people_fail_on_count(face_photos: dict) -> None:
    left, right = face_photos["face01.png"], face_photos["face03.png"]  # both 512x512
    group = np.hstack([left, right])

    report = faces.assess_face_photo(group)

    assert not report.passed
    assert [c.name for c in report.checks] == ["face_count"]
    assert report.checks[0].value == 2.0
    assert report.checks[0].message == (
        "2 faces found; a reference photo must show exactly one person."
    )
    assert report.embedding is None and report.face_box is None
    found = faces.detect_faces(group)
    assert [f.box[0] < 512 for f in found].count(True) == 1  # one on each side


@pytest.mark.parametrize("name", GARMENT_FILES)
def test_garment_photo_has_no_face(name: str, samples_dir: Path) -> None:
    report = faces.assess_face_photo(load_rgb(samples_dir / "garments" / name))
    assert not report.passed
    assert report.checks[0].name == "face_count" and report.checks[0].value == 0.0
    assert report.messages[0].startswith("No face found")


def test_tiny_face_fails_on_size(face_photos: dict, reports: dict) -> None:
    # face03's face box is ~310 px: shrink it to ~60 px and put it in a 640x480 photo
    small = scaled(face_photos["face03.png"], 60 / reports["face03.png"].face.short_side)
    photo = np.full((480, 640, 3), 200, dtype=np.uint8)
    photo[100 : 100 + small.shape[0], 300 : 300 + small.shape[1]] = small

    report = faces.assess_face_photo(photo)

    assert failed(report) == {"face_size"}
    size = report.check("face_size")
    assert size.value < 100
    assert size.message == f"Face is {size.value:.0f} px wide; at least 128 px needed. " + (
        "Use a larger or closer photo."
    )


@pytest.mark.parametrize("name", FACE_FILES)
def test_blurred_copy_fails_on_sharpness(name: str, face_photos: dict) -> None:
    blurred = cv2.GaussianBlur(face_photos[name], (0, 0), sigmaX=3)
    report = faces.assess_face_photo(blurred, embed=False)
    assert failed(report) == {"sharpness"}, report.messages
    assert "blurred" in report.check("sharpness").message


@pytest.mark.parametrize("name", FACE_FILES)
def test_dark_copy_fails_on_exposure(name: str, face_photos: dict) -> None:
    dark = (face_photos[name].astype(np.float32) * 0.2).astype(np.uint8)
    report = faces.assess_face_photo(dark, embed=False)
    assert "brightness" in failed(report), report.messages
    assert failed(report) <= {"brightness", "clipping"}
    assert report.check("brightness").message.startswith("Face is too dark")


@pytest.mark.parametrize("name", FACE_FILES)
def test_blown_out_copy_fails_on_clipping(name: str, face_photos: dict) -> None:
    blown = np.clip(face_photos[name].astype(np.float32) * 2.2, 0, 255).astype(np.uint8)
    report = faces.assess_face_photo(blown, embed=False)
    assert "clipping" in failed(report), report.messages
    assert failed(report) <= {"brightness", "clipping"}


def test_real_head_turn_fails_on_yaw(samples_dir: Path) -> None:
    # street_0630: a woman turning her head ~35-40 deg (a real turn, not a warp); her face is
    # also small, so size fails too; the point here is the yaw check and its sign
    photo = load_rgb(samples_dir / "persons" / "street_0630.jpg")
    report = faces.assess_face_photo(photo, embed=False)
    mirrored = faces.assess_face_photo(np.ascontiguousarray(photo[:, ::-1]), embed=False)

    assert "yaw" in failed(report) and "yaw" in failed(mirrored)
    assert abs(report.yaw) > 30 and abs(mirrored.yaw) > 30
    assert math.copysign(1, report.yaw) != math.copysign(1, mirrored.yaw)
    assert "pitch" not in failed(report)


def test_sideways_face_fails_on_upright(face_photos: dict) -> None:
    # a photo rotated 90 deg without EXIF: mediapipe still finds the face, dlib cannot
    sideways = np.ascontiguousarray(np.rot90(face_photos["face03.png"]))
    report = faces.assess_face_photo(sideways, embed=False)
    assert "upright" in failed(report)
    assert report.check("yaw") is None and report.yaw is None


def test_head_pose_recovers_angles_of_projected_model() -> None:
    """The pose maths on exact landmarks: the 3D model rotated by known angles and projected."""

    def rotation(yaw: float, pitch: float) -> np.ndarray:
        a, b = math.radians(yaw), math.radians(pitch)
        about_y = np.array(
            [[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]]
        )
        about_x = np.array(
            [[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]]
        )
        return about_y @ about_x

    model = faces._POSE_MODEL * np.array([1.0, 1.0, -1.0])  # camera axes: z away from camera
    for yaw, pitch in [(0, 0), (30, 0), (-20, 10), (10, -25), (45, 15)]:
        landmarks = np.zeros((68, 2))
        # a rotation about +y moves the nose to the image's left: that is a negative yaw here
        projected = model @ rotation(-yaw, pitch + faces._PITCH_NEUTRAL_DEG).T
        landmarks[list(faces._POSE_INDICES)] = projected[:, :2] * 200 + 300
        got_yaw, got_pitch = faces.estimate_head_pose(landmarks)
        assert got_yaw == pytest.approx(yaw, abs=0.5)
        assert got_pitch == pytest.approx(pitch, abs=0.5)
        nose_x = landmarks[30, 0] - landmarks[27:31, 0].mean()
        assert yaw == 0 or np.sign(nose_x) == np.sign(yaw)  # yaw > 0: nose towards image right


def test_thresholds_are_configurable(face_photos: dict) -> None:
    strict = faces.GateThresholds(min_face_px=400)
    report = faces.assess_face_photo(face_photos["face01.png"], thresholds=strict, embed=False)
    assert failed(report) == {"face_size"}
    assert report.check("face_size").threshold == 400.0


def test_invalid_images_raise() -> None:
    with pytest.raises(InvalidImageError):
        faces.assess_face_photo(np.zeros((64, 64, 3), dtype=np.float32))
    with pytest.raises(InvalidImageError):
        faces.detect_faces(np.zeros((0, 10, 3), dtype=np.uint8))
    with pytest.raises(InvalidImageError):
        faces.detect_faces("face.jpg")  # type: ignore[arg-type]


# --- detection and embeddings ------------------------------------------------------------------


def test_detect_faces_gives_boxes_and_landmarks(face_photos: dict) -> None:
    image = face_photos["face09.jpg"]
    (face,) = faces.detect_faces(image)
    assert face.sources == ("dlib", "mediapipe")
    assert face.landmarks5.shape == (5, 2) and face.landmarks68.shape == (68, 2)
    left, _, right, _ = face.box
    inside = (face.landmarks68[:, 0] >= left - 5) & (face.landmarks68[:, 0] <= right + 5)
    assert inside.mean() > 0.9
    # eyes above nose above mouth
    assert (
        face.landmarks68[36:48, 1].mean()
        < face.landmarks68[30, 1]
        < face.landmarks68[48:68, 1].mean()
    )


def test_detection_on_a_large_photo_maps_back_to_full_resolution(face_photos: dict) -> None:
    image = face_photos["face09.jpg"]
    (small,) = faces.detect_faces(image)
    (large,) = faces.detect_faces(scaled(image, 2560 / 900))  # detected on a 640 px copy
    factor = 2560 / 900
    assert large.width == pytest.approx(small.width * factor, rel=0.1)
    assert np.abs(large.landmarks68 / factor - small.landmarks68).mean() < 4


def test_embedding_matches_the_gate(face_photos: dict, reports: dict) -> None:
    image = face_photos["face05.png"]
    (face,) = faces.detect_faces(image)
    vector = faces.embed_face(image, face)
    assert vector.dtype == np.float32 and vector.shape == (128,)
    assert faces.face_distance(vector, reports["face05.png"].embedding) < 1e-6


def test_models_are_loaded_once(face_photos: dict) -> None:
    faces.assess_face_photo(face_photos["face01.png"])
    faces.assess_face_photo(face_photos["face02.png"])
    for key in (
        "faces.dlib.hog",
        "faces.dlib.shape5",
        "faces.dlib.shape68",
        "faces.dlib.resnet",
        "faces.mediapipe.face_detection",
    ):
        assert models.load_counts[key] == 1, key


# --- duplicates --------------------------------------------------------------------------------


def variants(image: np.ndarray) -> dict[str, np.ndarray]:
    """Copies of one photo that show the same person."""
    height, width = image.shape[:2]
    crop = image[int(height * 0.08) : int(height * 0.95), int(width * 0.10) : int(width * 0.93)]
    return {
        "re-crop": np.ascontiguousarray(crop),
        "mirror": np.ascontiguousarray(image[:, ::-1]),
        "rescaled 0.8": scaled(image, 0.8),
        "rescaled 1.25": scaled(image, 1.25),
    }


@pytest.mark.parametrize("name", FACE_FILES)
def test_copies_of_the_same_person_are_duplicates(
    name: str, face_photos: dict, reports: dict
) -> None:
    library = [(other, reports[other].embedding) for other in FACE_FILES]
    for kind, copy in variants(face_photos[name]).items():
        report = faces.assess_face_photo(copy)
        matches = faces.find_duplicates(report.embedding, library)
        assert [key for key, _ in matches] == [name], kind
        # measured: <= 0.22 for these copies; the duplicate threshold is 0.45
        assert matches[0][1] < 0.3, kind


def test_different_people_are_not_duplicates(reports: dict) -> None:
    distances = {
        (a, b): faces.face_distance(reports[a].embedding, reports[b].embedding)
        for a, b in itertools.combinations(FACE_FILES, 2)
    }
    assert len(distances) == 45
    # measured: the closest pair is face01/face06 at 0.63, the median 0.88
    assert min(distances.values()) > faces.DLIB_DUPLICATE_THRESHOLD + 0.1
    for name in FACE_FILES:
        others = [(o, reports[o].embedding) for o in FACE_FILES if o != name]
        assert faces.find_duplicates(reports[name].embedding, others) == []


def test_find_duplicates_sorts_and_checks_shapes() -> None:
    query = np.zeros(128, dtype=np.float32)
    near, nearer, far = np.full(128, 0.03), np.full(128, 0.01), np.full(128, 1.0)
    candidates = [("near", near), ("far", far), ("nearer", nearer.tolist())]
    found = faces.find_duplicates(query, candidates, threshold=0.5)
    assert [key for key, _ in found] == ["nearer", "near"]
    assert found[0][1] == pytest.approx(0.01 * math.sqrt(128))
    assert faces.find_duplicates(query, []) == []
    with pytest.raises(ValueError, match="dimensions"):
        faces.find_duplicates(query, [("arcface", np.zeros(512))])


# --- insightface -------------------------------------------------------------------------------


def test_insightface_missing_weights_raise_model_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match=r"no \.onnx file in .*insightface/buffalo_l"):
        faces.InsightFaceEmbedder(tmp_path)

    pack = tmp_path / "insightface" / "broken"
    pack.mkdir(parents=True)
    (pack / "w600k_r50.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ModelMissingError, match="No ArcFace recognition model"):
        faces.InsightFaceEmbedder(tmp_path, "broken")


def test_insightface_loads_a_local_arcface_shaped_model(tmp_path: Path, face_photos: dict) -> None:
    """A tiny random ONNX net with ArcFace's I/O (1x3x112x112 -> 1x512) goes through the real
    loading path (insightface.model_zoo.get_model -> ArcFaceONNX) and the alignment."""
    torch = pytest.importorskip("torch")
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    class TinyArcFace(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, kernel_size=8, stride=8)
            self.fc = torch.nn.Linear(8 * 14 * 14, 512)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))

    torch.manual_seed(0)
    pack = tmp_path / "insightface" / "tiny"
    pack.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter warns it is legacy
        torch.onnx.export(
            TinyArcFace().eval(),
            torch.zeros(1, 3, 112, 112),
            str(pack / "tiny_arcface.onnx"),
            input_names=["data"],
            output_names=["fc1"],
            dynamo=False,  # the dynamo exporter needs onnxscript, which is not installed
        )

    embedder = faces.InsightFaceEmbedder(tmp_path, "tiny")
    assert isinstance(embedder.model, ArcFaceONNX)
    assert embedder.model.input_size == (112, 112)
    again = faces.InsightFaceEmbedder(tmp_path, "tiny")
    assert again.model is embedder.model  # cached per process

    image = face_photos["face04.png"]
    (face,) = faces.detect_faces(image)
    vector = embedder.embed(image, face)
    assert vector.shape == (faces.INSIGHTFACE_EMBEDDING_DIM,) and vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(vector, embedder.embed(image, face))
    keypoints = faces.arcface_keypoints(face)
    assert keypoints[0, 0] < keypoints[1, 0] and keypoints[2, 1] < keypoints[3, 1]


# --- boundaries --------------------------------------------------------------------------------


def test_faces_module_imports_no_django() -> None:
    code = (
        "import sys, generation.inference.faces; "
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
