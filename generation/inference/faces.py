"""Faces: detection, landmarks, identity embeddings, duplicates and the reference-photo gate.

Curators add faces to the library from reference photos. This module answers, for one photo:
is there exactly one usable face (big, frontal, sharp, well exposed), and who is it (a 128-d dlib
embedding, or 512-d ArcFace when insightface weights are installed), so the library can refuse a
bad photo with a message a curator understands and flag a person who is already in the library.

Detection runs dlib's HOG detector on a copy downscaled to 640 px (17 ms instead of 1.7 s on a
2500 px photo) and mediapipe's full-range face detector (~4 ms) beside it: mediapipe finds faces
HOG misses (small or turned faces, faces below HOG's 80 px window after the downscale), and a face
only one of them sees must be convincing on its own. Landmarks and embeddings are computed on the
full-resolution photo, so the downscale costs no precision where it matters.

Thresholds and their measurements on the sample photos are in docs/faces.md.
No Django imports here; every model object is loaded once per process through ``cache.models``.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import cv2
import dlib
import numpy as np
from PIL import Image, ImageOps

from .cache import models
from .errors import InvalidImageError, ModelMissingError
from .geometry import box_iou

# --- constants ---------------------------------------------------------------------------------

#: long side of the copy the detectors see; HOG time grows with pixels, landmarks use full res
DETECT_LONG_SIDE = 640
#: dlib's HOG sliding window is 80x80: smaller faces need an upsampled image
_HOG_WINDOW = 80
#: mediapipe's full-range model (up to ~5 m); the short-range one gave wrong boxes on small faces
_MEDIAPIPE_MIN_SCORE = 0.5
#: a HOG detection mediapipe did not confirm must clear this margin to count as a face
_HOG_ALONE_MIN_SCORE = 0.5
#: boxes this similar are the same face seen by both detectors
_SAME_FACE_IOU = 0.3
#: dlib box = mediapipe box shrunk about its centre (median 0.96 over 44 sample photos)
_MEDIAPIPE_TO_DLIB_SCALE = 0.96

#: dlib's own figure: pairs under 0.6 are the same person (99.38 % on LFW)
DLIB_SAME_PERSON_THRESHOLD = 0.6
#: stricter cut for "already in the library": between the largest same-person distance (0.365,
#: one model in two different shop photos; re-crops/mirrors/rescales <= 0.22) and the smallest
#: different-person distance (0.585) measured on the samples; see docs/faces.md
DLIB_DUPLICATE_THRESHOLD = 0.45
DLIB_EMBEDDING_DIM = 128
INSIGHTFACE_EMBEDDING_DIM = 512

_DLIB_MODEL_FILES = {
    "shape5": "shape_predictor_5_face_landmarks.dat",
    "shape68": "shape_predictor_68_face_landmarks.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
}

# A generic 3D face for head pose: the iBUG-68 mean shape shipped with insightface
# (insightface/data/objects/meanshape_68.pkl), restricted to points that move rigidly with the
# skull: nose (27-35), eyes (36-47), mouth corners (48, 54) and chin (8). The jaw contour is left
# out because under yaw it follows the silhouette, not fixed skin points, and shrinks the angle.
# Axes: x right, y down, z towards the camera; units: about half a face width.
_POSE_INDICES = (8, *range(27, 48), 48, 54)
_POSE_MODEL = np.array(
    [
        [0.001, 0.584, 0.388],  # 8 chin
        [-0.008, -0.323, 0.462],  # 27 nose bridge (27-30)
        [-0.008, -0.256, 0.510],
        [-0.008, -0.199, 0.553],
        [-0.007, -0.143, 0.599],
        [-0.145, 0.033, 0.420],  # 31 nostrils (31-35)
        [-0.084, 0.031, 0.473],
        [-0.005, 0.040, 0.515],
        [0.063, 0.046, 0.479],
        [0.134, 0.022, 0.419],
        [-0.387, -0.313, 0.260],  # 36 eye on the image's left (36-41)
        [-0.317, -0.350, 0.329],
        [-0.234, -0.355, 0.333],
        [-0.155, -0.315, 0.314],
        [-0.231, -0.284, 0.326],
        [-0.318, -0.285, 0.310],
        [0.139, -0.310, 0.318],  # 42 eye on the image's right (42-47)
        [0.219, -0.353, 0.338],
        [0.302, -0.350, 0.333],
        [0.377, -0.314, 0.263],
        [0.297, -0.287, 0.322],
        [0.215, -0.291, 0.331],
        [-0.201, 0.237, 0.380],  # 48 mouth corner, image left
        [0.218, 0.239, 0.376],  # 54 mouth corner, image right
    ],
    dtype=np.float64,
)
#: left/right partners among _POSE_INDICES (iBUG numbering); points on the midline pair with
#: themselves
_MIRROR_PAIRS = {31: 35, 32: 34, 36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46, 48: 54}


def _symmetric(model: np.ndarray) -> np.ndarray:
    """The model averaged with its mirror image.

    The mean shape is slightly lopsided (eye corners at x -0.387 / +0.377), which read as a 1-2
    deg yaw on every face; a symmetric model makes a mirrored photo give exactly the opposite yaw.
    """
    partner = {**_MIRROR_PAIRS, **{b: a for a, b in _MIRROR_PAIRS.items()}}
    row = {index: i for i, index in enumerate(_POSE_INDICES)}
    mirrored = np.array([model[row[partner.get(index, index)]] for index in _POSE_INDICES])
    mirrored[:, 0] *= -1
    return (model + mirrored) / 2


_POSE_MODEL = _symmetric(_POSE_MODEL)
#: the mean shape's nose sits higher between the eyes than dlib's annotations put it, so people
#: looking straight at the camera read as ~13.5 deg "looking down" (median over 44 sample faces)
_PITCH_NEUTRAL_DEG = 13.5

ImageLike = Image.Image | np.ndarray
K = TypeVar("K", bound=Hashable)


# --- data --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DetectedFace:
    """One face, in pixel coordinates of the image given to :func:`detect_faces`.

    ``box`` is (left, top, right, bottom), dlib's face box (brows to chin, ear to ear, about 0.96
    of mediapipe's); it may reach past the image edge. ``landmarks5`` follow dlib's 5-point model
    (eye corners and the base of the nose), ``landmarks68`` the iBUG-68 layout.
    ``dlib_score`` is the HOG margin (>0 is a face) and ``mediapipe_score`` mediapipe's
    probability; either is None when that detector did not see this face.
    """

    box: tuple[int, int, int, int]
    landmarks5: np.ndarray
    landmarks68: np.ndarray
    dlib_score: float | None = None
    mediapipe_score: float | None = None

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)

    @property
    def score(self) -> float:
        """mediapipe's probability when it saw the face, else the HOG margin."""
        if self.mediapipe_score is not None:
            return self.mediapipe_score
        return self.dlib_score if self.dlib_score is not None else 0.0

    @property
    def sources(self) -> tuple[str, ...]:
        found = (("dlib", self.dlib_score), ("mediapipe", self.mediapipe_score))
        return tuple(name for name, score in found if score is not None)


@dataclass(frozen=True)
class GateThresholds:
    """Limits of the reference-photo gate; the defaults are calibrated in docs/faces.md."""

    #: short side of the dlib face box, in pixels of the uploaded photo
    min_face_px: int = 128
    #: head turn left/right, degrees from frontal
    max_yaw_deg: float = 25.0
    #: head tilt up/down, degrees from frontal (looser than yaw: the estimate is noisier)
    max_pitch_deg: float = 30.0
    #: variance of the Laplacian / variance of the pixels, x100, on the face at 128 px
    min_sharpness: float = 4.0
    #: mean luminance (0-255) of the face box
    min_brightness: float = 50.0
    max_brightness: float = 220.0
    #: share of face-box pixels at <= 5 or >= 250 luminance (crushed or blown out)
    max_clipped_fraction: float = 0.10


DEFAULT_THRESHOLDS = GateThresholds()


@dataclass(frozen=True)
class QualityCheck:
    """One check of the gate. ``threshold`` is a (min, max) pair for range checks."""

    name: str
    value: float
    threshold: float | tuple[float, float]
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        threshold = self.threshold
        return {
            "name": self.name,
            "value": float(self.value),
            "threshold": (
                [float(t) for t in threshold] if isinstance(threshold, tuple) else float(threshold)
            ),
            "passed": bool(self.passed),
            "message": self.message,
        }


@dataclass
class FaceQualityReport:
    """The gate's verdict on one reference photo.

    When the photo does not show exactly one face, only the ``face_count`` check is present and
    the face fields are None: the other checks would describe an arbitrary face. When the face is
    not ``upright`` (see the check), there are no ``yaw``/``pitch`` checks and both are None.
    """

    passed: bool
    checks: list[QualityCheck]
    embedding: np.ndarray | None = None
    face_box: tuple[int, int, int, int] | None = None
    yaw: float | None = None
    pitch: float | None = None
    face: DetectedFace | None = field(default=None, repr=False)

    @property
    def failed_checks(self) -> list[QualityCheck]:
        return [check for check in self.checks if not check.passed]

    @property
    def messages(self) -> list[str]:
        """What a curator must fix, in check order (empty when the photo passed)."""
        return [check.message for check in self.failed_checks]

    def check(self, name: str) -> QualityCheck | None:
        return next((check for check in self.checks if check.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (plain floats, ints and lists; no numpy types)."""
        return {
            "passed": bool(self.passed),
            "checks": [check.to_dict() for check in self.checks],
            "embedding": (
                [float(x) for x in self.embedding] if self.embedding is not None else None
            ),
            "face_box": [int(x) for x in self.face_box] if self.face_box is not None else None,
            "yaw": float(self.yaw) if self.yaw is not None else None,
            "pitch": float(self.pitch) if self.pitch is not None else None,
        }


# --- images ------------------------------------------------------------------------------------


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """An HxWx3 uint8 C-contiguous RGB array (what dlib, mediapipe and OpenCV accept).

    PIL images are turned upright from their EXIF orientation first: phone photos are often
    stored sideways, and a sideways face is not found.
    """
    if isinstance(image, Image.Image):
        try:
            image = ImageOps.exif_transpose(image).convert("RGB")
        except (OSError, ValueError) as error:
            raise InvalidImageError(f"The image could not be read: {error}") from error
        array = np.asarray(image)
    elif isinstance(image, np.ndarray):
        array = image
    else:
        raise InvalidImageError(f"Expected a PIL image or a numpy array, got {type(image)!r}.")
    if array.dtype != np.uint8:
        raise InvalidImageError(f"Expected 8-bit pixels, got {array.dtype}.")
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InvalidImageError(f"Expected an RGB image, got an array of shape {array.shape}.")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise InvalidImageError("The image is empty.")
    return np.ascontiguousarray(array[:, :, :3])


def _downscale(rgb: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    """A copy whose long side is at most ``long_side``, and the factor used (<= 1)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, long_side / max(height, width))
    if scale >= 1.0:
        return rgb, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


# --- models ------------------------------------------------------------------------------------


@dataclass
class _Guarded:
    """A model object that must not run on two threads at once, with its lock."""

    model: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


def _dlib_model_path(kind: str) -> Path:
    # find_spec, not face_recognition_models' own helper: that imports pkg_resources, which
    # setuptools >= 81 no longer ships
    spec = importlib.util.find_spec("face_recognition_models")
    filename = _DLIB_MODEL_FILES[kind]
    if spec is None or spec.origin is None:
        raise ModelMissingError(
            f"dlib face model {filename} is missing: install face-recognition-models==0.3.0."
        )
    path = Path(spec.origin).parent / "models" / filename
    if not path.is_file():
        raise ModelMissingError(f"dlib face model not found at {path}.")
    return path


def _hog_detector() -> Any:
    # the HOG detector only reads its weights while scanning, so threads may share it
    return models.get("faces.dlib.hog", dlib.get_frontal_face_detector)


def _shape_predictor(kind: str) -> Any:
    # shape_predictor is read-only at prediction time: no lock needed
    return models.get(
        f"faces.dlib.{kind}", lambda: dlib.shape_predictor(str(_dlib_model_path(kind)))
    )


def _face_recognizer() -> _Guarded:
    # a dlib DNN keeps each layer's output inside the network object: one forward at a time
    return models.get(
        "faces.dlib.resnet",
        lambda: _Guarded(dlib.face_recognition_model_v1(str(_dlib_model_path("resnet")))),
    )


def _mediapipe_detector() -> _Guarded:
    def load() -> _Guarded:
        # imported here: mediapipe takes ~0.5 s to import and only this path needs it
        from mediapipe.python.solutions.face_detection import FaceDetection

        return _Guarded(
            FaceDetection(model_selection=1, min_detection_confidence=_MEDIAPIPE_MIN_SCORE)
        )

    # a mediapipe graph is a stateful calculator pipeline: concurrent process() calls corrupt it
    return models.get("faces.mediapipe.face_detection", load)


# --- detection ---------------------------------------------------------------------------------


@dataclass
class _Candidate:
    box: np.ndarray  # float (left, top, right, bottom) in full-resolution pixels
    dlib_score: float | None = None
    mediapipe_score: float | None = None


def _run_hog(image: np.ndarray, upsample: int) -> list[tuple[np.ndarray, float]]:
    rects, scores, _ = _hog_detector().run(image, upsample, 0.0)
    return [
        (np.array([r.left(), r.top(), r.right(), r.bottom()], dtype=np.float64), float(s))
        for r, s in zip(rects, scores, strict=True)
    ]


def _run_mediapipe(small: np.ndarray) -> list[tuple[np.ndarray, float]]:
    guarded = _mediapipe_detector()
    with guarded.lock:
        result = guarded.model.process(small)
    height, width = small.shape[:2]
    found = []
    for detection in result.detections or []:
        rel = detection.location_data.relative_bounding_box
        box = np.array(
            [
                rel.xmin * width,
                rel.ymin * height,
                (rel.xmin + rel.width) * width,
                (rel.ymin + rel.height) * height,
            ]
        )
        found.append(
            (_scale_about_centre(box, _MEDIAPIPE_TO_DLIB_SCALE), float(detection.score[0]))
        )
    return found


def _scale_about_centre(box: np.ndarray, factor: float) -> np.ndarray:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half_w, half_h = (box[2] - box[0]) * factor / 2, (box[3] - box[1]) * factor / 2
    return np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h])


def _refine_with_hog(rgb: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float] | None:
    """HOG on a crop around a face only mediapipe saw, scaled so the face is ~1.5 HOG windows.

    This gives mediapipe-only faces a dlib box (which the shape predictors are trained on) for a
    few milliseconds, instead of upsampling the whole photo (~65 ms).
    """
    side = max(box[2] - box[0], box[3] - box[1])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    height, width = rgb.shape[:2]
    left, top = max(0, int(cx - side)), max(0, int(cy - side))
    right, bottom = min(width, int(cx + side) + 1), min(height, int(cy + side) + 1)
    if right - left < 8 or bottom - top < 8:
        return None
    scale = 1.5 * _HOG_WINDOW / side
    crop = rgb[top:bottom, left:right]
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = np.ascontiguousarray(cv2.resize(crop, size, interpolation=interpolation))
    best: tuple[np.ndarray, float] | None = None
    for found, score in _run_hog(crop, 0):
        mapped = found / scale + np.array([left, top, left, top])
        if box_iou(mapped, box) >= _SAME_FACE_IOU and (best is None or score > best[1]):
            best = (mapped, score)
    return best


def _find_candidates(rgb: np.ndarray, long_side: int) -> list[_Candidate]:
    small, scale = _downscale(rgb, long_side)
    hog = [(box / scale, score) for box, score in _run_hog(small, 0)]
    mediapipe = [(box / scale, score) for box, score in _run_mediapipe(small)]
    if not hog and not mediapipe:
        # one upsampled pass finds faces under the 80 px HOG window that mediapipe also missed;
        # it only runs on photos where nothing was found, so good references never pay for it
        hog = [(box / scale, score) for box, score in _run_hog(small, 1)]

    candidates = [_Candidate(box=box, dlib_score=score) for box, score in hog]
    for box, score in mediapipe:
        match = max(candidates, key=lambda c: box_iou(c.box, box), default=None)
        if match and match.mediapipe_score is None and box_iou(match.box, box) >= _SAME_FACE_IOU:
            match.mediapipe_score = score
            continue
        refined = _refine_with_hog(rgb, box)
        if refined is not None:
            candidates.append(_Candidate(refined[0], dlib_score=refined[1], mediapipe_score=score))
        else:
            candidates.append(_Candidate(box, mediapipe_score=score))

    # a face seen by one detector only must be convincing on its own
    return [
        c
        for c in candidates
        if c.mediapipe_score is not None or (c.dlib_score or 0.0) >= _HOG_ALONE_MIN_SCORE
    ]


def _dlib_rect(box: Sequence[float]) -> dlib.rectangle:
    return dlib.rectangle(*(round(float(v)) for v in box))


def _shape_points(shape: Any) -> np.ndarray:
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def detect_faces(image: ImageLike, *, long_side: int = DETECT_LONG_SIDE) -> list[DetectedFace]:
    """All faces in the photo, largest first, with 5- and 68-point landmarks.

    Both detectors run on a copy downscaled to ``long_side``; boxes and landmarks are returned
    in the pixels of ``image`` (after EXIF rotation for PIL images).
    """
    rgb = to_rgb_array(image)
    return _detect(rgb, long_side)


def _detect(rgb: np.ndarray, long_side: int = DETECT_LONG_SIDE) -> list[DetectedFace]:
    shape5, shape68 = _shape_predictor("shape5"), _shape_predictor("shape68")
    faces = []
    for candidate in _find_candidates(rgb, long_side):
        rect = _dlib_rect(candidate.box)
        faces.append(
            DetectedFace(
                box=(rect.left(), rect.top(), rect.right(), rect.bottom()),
                landmarks5=_shape_points(shape5(rgb, rect)),
                landmarks68=_shape_points(shape68(rgb, rect)),
                dlib_score=candidate.dlib_score,
                mediapipe_score=candidate.mediapipe_score,
            )
        )
    return sorted(faces, key=lambda f: f.width * f.height, reverse=True)


# --- embeddings --------------------------------------------------------------------------------


def _full_object_detection(face: DetectedFace) -> dlib.full_object_detection:
    points = [dlib.point(round(float(x)), round(float(y))) for x, y in face.landmarks5]
    return dlib.full_object_detection(_dlib_rect(face.box), points)


def embed_face(image: ImageLike, face: DetectedFace) -> np.ndarray:
    """The 128-d dlib ResNet embedding (float32) of ``face``, found in this same image."""
    return _embed(to_rgb_array(image), face)


def _embed(rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
    # the network was trained on chips aligned by the 5-point model: 150 px, 25 % padding
    chip = dlib.get_face_chip(rgb, _full_object_detection(face), size=150, padding=0.25)
    recognizer = _face_recognizer()
    with recognizer.lock:
        descriptor = recognizer.model.compute_face_descriptor(chip)
    return np.asarray(descriptor, dtype=np.float32)


def face_distance(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Euclidean distance between two embeddings (dlib: < 0.6 is the same person)."""
    a_vec, b_vec = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_vec.shape != b_vec.shape:
        raise ValueError(f"Embeddings differ in shape: {a_vec.shape} vs {b_vec.shape}.")
    return float(np.linalg.norm(a_vec - b_vec))


def find_duplicates(
    embedding: Sequence[float] | np.ndarray,
    candidates: Iterable[tuple[K, Sequence[float] | np.ndarray]],
    threshold: float = DLIB_DUPLICATE_THRESHOLD,
) -> list[tuple[K, float]]:
    """``(key, distance)`` of every candidate within ``threshold``, closest first.

    Candidates must use the same embedding model as ``embedding`` (a 128-d dlib vector is not
    comparable with a 512-d ArcFace one): a shape mismatch raises ValueError.
    """
    query = np.asarray(embedding, dtype=np.float64).ravel()
    pairs = list(candidates)
    if not pairs:
        return []
    keys = [key for key, _ in pairs]
    try:
        matrix = np.stack([np.asarray(vec, dtype=np.float64).ravel() for _, vec in pairs])
    except ValueError as error:
        raise ValueError("Candidate embeddings differ in length.") from error
    if matrix.shape[1] != query.shape[0]:
        raise ValueError(
            f"Embedding has {query.shape[0]} dimensions, candidates have {matrix.shape[1]}."
        )
    distances = np.linalg.norm(matrix - query, axis=1)
    found = [(keys[i], float(distances[i])) for i in np.flatnonzero(distances <= threshold)]
    return sorted(found, key=lambda item: item[1])


class InsightFaceEmbedder:
    """512-d ArcFace embeddings from a local insightface model pack; never downloads.

    Weights live in ``<model_root>/insightface/<name>/*.onnx`` (e.g. buffalo_l's w600k_r50.onnx
    beside its detector and landmark models; the recognition model is picked by its input
    shape). The insightface model packs are licensed for non-commercial research only: check
    the registry's licence before enabling this in production.
    """

    def __init__(
        self,
        model_root: str | Path,
        name: str = "buffalo_l",
        *,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        self.model_dir = Path(model_root) / "insightface" / name
        self.providers = tuple(providers)
        key = f"faces.insightface.{self.model_dir.resolve()}.{','.join(self.providers)}"
        self.model = models.get(key, self._load)

    def _load(self) -> Any:
        onnx_files = sorted(self.model_dir.glob("*.onnx")) if self.model_dir.is_dir() else []
        if not onnx_files:
            raise ModelMissingError(
                f"InsightFace weights not found: no .onnx file in {self.model_dir}. Copy the "
                "model pack there (nothing is downloaded at run time)."
            )
        recognition = [path for path in onnx_files if _is_arcface_onnx(path)]
        if not recognition:
            raise ModelMissingError(
                f"No ArcFace recognition model (input 3x112x112 or similar, one output) among "
                f"{[p.name for p in onnx_files]} in {self.model_dir}."
            )
        # imported here: insightface pulls onnxruntime and its helpers, only needed on this path
        from insightface.model_zoo import get_model

        path = recognition[0]
        try:
            model = get_model(str(path), providers=list(self.providers))
        except Exception as error:  # onnxruntime raises several unrelated types for bad files
            raise ModelMissingError(f"InsightFace model {path} could not be loaded: {error}") from (
                error
            )
        # get_model returns None (no exception) for a graph it cannot route
        if model is None or getattr(model, "taskname", None) != "recognition":
            raise ModelMissingError(
                f"{path} is not an ArcFace recognition model insightface loads."
            )
        return model

    def embed(self, image: ImageLike, face: DetectedFace) -> np.ndarray:
        """The L2-normalised embedding (float32) of ``face``; compare with cosine or euclidean."""
        bgr = np.ascontiguousarray(to_rgb_array(image)[:, :, ::-1])  # insightface expects BGR
        chip = arcface_chip(bgr, arcface_keypoints(face), int(self.model.input_size[0]))
        vector = np.asarray(self.model.get_feat(chip), dtype=np.float32).ravel()
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector


def _is_arcface_onnx(path: Path) -> bool:
    """Mirror insightface's shape routing without building a session for every file."""
    import onnx

    try:
        graph = onnx.load_model(str(path), load_external_data=False).graph
    except Exception:  # a corrupt or unreadable file is simply not a candidate
        return False
    if len(graph.input) < 1 or len(graph.output) != 1:
        return False
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4:
        return False
    height, width = dims[2], dims[3]
    # 192 px inputs are insightface's landmark models, 96 px its gender/age model
    return height == width and height >= 112 and height % 16 == 0 and height != 192


def arcface_keypoints(face: DetectedFace) -> np.ndarray:
    """The 5 points ArcFace alignment expects, from the 68 landmarks.

    Order (image-left eye, image-right eye, nose tip, image-left and -right mouth corner), as in
    insightface's ``arcface_dst`` template.
    """
    points = face.landmarks68
    return np.array(
        [
            points[36:42].mean(axis=0),
            points[42:48].mean(axis=0),
            points[30],
            points[48],
            points[54],
        ],
        dtype=np.float32,
    )


#: where ArcFace models expect the 5 keypoints in a 112 px chip (insightface's arcface_dst)
_ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)


def arcface_chip(image: np.ndarray, keypoints: np.ndarray, size: int = 112) -> np.ndarray:
    """The face warped so its keypoints land on ArcFace's template, ``size`` px square.

    Same transform as insightface's ``face_align.norm_crop`` (least-squares similarity), written
    with numpy so this path needs no scikit-image (whose API it uses is deprecated).
    """
    if size % 112 == 0:
        target = _ARCFACE_TEMPLATE * (size / 112)
    else:  # 128 px family: same template, scaled, shifted right by 8 px
        target = _ARCFACE_TEMPLATE * (size / 128) + np.array([8.0 * size / 128, 0.0])
    src = np.asarray(keypoints, dtype=np.float64)
    # similarity x' = a*x - b*y + tx, y' = b*x + a*y + ty, solved for (a, b, tx, ty)
    ones, zeros = np.ones(len(src)), np.zeros(len(src))
    rows_x = np.stack([src[:, 0], -src[:, 1], ones, zeros], axis=1)
    rows_y = np.stack([src[:, 1], src[:, 0], zeros, ones], axis=1)
    design = np.vstack([rows_x, rows_y])
    (a, b, tx, ty), *_ = np.linalg.lstsq(design, target.T.ravel(), rcond=None)
    matrix = np.array([[a, -b, tx], [b, a, ty]])
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)


# --- head pose ---------------------------------------------------------------------------------


def estimate_head_pose(landmarks68: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees; 0, 0 is a face looking straight at the camera.

    yaw > 0: the nose points towards the image's right edge; pitch > 0: the face looks down.

    A weak-perspective (affine) fit of the generic 3D face to the landmarks, rather than
    cv2.solvePnP: the camera's focal length is unknown, and PnP with a guessed one measured
    30-39 deg pitch on shop photos whose face sits near the top of the frame (the viewing angle
    leaks into the head angle); the affine fit measures the head against its own line of sight.
    """
    image_points = np.asarray(landmarks68, dtype=np.float64)[list(_POSE_INDICES)]
    # OpenCV camera axes: z away from the camera, so flip the model's z (towards the camera)
    model = _POSE_MODEL * np.array([1.0, 1.0, -1.0])
    design = np.hstack([model, np.ones((len(model), 1))])
    affine, *_ = np.linalg.lstsq(design, image_points, rcond=None)  # 4x2
    row_x = affine[:3, 0] / np.linalg.norm(affine[:3, 0])
    row_y = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    row_z = np.cross(row_x, row_y)
    row_z /= np.linalg.norm(row_z)
    row_y = np.cross(row_z, row_x)  # re-orthogonalise: the fit's rows are not exactly orthogonal
    rotation = np.vstack([row_x, row_y, row_z])
    yaw = -math.degrees(math.atan2(-rotation[2, 0], math.hypot(rotation[0, 0], rotation[1, 0])))
    pitch = math.degrees(math.atan2(rotation[2, 1], rotation[2, 2])) - _PITCH_NEUTRAL_DEG
    return yaw, pitch


# --- quality gate ------------------------------------------------------------------------------


def _face_gray(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    height, width = rgb.shape[:2]
    left, top = max(0, box[0]), max(0, box[1])
    right, bottom = min(width, box[2]), min(height, box[3])
    crop = rgb[top:bottom, left:right]
    if crop.size == 0:
        return np.zeros((1, 1), dtype=np.uint8)
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)


def sharpness_score(gray_face: np.ndarray, *, size: int = 128) -> float:
    """Variance of the Laplacian / variance of the pixels (x100) on the face scaled to ``size``.

    Scaling the face down to a fixed short side makes faces of any resolution comparable (a big
    face has more fine detail per pixel than the same face small), and dividing by the pixel
    variance keeps a dark or low-contrast photo from reading as blurred: exposure has its own
    check and its own message.
    """
    scale = min(1.0, size / max(1, min(gray_face.shape)))
    if scale < 1.0:
        dsize = (
            max(1, round(gray_face.shape[1] * scale)),
            max(1, round(gray_face.shape[0] * scale)),
        )
        gray_face = cv2.resize(gray_face, dsize, interpolation=cv2.INTER_AREA)
    pixels = gray_face.astype(np.float32)
    contrast = float(pixels.var())
    if contrast < 1e-6:
        return 0.0
    return float(cv2.Laplacian(pixels, cv2.CV_32F).var() / contrast * 100.0)


def _count_check(count: int) -> QualityCheck:
    if count == 1:
        message = "1 face found."
    elif count == 0:
        message = "No face found; a reference photo must show one person's face, facing the camera."
    else:
        message = f"{count} faces found; a reference photo must show exactly one person."
    return QualityCheck("face_count", float(count), 1.0, count == 1, message)


def _size_check(face: DetectedFace, limits: GateThresholds) -> QualityCheck:
    size = face.short_side
    passed = size >= limits.min_face_px
    message = (
        f"Face is {size} px wide."
        if passed
        else f"Face is {size} px wide; at least {limits.min_face_px} px needed. "
        "Use a larger or closer photo."
    )
    return QualityCheck("face_size", float(size), float(limits.min_face_px), passed, message)


def _upright_check(face: DetectedFace) -> QualityCheck:
    # mediapipe also finds sideways, upside-down and strongly turned faces; dlib's HOG detector
    # (frontal, upright, about +-30 deg) and its shape predictors do not. A face HOG cannot confirm
    # even on a zoomed crop gets meaningless landmarks, so it cannot be a reference.
    confirmed = face.dlib_score is not None
    message = (
        "Face is upright and its features were located."
        if confirmed
        else "Face is sideways, upside down or turned away: its eyes, nose and mouth could not "
        "be located. Use an upright photo facing the camera."
    )
    return QualityCheck("upright", float(confirmed), 1.0, confirmed, message)


def _pose_checks(yaw: float, pitch: float, limits: GateThresholds) -> list[QualityCheck]:
    return [
        _head_angle_check(
            "yaw",
            yaw,
            limits.max_yaw_deg,
            "turned",
            f"to the image's {'right' if yaw > 0 else 'left'}",
            "Use a photo facing the camera.",
        ),
        _head_angle_check(
            "pitch",
            pitch,
            limits.max_pitch_deg,
            "tilted",
            "down" if pitch > 0 else "up",
            "Use a photo at eye level.",
        ),
    ]


def _head_angle_check(
    name: str, angle: float, limit: float, verb: str, towards: str, advice: str
) -> QualityCheck:
    """The head's ``angle`` (degrees, either sign) against ``limit``; ``verb`` and ``towards``
    describe the movement in the message, ``advice`` says what photo to use instead."""
    degrees = abs(angle)
    passed = degrees <= limit
    message = (
        f"Head {verb} {degrees:.0f}° (limit {limit:.0f}°)."
        if passed
        else f"Head is {verb} {degrees:.0f}° {towards}; at most {limit:.0f}° allowed. {advice}"
    )
    return QualityCheck(name, degrees, limit, passed, message)


def _sharpness_check(gray: np.ndarray, limits: GateThresholds) -> QualityCheck:
    value = sharpness_score(gray)
    passed = value >= limits.min_sharpness
    message = (
        f"Face is sharp (score {value:.1f})."
        if passed
        else f"Face is blurred (sharpness {value:.1f}, at least {limits.min_sharpness:.1f} "
        "needed). Use an in-focus photo without motion blur."
    )
    return QualityCheck("sharpness", value, limits.min_sharpness, passed, message)


def _exposure_checks(gray: np.ndarray, limits: GateThresholds) -> list[QualityCheck]:
    mean = float(gray.mean())
    bounds = (limits.min_brightness, limits.max_brightness)
    if mean < limits.min_brightness:
        brightness_message = (
            f"Face is too dark (brightness {mean:.0f}, at least {limits.min_brightness:.0f} "
            "needed). Use a better lit photo."
        )
    elif mean > limits.max_brightness:
        brightness_message = (
            f"Face is too bright (brightness {mean:.0f}, at most {limits.max_brightness:.0f}). "
            "Use a photo that is not overexposed."
        )
    else:
        brightness_message = f"Face brightness {mean:.0f} is fine."
    brightness_ok = bounds[0] <= mean <= bounds[1]

    clipped = float(np.count_nonzero((gray <= 5) | (gray >= 250)) / gray.size)
    clipped_ok = clipped <= limits.max_clipped_fraction
    clipped_message = (
        f"{clipped:.0%} of the face is pure black or white."
        if clipped_ok
        else f"{clipped:.0%} of the face is pure black or white (blown out or crushed); at most "
        f"{limits.max_clipped_fraction:.0%} allowed."
    )
    return [
        QualityCheck("brightness", mean, bounds, brightness_ok, brightness_message),
        QualityCheck("clipping", clipped, limits.max_clipped_fraction, clipped_ok, clipped_message),
    ]


def assess_face_photo(
    image: ImageLike,
    *,
    thresholds: GateThresholds = DEFAULT_THRESHOLDS,
    embed: bool = True,
) -> FaceQualityReport:
    """Run the reference-photo gate: one face, big, frontal, sharp and well exposed.

    Every check is evaluated (a curator sees all problems at once), except when the photo does not
    show exactly one face. The detection is done once and reused by every check and by the
    embedding (``embed=False`` skips the ~60 ms embedding, e.g. for a quick preview).
    """
    rgb = to_rgb_array(image)
    faces = _detect(rgb)
    count_check = _count_check(len(faces))
    if len(faces) != 1:
        return FaceQualityReport(passed=False, checks=[count_check])

    face = faces[0]
    gray = _face_gray(rgb, face.box)
    checks = [count_check, _size_check(face, thresholds), _upright_check(face)]
    yaw = pitch = None
    if face.dlib_score is not None:
        # landmarks (so the pose) are only trustworthy on a face HOG recognised as frontal
        yaw, pitch = estimate_head_pose(face.landmarks68)
        checks += _pose_checks(yaw, pitch, thresholds)
    checks += [_sharpness_check(gray, thresholds), *_exposure_checks(gray, thresholds)]
    return FaceQualityReport(
        passed=all(check.passed for check in checks),
        checks=checks,
        embedding=_embed(rgb, face) if embed else None,
        face_box=face.box,
        yaw=yaw,
        pitch=pitch,
        face=face,
    )


__all__ = [
    "DEFAULT_THRESHOLDS",
    "DETECT_LONG_SIDE",
    "DLIB_DUPLICATE_THRESHOLD",
    "DLIB_EMBEDDING_DIM",
    "DLIB_SAME_PERSON_THRESHOLD",
    "INSIGHTFACE_EMBEDDING_DIM",
    "DetectedFace",
    "FaceQualityReport",
    "GateThresholds",
    "InsightFaceEmbedder",
    "QualityCheck",
    "arcface_chip",
    "arcface_keypoints",
    "assess_face_photo",
    "detect_faces",
    "embed_face",
    "estimate_head_pose",
    "face_distance",
    "find_duplicates",
    "sharpness_score",
    "to_rgb_array",
]
