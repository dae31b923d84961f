"""Body pose: mediapipe landmarks mapped to the OpenPose body-18 (COCO) layout.

ControlNet's OpenPose models were trained on control images drawn in the body-18 layout, so we
convert mediapipe's 33 BlazePose landmarks to those 18 keypoints and draw them with the same
limb pairs and colours as controlnet_aux's ``draw_bodypose`` (controlnet-aux itself cannot be
installed next to CPU torch, see docs/analysis.md).

Coordinates are pixels of the image passed in; confidence is mediapipe's per-landmark
visibility. A keypoint is *missing* (confidence 0, x = y = -1) when mediapipe is unsure or
puts it outside the frame (e.g. knees of an upper-body photo).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

from .cache import models
from .errors import NoPoseFoundError

KEYPOINT_NAMES = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)
NOSE, NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST = range(8)
R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE, R_EYE, L_EYE, R_EAR, L_EAR = range(8, 18)

#: body-18 index -> BlazePose (mediapipe) landmark index; the neck is the mid-shoulder point
_FROM_MEDIAPIPE = {
    NOSE: 0,
    R_SHOULDER: 12,
    R_ELBOW: 14,
    R_WRIST: 16,
    L_SHOULDER: 11,
    L_ELBOW: 13,
    L_WRIST: 15,
    R_HIP: 24,
    R_KNEE: 26,
    R_ANKLE: 28,
    L_HIP: 23,
    L_KNEE: 25,
    L_ANKLE: 27,
    R_EYE: 5,
    L_EYE: 2,
    R_EAR: 8,
    L_EAR: 7,
}

#: limb pairs (1-based, as in controlnet_aux / OpenPose) and the 18 colours, in drawing order
LIMB_SEQ = (
    (2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11),
    (2, 12), (12, 13), (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18),
)  # fmt: skip
COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip

#: below this visibility a landmark is treated as missing
MIN_KEYPOINT_CONFIDENCE = 0.5
#: mediapipe runs on a copy whose long side is at most this (it works on 256 px crops anyway)
INFERENCE_MAX_SIDE = 640
#: a landmark this far outside the frame (fraction of the side) is missing, not clipped
_OUTSIDE_MARGIN = 0.02

_POSE_KEY = "mediapipe.pose.c1.seg"
# one mediapipe graph per process, and graphs are not thread-safe: calls are serialised
_POSE_LOCK = threading.Lock()


@dataclass
class PoseResult:
    """Body-18 keypoints of one person, plus mediapipe's person mask."""

    #: (18, 3) float32: x, y in pixels of ``size``, confidence 0..1 (0 and x=y=-1 when missing)
    keypoints: np.ndarray
    #: (width, height) of the image the coordinates refer to
    size: tuple[int, int]
    detected: bool
    #: overall confidence: mean confidence of the torso keypoints (shoulders, hips)
    confidence: float
    #: uint8 HxW 0/255, or None (standard poses have none)
    person_mask: np.ndarray | None = field(default=None, repr=False)
    #: "mediapipe" or "standard:<template>"
    source: str = "mediapipe"

    def has(self, index: int) -> bool:
        return bool(self.keypoints[index, 2] > 0)

    def point(self, index: int) -> tuple[float, float] | None:
        if not self.has(index):
            return None
        return float(self.keypoints[index, 0]), float(self.keypoints[index, 1])

    @property
    def found_count(self) -> int:
        return int((self.keypoints[:, 2] > 0).sum())

    def scaled(self, size: tuple[int, int]) -> PoseResult:
        """The same pose for the same picture at another size (e.g. the full-resolution file)."""
        sx, sy = size[0] / self.size[0], size[1] / self.size[1]
        kp = self.keypoints.copy()
        found = kp[:, 2] > 0
        kp[found, 0] *= sx
        kp[found, 1] *= sy
        mask = None
        if self.person_mask is not None:
            mask = cv2.resize(self.person_mask, size, interpolation=cv2.INTER_LINEAR)
            mask = np.where(mask >= 128, 255, 0).astype(np.uint8)
        return PoseResult(kp, size, self.detected, self.confidence, mask, self.source)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the person mask is stored separately, as a PNG)."""
        return {
            "format": "openpose-body18",
            "size": [int(self.size[0]), int(self.size[1])],
            "detected": bool(self.detected),
            "confidence": round(float(self.confidence), 4),
            "source": self.source,
            "keypoints": [
                [round(float(x), 2), round(float(y), 2), round(float(c), 4)]
                for x, y, c in self.keypoints
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoseResult:
        kp = np.asarray(data["keypoints"], dtype=np.float32).reshape(18, 3)
        return cls(
            keypoints=kp,
            size=(int(data["size"][0]), int(data["size"][1])),
            detected=bool(data["detected"]),
            confidence=float(data["confidence"]),
            person_mask=None,
            source=str(data.get("source", "mediapipe")),
        )


# --- estimation ----------------------------------------------------------------------------------


def _load_pose() -> Any:
    import mediapipe as mp  # heavy import: only when a pose is first needed

    return mp.solutions.pose.Pose(
        static_image_mode=True,
        model_complexity=1,  # the only complexity whose weights ship in the wheel
        enable_segmentation=True,
        min_detection_confidence=0.5,
    )


def estimate_pose(image: Image.Image | np.ndarray) -> PoseResult:
    """Detect one person's pose; raise NoPoseFoundError when there is none."""
    rgb = _as_rgb_array(image)
    height, width = rgb.shape[:2]
    small = _downscale(rgb, INFERENCE_MAX_SIDE)
    pose = models.get(_POSE_KEY, _load_pose)
    with _POSE_LOCK:
        result = pose.process(small)
    if result.pose_landmarks is None:
        raise NoPoseFoundError(
            "No person was found in this photo. If the garment is on a hanger, a mannequin or "
            "laid flat, choose a standard pose instead."
        )
    keypoints = _to_body18(result.pose_landmarks.landmark, width, height)
    person_mask = _person_mask(result.segmentation_mask, width, height)
    torso = keypoints[[R_SHOULDER, L_SHOULDER, R_HIP, L_HIP], 2]
    if keypoints[R_SHOULDER, 2] == 0 and keypoints[L_SHOULDER, 2] == 0:
        raise NoPoseFoundError(
            "No shoulders could be found in this photo, so the body pose is unknown. Choose a "
            "standard pose instead, or upload a photo that shows the upper body."
        )
    return PoseResult(
        keypoints=keypoints,
        size=(width, height),
        detected=True,
        confidence=float(torso.mean()),
        person_mask=person_mask,
    )


def _as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("expected an RGB image")
    return np.ascontiguousarray(image, dtype=np.uint8)


def _downscale(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    factor = max_side / max(h, w)
    if factor >= 1:
        return rgb
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _to_body18(landmarks: Any, width: int, height: int) -> np.ndarray:
    """Normalised BlazePose landmarks -> (18, 3) pixel keypoints with missing ones zeroed."""
    kp = np.full((18, 3), -1.0, dtype=np.float32)
    kp[:, 2] = 0.0
    for index, mp_index in _FROM_MEDIAPIPE.items():
        lm = landmarks[mp_index]
        inside = -_OUTSIDE_MARGIN <= lm.x <= 1 + _OUTSIDE_MARGIN and (
            -_OUTSIDE_MARGIN <= lm.y <= 1 + _OUTSIDE_MARGIN
        )
        if lm.visibility >= MIN_KEYPOINT_CONFIDENCE and inside:
            kp[index] = (
                min(max(lm.x, 0.0), 1.0) * (width - 1),
                min(max(lm.y, 0.0), 1.0) * (height - 1),
                lm.visibility,
            )
    if kp[R_SHOULDER, 2] > 0 and kp[L_SHOULDER, 2] > 0:
        x, y = (kp[R_SHOULDER, :2] + kp[L_SHOULDER, :2]) / 2
        kp[NECK] = (x, y, min(kp[R_SHOULDER, 2], kp[L_SHOULDER, 2]))
    return kp


def _person_mask(seg: np.ndarray | None, width: int, height: int) -> np.ndarray | None:
    if seg is None:
        return None
    # resize the soft mask first, threshold after: smoother edges than resizing a binary mask
    soft = cv2.resize(seg.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.where(soft >= 0.5, 255, 0).astype(np.uint8)


# --- standard poses ------------------------------------------------------------------------------

#: a front-facing standing person, arms relaxed slightly away from the body, in fractions of a
#: 3:4 portrait frame; values were taken from a median of the sample e-commerce photos
_FULL_BODY = {
    NOSE: (0.500, 0.105),
    NECK: (0.500, 0.190),
    R_SHOULDER: (0.405, 0.195),
    R_ELBOW: (0.375, 0.330),
    R_WRIST: (0.365, 0.455),
    L_SHOULDER: (0.595, 0.195),
    L_ELBOW: (0.625, 0.330),
    L_WRIST: (0.635, 0.455),
    R_HIP: (0.450, 0.475),
    R_KNEE: (0.450, 0.690),
    R_ANKLE: (0.455, 0.895),
    L_HIP: (0.550, 0.475),
    L_KNEE: (0.550, 0.690),
    L_ANKLE: (0.545, 0.895),
    R_EYE: (0.485, 0.090),
    L_EYE: (0.515, 0.090),
    R_EAR: (0.465, 0.100),
    L_EAR: (0.535, 0.100),
}
#: head to mid-thigh framing, as tops are usually shot
_UPPER_BODY = {
    NOSE: (0.500, 0.160),
    NECK: (0.500, 0.300),
    R_SHOULDER: (0.335, 0.310),
    R_ELBOW: (0.285, 0.530),
    R_WRIST: (0.270, 0.740),
    L_SHOULDER: (0.665, 0.310),
    L_ELBOW: (0.715, 0.530),
    L_WRIST: (0.730, 0.740),
    R_HIP: (0.415, 0.760),
    L_HIP: (0.585, 0.760),
    R_EYE: (0.475, 0.135),
    L_EYE: (0.525, 0.135),
    R_EAR: (0.440, 0.150),
    L_EAR: (0.560, 0.150),
}
_TEMPLATE_FOR_CATEGORY = {"top": "upper_body"}


def standard_pose(category: str, size: tuple[int, int]) -> PoseResult:
    """A canonical front-facing standing pose for photos without a person (hanger, flat lay).

    Tops use an upper-body framing; dresses, bottoms and full outfits a full-body one. The
    template keeps its 3:4 proportions and is centred in ``size``.
    """
    name = _TEMPLATE_FOR_CATEGORY.get(category, "full_body")
    template = _UPPER_BODY if name == "upper_body" else _FULL_BODY
    width, height = size
    # fit a 3:4 box inside the frame so the body is never stretched
    box_h = min(height, width * 4 / 3)
    box_w = box_h * 3 / 4
    left, top = (width - box_w) / 2, (height - box_h) / 2
    kp = np.full((18, 3), -1.0, dtype=np.float32)
    kp[:, 2] = 0.0
    for index, (fx, fy) in template.items():
        kp[index] = (left + fx * box_w, top + fy * box_h, 1.0)
    return PoseResult(
        keypoints=kp,
        size=(int(width), int(height)),
        detected=False,
        confidence=1.0,
        person_mask=None,
        source=f"standard:{name}",
    )


# --- rendering -----------------------------------------------------------------------------------


def render_openpose(
    keypoints: np.ndarray | PoseResult, size: tuple[int, int] | None = None
) -> Image.Image:
    """The OpenPose control image: coloured limbs and joints on black, as controlnet_aux draws.

    Limbs are ellipses in their colour at 60 % intensity, joints full-colour circles on top.
    Line widths follow controlnet_aux's 4 px at a 512 px short side, scaled to ``size``.
    """
    if isinstance(keypoints, PoseResult):
        size = size or keypoints.size
        kp = keypoints.scaled(size).keypoints if size != keypoints.size else keypoints.keypoints
    else:
        if size is None:
            raise ValueError("size is required with a bare keypoint array")
        kp = np.asarray(keypoints, dtype=np.float32)
    width, height = size
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    unit = max(1, round(4 * min(width, height) / 512))
    for (a, b), color in zip(LIMB_SEQ, COLORS, strict=False):
        p, q = kp[a - 1], kp[b - 1]
        if p[2] <= 0 or q[2] <= 0:
            continue
        _draw_limb(canvas, (p[0], p[1]), (q[0], q[1]), unit, color)
    for (x, y, conf), color in zip(kp, COLORS, strict=True):
        if conf > 0:
            cv2.circle(canvas, (int(x), int(y)), unit, color, thickness=-1)
    return Image.fromarray(canvas)


def _draw_limb(
    canvas: np.ndarray,
    p: tuple[float, float],
    q: tuple[float, float],
    width: int,
    color: tuple[int, int, int],
) -> None:
    cx, cy = (p[0] + q[0]) / 2, (p[1] + q[1]) / 2
    length = math.hypot(p[0] - q[0], p[1] - q[1])
    angle = math.degrees(math.atan2(p[1] - q[1], p[0] - q[0]))
    polygon = cv2.ellipse2Poly((int(cx), int(cy)), (int(length / 2), width), int(angle), 0, 360, 1)
    cv2.fillConvexPoly(canvas, polygon, [int(c * 0.6) for c in color])
