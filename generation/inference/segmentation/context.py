"""Step 1, the context: everything the backends share, computed once per photo at the working
resolution (person mask, face box, head zone, skin model, the seller's hints)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..cache import models
from ..pose import L_EAR, L_EYE, NOSE, R_EAR, R_EYE, PoseResult
from .hints import MaskHints
from .primitives import (
    BG,
    FG,
    PR_BG,
    PR_FG,
    WORK_SIDE,
    _Body,
    _grabcut,
    _ip,
    _largest_component,
    _pt,
)


@dataclass
class Context:
    """Everything the backends share, computed once per photo at the working resolution."""

    full: np.ndarray  # RGB uint8, the analysed image
    work: np.ndarray  # RGB uint8, long side WORK_SIDE
    scale: float  # work / full
    pose: PoseResult | None  # at work resolution; None when no person
    person: np.ndarray  # bool, work resolution
    person_full: np.ndarray  # uint8 0/255, full resolution
    head: np.ndarray  # bool, work resolution: face + hair zone (never garment)
    head_full: np.ndarray  # bool, full resolution
    skin: np.ndarray  # float32 0..1 skin likelihood, work resolution
    face_box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 full resolution
    include: np.ndarray | None = None  # bool, work resolution: seller's include hints
    exclude: np.ndarray | None = None  # bool, work resolution: seller's exclude hints

    @property
    def has_person(self) -> bool:
        return self.pose is not None

    @property
    def size(self) -> tuple[int, int]:
        return self.work.shape[1], self.work.shape[0]

    @classmethod
    def build(
        cls, rgb: np.ndarray, pose: PoseResult | None, hints: MaskHints | None = None
    ) -> Context:
        height, width = rgb.shape[:2]
        scale = min(1.0, WORK_SIDE / max(height, width))
        wsize = (max(1, round(width * scale)), max(1, round(height * scale)))
        work = cv2.resize(rgb, wsize, interpolation=cv2.INTER_AREA) if scale < 1 else rgb.copy()
        if pose is not None and not pose.detected:
            pose = None  # a template pose says nothing about this photo
        wpose = pose.scaled(wsize) if pose is not None else None

        if wpose is not None and wpose.person_mask is not None:
            person = wpose.person_mask > 0
        elif wpose is not None:
            person = _selfie_mask(work)
        else:
            person = _foreground_mask(work)
        face_box = _detect_face(rgb, pose.scaled((width, height)) if pose else None)
        head = _head_zone(wsize, wpose, face_box, scale)
        skin = _skin_likelihood(work, wpose, face_box, scale)
        person_full = cv2.resize(person.astype(np.uint8) * 255, (width, height))
        person_full = np.where(person_full >= 128, 255, 0).astype(np.uint8)
        head_full = cv2.resize(head.astype(np.uint8), (width, height)) > 0
        include = exclude = None
        if hints is not None and not hints.is_empty():
            inc, exc = hints.rasterize((width, height))
            include = cv2.resize(inc.astype(np.uint8), wsize, interpolation=cv2.INTER_AREA) > 0
            exclude = cv2.resize(exc.astype(np.uint8), wsize, interpolation=cv2.INTER_AREA) > 0
        return cls(
            full=rgb,
            work=work,
            scale=scale,
            pose=wpose,
            person=person,
            person_full=person_full,
            head=head,
            head_full=head_full,
            skin=skin,
            face_box=face_box,
            include=include,
            exclude=exclude,
        )


_MP_LOCK = threading.Lock()


def _load_face_detector() -> Any:
    import mediapipe as mp

    # model 1 = full range: faces are small in full-body catalogue photos
    return mp.solutions.face_detection.FaceDetection(
        model_selection=1, min_detection_confidence=0.5
    )


def _load_selfie() -> Any:
    import mediapipe as mp

    return mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)


def _detect_face(rgb: np.ndarray, pose: PoseResult | None) -> tuple[int, int, int, int] | None:
    """The face box (full-resolution pixels) of the posed person, or None.

    Street photos often hold other people: with a pose, we take the detection nearest to the
    pose's face keypoints and refuse one that is not on this person's head.
    """
    height, width = rgb.shape[:2]
    small_scale = min(1.0, 640 / max(height, width))
    small = (
        cv2.resize(rgb, (round(width * small_scale), round(height * small_scale)))
        if small_scale < 1
        else rgb
    )
    detector = models.get("mediapipe.face_detection.full", _load_face_detector)
    with _MP_LOCK:
        result = detector.process(small)
    if not result.detections:
        return None
    boxes = []
    for det in result.detections:
        box = det.location_data.relative_bounding_box
        x0, y0 = box.xmin * width, box.ymin * height
        x1, y1 = x0 + box.width * width, y0 + box.height * height
        boxes.append((float(det.score[0]), x0, y0, x1, y1))
    anchor = _face_anchor(pose)
    if anchor is not None:
        centre, reach = anchor

        def distance(b: tuple[float, float, float, float, float]) -> float:
            return float(np.hypot((b[1] + b[3]) / 2 - centre[0], (b[2] + b[4]) / 2 - centre[1]))

        boxes = [b for b in boxes if distance(b) <= reach]
        if not boxes:
            return None
        best = min(boxes, key=distance)
    else:
        best = max(boxes, key=lambda b: b[0])
    _, x0, y0, x1, y1 = best
    return (
        int(max(0, x0)),
        int(max(0, y0)),
        int(min(width, x1)),
        int(min(height, y1)),
    )


def _face_anchor(pose: PoseResult | None) -> tuple[np.ndarray, float] | None:
    """Where the posed person's face is, and how far a face box centre may be from it."""
    if pose is None:
        return None
    pts = [_pt(pose, i) for i in (NOSE, R_EYE, L_EYE, R_EAR, L_EAR)]
    found = [p for p in pts if p is not None]
    if not found:
        return None
    body = _Body.from_pose(pose)
    reach = body.shoulder_width * 0.6 if body else 50.0
    return np.mean(found, axis=0), reach


def _selfie_mask(work: np.ndarray) -> np.ndarray:
    seg = models.get("mediapipe.selfie_segmentation", _load_selfie)
    with _MP_LOCK:
        result = seg.process(work)
    return result.segmentation_mask > 0.5


def _foreground_mask(work: np.ndarray) -> np.ndarray:
    """The main object when no person was found (mannequin, hanger, flat lay).

    The border of a product photo is background. Pixels far (in Lab) from every border colour
    are probably the object; the threshold adapts to the photo (Otsu), because a beige dress on
    a light grey sweep differs from it by only a few units. GrabCut then refines, helped by a
    centre prior (sellers frame the garment in the middle).
    """
    h, w = work.shape[:2]
    border = max(2, round(0.03 * max(h, w)))
    dist = _border_distance(work, border)
    scaled = np.clip(dist * 4, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    threshold = float(np.clip(otsu / 4, 5.0, 18.0))
    # background flood: pixels close to a border colour and connected to the border; a studio
    # sweep is reached everywhere, the garment (edged by its own shading) is not
    near = (dist <= max(3.0, threshold * 0.5)).astype(np.uint8)
    _, comp = cv2.connectedComponents(near, connectivity=4)
    edge_ids = np.unique(
        np.concatenate(
            [
                comp[:border].ravel(),
                comp[-border:].ravel(),
                comp[:, :border].ravel(),
                comp[:, -border:].ravel(),
            ]
        )
    )
    flooded = np.isin(comp, edge_ids[edge_ids > 0])
    likely = dist > threshold
    if _plain_border(work, border):
        # only a plain backdrop floods cleanly; in a room (mannequin photos) the flood leaks
        # through walls and furniture and would call them garment
        likely |= ~flooded
    yy, xx = np.mgrid[0:h, 0:w]
    centre = ((xx - w / 2) / (0.15 * w)) ** 2 + ((yy - h * 0.5) / (0.22 * h)) ** 2 <= 1
    labels = np.full((h, w), PR_BG, np.uint8)
    labels[likely] = PR_FG
    labels[centre & (dist > threshold * 2)] = FG
    labels[:border, :] = BG
    labels[-border:, :] = BG
    labels[:, :border] = BG
    labels[:, -border:] = BG
    if not np.isin(labels, (FG, PR_FG)).any():
        labels[centre] = PR_FG
    out = _grabcut(work, labels, iterations=3)
    return _largest_component(out)


def _plain_border(work: np.ndarray, border: int) -> bool:
    """True for a studio sweep, a wall or a floor: the border's brightness barely varies."""
    grey = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)
    ring = np.concatenate(
        [
            grey[:border].ravel(),
            grey[-border:].ravel(),
            grey[:, :border].ravel(),
            grey[:, -border:].ravel(),
        ]
    )
    low, high = np.percentile(ring, [10, 90])
    return bool(high - low < 60)


def _border_distance(work: np.ndarray, border: int) -> np.ndarray:
    """Per-pixel Lab distance to the nearest of the image border's main colours."""
    lab = cv2.cvtColor(work, cv2.COLOR_RGB2LAB).astype(np.float32)
    ring = np.concatenate(
        [
            lab[:border].reshape(-1, 3),
            lab[-border:].reshape(-1, 3),
            lab[:, :border].reshape(-1, 3),
            lab[:, -border:].reshape(-1, 3),
        ]
    )
    k = min(8, len(ring))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    _, _, centres = cv2.kmeans(ring, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    flat = lab.reshape(-1, 3)
    dist = np.min(np.linalg.norm(flat[:, None, :] - centres[None, :, :], axis=2), axis=1)
    return dist.reshape(work.shape[:2])


# --- head and skin --------------------------------------------------------------------------------


def _head_zone(
    size: tuple[int, int],
    pose: PoseResult | None,
    face_box: tuple[int, int, int, int] | None,
    scale: float,
) -> np.ndarray:
    """Face and hair: an ellipse around the face keypoints and the detected face box."""
    width, height = size
    zone = np.zeros((height, width), np.uint8)
    if face_box is not None:
        x0, y0, x1, y1 = (v * scale for v in face_box)
        fw, fh = x1 - x0, y1 - y0
        centre = ((x0 + x1) / 2, y0 + fh * 0.45)
        axes = (fw * 0.75, fh * 0.95)
        cv2.ellipse(zone, _ip(np.array(centre)), _ip(np.array(axes)), 0, 0, 360, 1, -1)
    if pose is not None:
        face_pts = [_pt(pose, i) for i in (NOSE, R_EYE, L_EYE, R_EAR, L_EAR)]
        pts = np.array([p for p in face_pts if p is not None])
        if len(pts) >= 2:
            centre = pts.mean(axis=0)
            spread = float(np.ptp(pts[:, 0])) if len(pts) > 2 else 0.0
            body = _Body.from_pose(pose)
            ref = body.shoulder_width * 0.32 if body else spread
            r = max(spread * 0.75, ref, 4.0)
            # the head ellipse is taller than wide and extends up for hair
            cv2.ellipse(
                zone,
                _ip(centre - (0, r * 0.35)),
                _ip(np.array((r * 1.05, r * 1.4))),
                0,
                0,
                360,
                1,
                -1,
            )
    return zone > 0


def _skin_likelihood(
    work: np.ndarray,
    pose: PoseResult | None,
    face_box: tuple[int, int, int, int] | None,
    scale: float,
) -> np.ndarray:
    """Per-pixel skin likelihood from a colour model sampled on the face (YCrCb).

    Sampling the seller's model's own face adapts to every skin tone; a generic skin range
    is the fallback when no face is visible (back view, cropped head).
    """
    ycc = cv2.cvtColor(work, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    sample = _face_sample(ycc, pose, face_box, scale)
    crcb = ycc[..., 1:]
    if sample is not None and len(sample) >= 20:
        mean = np.median(sample[:, 1:], axis=0)
        cov = np.cov(sample[:, 1:].T) + np.eye(2) * 6.0
        inv = np.linalg.inv(cov)
        d = crcb - mean
        d2 = np.einsum("...i,ij,...j->...", d, inv, d)
        like = np.exp(-0.5 * d2 / 2.0)  # widened: arms are lit differently from the face
        y_ref = float(np.median(sample[:, 0]))
        lum = ycc[..., 0]
        like *= ((lum > y_ref * 0.35) & (lum < min(255.0, y_ref * 1.6 + 20))).astype(np.float32)
    else:
        cr, cb = crcb[..., 0], crcb[..., 1]
        like = ((cr > 135) & (cr < 175) & (cb > 80) & (cb < 130)).astype(np.float32) * 0.8
    return like.astype(np.float32)


def _face_sample(
    ycc: np.ndarray,
    pose: PoseResult | None,
    face_box: tuple[int, int, int, int] | None,
    scale: float,
) -> np.ndarray | None:
    h, w = ycc.shape[:2]
    if face_box is not None:
        x0, y0, x1, y1 = (v * scale for v in face_box)
        cx, cy = (x0 + x1) / 2, y0 + (y1 - y0) * 0.6
        rx, ry = (x1 - x0) * 0.22, (y1 - y0) * 0.18
    elif pose is not None and pose.has(NOSE) and pose.has(R_EYE) and pose.has(L_EYE):
        nose, re, le = _pt(pose, NOSE), _pt(pose, R_EYE), _pt(pose, L_EYE)
        eye_d = float(np.linalg.norm(le - re))
        cx, cy = float(nose[0]), float(nose[1]) + eye_d * 0.1
        rx, ry = eye_d * 0.5, eye_d * 0.35
    else:
        return None
    xa, xb = int(max(0, cx - rx)), int(min(w, cx + rx + 1))
    ya, yb = int(max(0, cy - ry)), int(min(h, cy + ry + 1))
    if xb - xa < 2 or yb - ya < 2:
        return None
    return ycc[ya:yb, xa:xb].reshape(-1, 3)
