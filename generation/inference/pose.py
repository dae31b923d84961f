"""Body pose: mediapipe landmarks mapped to the OpenPose body-18 (COCO) layout.

ControlNet's OpenPose models were trained on control images drawn in the body-18 layout, so we
convert mediapipe's 33 BlazePose landmarks to those 18 keypoints. The layout, ``PoseResult``,
the standard poses and the control image (``render_openpose``, drawn with the same limb pairs
and colours as controlnet_aux's ``draw_bodypose``; controlnet-aux itself cannot be installed next
to CPU torch, see docs/analysis.md) live in ``skeleton``, which needs neither OpenCV nor
mediapipe; this module re-exports them.

Coordinates are pixels of the image passed in; confidence is mediapipe's per-landmark
visibility. A keypoint is *missing* (confidence 0, x = y = -1) when mediapipe is unsure or
puts it outside the frame (e.g. knees of an upper-body photo).
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np
from PIL import Image

from .cache import models
from .errors import NoPoseFoundError
from .skeleton import (
    COLORS,
    KEYPOINT_NAMES,
    L_ANKLE,
    L_EAR,
    L_ELBOW,
    L_EYE,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    LIMB_SEQ,
    NECK,
    NOSE,
    R_ANKLE,
    R_EAR,
    R_ELBOW,
    R_EYE,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    PoseResult,
    render_openpose,
    standard_pose,
)

__all__ = [
    "COLORS",
    "INFERENCE_MAX_SIDE",
    "KEYPOINT_NAMES",
    "LIMB_SEQ",
    "L_ANKLE",
    "L_EAR",
    "L_ELBOW",
    "L_EYE",
    "L_HIP",
    "L_KNEE",
    "L_SHOULDER",
    "L_WRIST",
    "MIN_KEYPOINT_CONFIDENCE",
    "NECK",
    "NOSE",
    "R_ANKLE",
    "R_EAR",
    "R_ELBOW",
    "R_EYE",
    "R_HIP",
    "R_KNEE",
    "R_SHOULDER",
    "R_WRIST",
    "PoseResult",
    "estimate_pose",
    "render_openpose",
    "standard_pose",
]

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

#: below this visibility a landmark is treated as missing
MIN_KEYPOINT_CONFIDENCE = 0.5
#: mediapipe runs on a copy whose long side is at most this (it works on 256 px crops anyway)
INFERENCE_MAX_SIDE = 640
#: a landmark this far outside the frame (fraction of the side) is missing, not clipped
_OUTSIDE_MARGIN = 0.02

_POSE_KEY = "mediapipe.pose.c1.seg"
# one mediapipe graph per process, and graphs are not thread-safe: calls are serialised
_POSE_LOCK = threading.Lock()


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
