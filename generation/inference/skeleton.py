"""The OpenPose body-18 skeleton: its keypoints, the standard poses, and the control image.

ControlNet's OpenPose models were trained on control images drawn in the body-18 (COCO) layout
with controlnet_aux's ``draw_bodypose`` limb pairs and colours; ``render_openpose`` draws that
image. Only numpy and PIL: the web process uses this module (the seller's "use the standard
pose" action draws the skeleton in the request), and it must not load the ML stack.
``generation.inference.pose`` (mediapipe estimation) builds on it and re-exports its names.

``render_openpose`` draws exactly what OpenCV's ``ellipse2Poly`` + ``fillConvexPoly`` (limbs) and
``circle`` (joints) drew before, pixel for pixel: the same integer polygons, scan-converted and
clipped the way OpenCV does it, without anti-aliasing (tests/inference/test_pose.py compares the
two drawings).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

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
        if self.person_mask is not None:  # only detected poses carry one: the worker's case
            import cv2  # the ML stack, loaded lazily: the web process only uses standard poses

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


# --- standard poses ------------------------------------------------------------------------------

#: each right-side keypoint and its left-side counterpart
_LEFT_OF = {
    R_SHOULDER: L_SHOULDER,
    R_ELBOW: L_ELBOW,
    R_WRIST: L_WRIST,
    R_HIP: L_HIP,
    R_KNEE: L_KNEE,
    R_ANKLE: L_ANKLE,
    R_EYE: L_EYE,
    R_EAR: L_EAR,
}


def _mirrored(template: dict[int, tuple[float, float]]) -> dict[int, tuple[float, float]]:
    """A front-facing template completed with its left side, the mirror image of its right.

    The standard poses are symmetric, so each lists only the centre line and the person's right
    (the image's left); the mirror ``x -> 1 - x`` is rounded to the templates' 3 decimals.
    """
    left = {_LEFT_OF[k]: (round(1 - x, 3), y) for k, (x, y) in template.items() if k in _LEFT_OF}
    return template | left


#: a front-facing standing person, arms relaxed slightly away from the body, in fractions of a
#: 3:4 portrait frame; values were taken from a median of the sample e-commerce photos. Per
#: keypoint: (x, y) in the full-body framing, then in the head to mid-thigh framing tops are
#: usually shot in (None: out of that frame).
_CENTRE_AND_RIGHT: dict[int, tuple[tuple[float, float], tuple[float, float] | None]] = {
    NOSE: ((0.500, 0.105), (0.500, 0.160)),
    NECK: ((0.500, 0.190), (0.500, 0.300)),
    R_SHOULDER: ((0.405, 0.195), (0.335, 0.310)),
    R_ELBOW: ((0.375, 0.330), (0.285, 0.530)),
    R_WRIST: ((0.365, 0.455), (0.270, 0.740)),
    R_HIP: ((0.450, 0.475), (0.415, 0.760)),
    R_KNEE: ((0.450, 0.690), None),
    R_ANKLE: ((0.455, 0.895), None),
    R_EYE: ((0.485, 0.090), (0.475, 0.135)),
    R_EAR: ((0.465, 0.100), (0.440, 0.150)),
}
_FULL_BODY = _mirrored({k: full for k, (full, _) in _CENTRE_AND_RIGHT.items()})
_UPPER_BODY = _mirrored({k: upper for k, (_, upper) in _CENTRE_AND_RIGHT.items() if upper})
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

#: limbs are drawn in their colour at this intensity, joints at full colour
LIMB_INTENSITY = 0.6
#: OpenCV's table of sin(degrees) for integer degrees 0..450, which ellipse2Poly uses: float
#: literals with 7 decimals
_SIN_TABLE = np.round(np.sin(np.deg2rad(np.arange(451))), 7).astype(np.float32)
#: OpenCV's fixed-point polygon scan: 16 fraction bits
_XY_SHIFT = 16
_XY_HALF = 1 << (_XY_SHIFT - 1)


def render_openpose(
    keypoints: np.ndarray | PoseResult, size: tuple[int, int] | None = None
) -> Image.Image:
    """The OpenPose control image: coloured limbs and joints on black, as controlnet_aux draws.

    Limbs are ellipses in their colour at 60 % intensity, joints full-colour circles on top.
    Line widths follow controlnet_aux's 4 px at a 512 px short side, scaled to ``size``.
    """
    if isinstance(keypoints, PoseResult):
        size = size or keypoints.size
        kp = keypoints.keypoints
        if size != keypoints.size:  # only the keypoints: the person mask is not drawn
            kp = kp.copy()
            found = kp[:, 2] > 0
            kp[found, 0] *= size[0] / keypoints.size[0]
            kp[found, 1] *= size[1] / keypoints.size[1]
    else:
        if size is None:
            raise ValueError("size is required with a bare keypoint array")
        kp = np.asarray(keypoints, dtype=np.float32)
    width, height = size
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    unit = max(1, round(4 * min(width, height) / 512))
    for p, q, color in _visible_limbs(kp):
        polygon = _limb_polygon(p, q, unit)
        _fill_convex_polygon(canvas, polygon, tuple(int(c * LIMB_INTENSITY) for c in color))
    for (x, y, conf), color in zip(kp, COLORS, strict=True):
        if conf > 0:
            _fill_circle(canvas, (int(x), int(y)), unit, color)
    return Image.fromarray(canvas)


def _visible_limbs(kp: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, tuple[int, ...]]]:
    """The limbs whose two keypoints were found, in drawing order: their ends and colour."""
    for (a, b), color in zip(LIMB_SEQ, COLORS, strict=False):
        p, q = kp[a - 1], kp[b - 1]
        if p[2] <= 0 or q[2] <= 0:
            continue
        yield p, q, color


# The three drawing primitives below reproduce OpenCV's (``ellipse2Poly``, ``fillConvexPoly``
# and ``circle`` with 8-connected lines, as the control images were drawn before) pixel for
# pixel, in numpy: tests/inference/test_pose.py compares them with OpenCV's own drawing.

Point = tuple[int, int]


def _limb_polygon(p: np.ndarray, q: np.ndarray, width: int) -> list[Point]:
    """The limb's ellipse as ``ellipse2Poly(centre, (length / 2, width), angle, 0, 360, 1)``:
    integer centre, axes and angle, a point per degree rounded half to even, repeats dropped.

    ``p`` and ``q`` are float32 keypoint rows; the centre is computed in float32 as before (in
    float64 it can land on the other side of an integer).
    """
    cx, cy = int((p[0] + q[0]) / 2), int((p[1] + q[1]) / 2)
    half_length = int(math.hypot(p[0] - q[0], p[1] - q[1]) / 2)
    angle = int(math.degrees(math.atan2(p[1] - q[1], p[0] - q[0]))) % 360
    cos, sin = float(_SIN_TABLE[450 - angle]), float(_SIN_TABLE[angle])
    degrees = np.arange(361)
    x = half_length * _SIN_TABLE[450 - degrees].astype(np.float64)
    y = width * _SIN_TABLE[degrees].astype(np.float64)
    xs = np.rint(cx + x * cos - y * sin).astype(int).tolist()
    ys = np.rint(cy + x * sin + y * cos).astype(int).tolist()
    points: list[Point] = []
    for point in zip(xs, ys, strict=True):
        if not points or point != points[-1]:
            points.append(point)
    return points if len(points) > 1 else [*points, *points]


def _fill_convex_polygon(canvas: np.ndarray, v: list[Point], color: tuple[int, ...]) -> None:
    """``fillConvexPoly`` (no sub-pixel shift): the edges as 8-connected lines, then the rows
    between the two edges, tracked in fixed point (16 fraction bits) from the topmost vertex."""
    height, width = canvas.shape[:2]
    for start, end in zip([v[-1], *v[:-1]], v, strict=True):
        xs, ys = _line_pixels(start, end, width, height)
        canvas[ys, xs] = color
    n = len(v)
    xs_all, ys_all = [p[0] for p in v], [p[1] for p in v]
    ymin, ymax = min(ys_all), max(ys_all)
    if n < 3 or max(xs_all) < 0 or ymax < 0 or min(xs_all) >= width or ymin >= height:
        return
    ymax = min(ymax, height - 1)
    top = ys_all.index(ymin)
    # per edge: [vertex index, direction, x (fixed point), dx per row, row where it ends]
    edges = [[top, 1, -(1 << _XY_SHIFT), 0, ymin], [top, n - 1, -(1 << _XY_SHIFT), 0, ymin]]
    left_to_do = n  # OpenCV's edge budget: the scan ends once every edge has been walked
    y = ymin
    while True:
        for edge in edges:
            if y < edge[4]:
                continue
            idx0, step = edge[0], edge[1]
            idx = (idx0 + step) % n
            while True:
                left_to_do -= 1
                if left_to_do < 0:
                    break
                ty = v[idx][1]
                if ty > y:
                    xs, xe = v[idx0][0] << _XY_SHIFT, v[idx][0] << _XY_SHIFT
                    edge[2:] = [xs, _c_div((xe - xs) * 2 + (ty - y), 2 * (ty - y)), ty]
                    edge[0] = idx
                    break
                idx0, idx = idx, (idx + step) % n
        if left_to_do < 0:
            break
        if y >= 0:
            x1, x2 = sorted((edges[0][2], edges[1][2]))
            x1, x2 = (x1 + _XY_HALF) >> _XY_SHIFT, (x2 + _XY_HALF) >> _XY_SHIFT
            if x2 >= 0 and x1 < width:
                canvas[y, max(x1, 0) : min(x2, width - 1) + 1] = color
        edges[0][2] += edges[0][3]
        edges[1][2] += edges[1][3]
        y += 1
        if y > ymax:
            break


def _c_div(a: int, b: int) -> int:
    """Integer division truncated toward zero, as C divides."""
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


def _line_pixels(p1: Point, p2: Point, width: int, height: int) -> tuple[list[int], list[int]]:
    """An 8-connected line as OpenCV's ``LineIterator`` walks it: clipped to the image, drawn
    left to right, Bresenham's error term along the major axis."""
    inside = all(0 <= x < width for x in (p1[0], p2[0])) and all(
        0 <= y < height for y in (p1[1], p2[1])
    )
    if not inside:
        clipped = _clip_line(p1, p2, width, height)
        if clipped is None:
            return [], []
        p1, p2 = clipped
    if p2[0] < p1[0]:
        p1, p2 = p2, p1
    (x, y), dx, dy = p1, p2[0] - p1[0], p2[1] - p1[1]
    y_step = -1 if dy < 0 else 1
    dy = abs(dy)
    steep = dy > dx
    major, minor = (dy, dx) if steep else (dx, dy)
    err = major - 2 * minor
    xs, ys = [], []
    for _ in range(major + 1):
        xs.append(x)
        ys.append(y)
        if err < 0:  # a step along both axes
            err += 2 * (major - minor)
            x, y = x + 1, y + y_step
        else:
            err -= 2 * minor
            if steep:
                y += y_step
            else:
                x += 1
    return xs, ys


def _clip_line(p1: Point, p2: Point, width: int, height: int) -> tuple[Point, Point] | None:
    """OpenCV's ``clipLine``: the part of the segment inside the image (integer, truncated)."""
    right, bottom = width - 1, height - 1
    (x1, y1), (x2, y2) = p1, p2

    def outcode(x: int, y: int) -> int:
        return (x < 0) + (x > right) * 2 + (y < 0) * 4 + (y > bottom) * 8

    c1, c2 = outcode(x1, y1), outcode(x2, y2)
    if (c1 & c2) == 0 and (c1 | c2) != 0:
        if c1 & 12:
            a = 0 if c1 < 8 else bottom
            x1 += int((a - y1) * (x2 - x1) / (y2 - y1))
            y1, c1 = a, (x1 < 0) + (x1 > right) * 2
        if c2 & 12:
            a = 0 if c2 < 8 else bottom
            x2 += int((a - y2) * (x2 - x1) / (y2 - y1))
            y2, c2 = a, (x2 < 0) + (x2 > right) * 2
        if (c1 & c2) == 0 and (c1 | c2) != 0:
            if c1:
                a = 0 if c1 == 1 else right
                y1 += int((a - x1) * (y2 - y1) / (x2 - x1))
                x1, c1 = a, 0
            if c2:
                a = 0 if c2 == 1 else right
                y2 += int((a - x2) * (y2 - y1) / (x2 - x1))
                x2, c2 = a, 0
    return ((x1, y1), (x2, y2)) if (c1 | c2) == 0 else None


def _fill_circle(canvas: np.ndarray, centre: Point, radius: int, color: tuple[int, ...]) -> None:
    """``circle(..., thickness=-1)`` (8-connected): OpenCV's integer midpoint circle, drawn as
    horizontal spans clipped to the image."""
    height, width = canvas.shape[:2]
    cx, cy = centre
    err, dx, dy, plus, minus = 0, radius, 0, 1, 2 * radius - 1
    while dx >= dy:
        for y, half in ((cy - dy, dx), (cy + dy, dx), (cy - dx, dy), (cy + dx, dy)):
            x1, x2 = max(cx - half, 0), min(cx + half, width - 1)
            if 0 <= y < height and x1 <= x2:
                canvas[y, x1 : x2 + 1] = color
        dy += 1
        err += plus
        plus += 2
        if err > 0:  # OpenCV: mask = (err <= 0) - 1, applied below
            err -= minus
            dx -= 1
            minus -= 2
