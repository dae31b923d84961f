"""Pose estimation on the real sample photos, the body-18 mapping, rendering and templates."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation.inference import pose as pose_mod
from generation.inference.cache import models
from generation.inference.errors import NoPoseFoundError
from generation.inference.pose import (
    COLORS,
    L_ANKLE,
    L_HIP,
    L_SHOULDER,
    LIMB_SEQ,
    NECK,
    NOSE,
    R_ANKLE,
    R_HIP,
    R_SHOULDER,
    PoseResult,
    estimate_pose,
    render_openpose,
    standard_pose,
)

HUMANS = (
    "runway_man",
    "shop_knitdress",
    "shop_tank",
    "shop_tietop",
    "street_0223",
    "street_0482",
    "street_0630",
    "street_1037",
    "street_1740",
    "vitonhd_00034",
    "vitonhd_00035",
    "vitonhd_01992",
)


def _open(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


@pytest.fixture(scope="module")
def person_poses(samples_dir: Path) -> dict[str, PoseResult | None]:
    out: dict[str, PoseResult | None] = {}
    for name in HUMANS:
        try:
            out[name] = estimate_pose(_open(samples_dir / "persons" / f"{name}.jpg"))
        except NoPoseFoundError:
            out[name] = None
    return out


def test_pose_found_on_most_person_photos(person_poses):
    found = [name for name, pose in person_poses.items() if pose is not None]
    # measured: 12 of 12; allow one miss for a future mediapipe build
    assert len(found) >= len(HUMANS) - 1, f"pose found on {found}"


def test_found_poses_are_plausible(person_poses):
    for name, pose in person_poses.items():
        if pose is None:
            continue
        kp = pose.keypoints
        w, h = pose.size
        assert kp.shape == (18, 3) and kp.dtype == np.float32
        assert pose.detected and pose.confidence > 0.5, name
        found = kp[:, 2] > 0
        assert found.sum() >= 10, name
        # every found keypoint lies in the picture; missing ones are (-1, -1, 0)
        assert (kp[found, 0] >= 0).all() and (kp[found, 0] <= w).all(), name
        assert (kp[found, 1] >= 0).all() and (kp[found, 1] <= h).all(), name
        assert (kp[~found, :2] == -1).all(), name
        for index in (NOSE, NECK, R_SHOULDER, L_SHOULDER, R_HIP, L_HIP):
            assert pose.has(index), (name, index)
        # head above shoulders above hips above ankles
        assert kp[NOSE, 1] < kp[NECK, 1], name
        assert max(kp[R_SHOULDER, 1], kp[L_SHOULDER, 1]) < min(kp[R_HIP, 1], kp[L_HIP, 1]), name
        for ankle, hip in ((R_ANKLE, R_HIP), (L_ANKLE, L_HIP)):
            if pose.has(ankle):
                assert kp[ankle, 1] > kp[hip, 1], name
        # a human-sized torso (street_0630 is a side view, so no shoulder-width test)
        torso = kp[R_HIP, 1] - kp[NECK, 1]
        assert 0.1 * h < torso < 0.7 * h, name
        # the neck is the middle of the shoulders
        assert np.allclose(kp[NECK, :2], (kp[R_SHOULDER, :2] + kp[L_SHOULDER, :2]) / 2, atol=1)
        # the person mask covers the torso
        mask = pose.person_mask
        assert mask is not None and mask.shape == (h, w) and set(np.unique(mask)) <= {0, 255}
        for index in (NECK, R_HIP, L_HIP):
            x, y = kp[index, :2].astype(int)
            assert mask[y, x] == 255, (name, index)
        assert 0.05 < (mask > 0).mean() < 0.9, name


def test_pose_json_round_trip(person_poses):
    pose = next(p for p in person_poses.values() if p is not None)
    data = json.loads(json.dumps(pose.to_dict()))
    back = PoseResult.from_dict(data)
    assert back.size == pose.size and back.detected and back.person_mask is None
    assert np.allclose(back.keypoints, pose.keypoints, atol=0.01)
    assert data["format"] == "openpose-body18" and len(data["keypoints"]) == 18


def test_no_pose_on_an_empty_picture():
    with pytest.raises(NoPoseFoundError) as info:
        estimate_pose(Image.new("RGB", (400, 600), (240, 240, 240)))
    assert "standard pose" in str(info.value)


def test_mannequin_has_no_human_pose(samples_dir):
    # a headless dress form: no pose; the seller is offered a standard pose instead
    with pytest.raises(NoPoseFoundError):
        estimate_pose(_open(samples_dir / "persons" / "mannequin_front.jpg"))


def test_large_images_are_downscaled_and_mapped_back(samples_dir, person_poses):
    small = _open(samples_dir / "persons" / "shop_tank.jpg")  # 564x1000
    big = small.resize((small.width * 2, small.height * 2), Image.Resampling.BICUBIC)
    pose_big = estimate_pose(big)
    pose_small = person_poses["shop_tank"]
    assert pose_big.size == big.size and pose_big.person_mask.shape == (big.height, big.width)
    both = (pose_big.keypoints[:, 2] > 0) & (pose_small.keypoints[:, 2] > 0)
    diff = np.abs(pose_big.keypoints[both, :2] / 2 - pose_small.keypoints[both, :2])
    assert np.median(diff) < 0.02 * small.height


def test_pose_model_is_loaded_once_and_thread_safe(samples_dir):
    image = _open(samples_dir / "persons" / "vitonhd_00035.jpg")
    first = estimate_pose(image)
    results: list[PoseResult] = []

    def run() -> None:
        results.append(estimate_pose(image))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert models.load_counts[pose_mod._POSE_KEY] == 1
    for other in results:
        assert np.allclose(other.keypoints, first.keypoints, atol=1.0)


def test_render_openpose_draws_the_controlnet_skeleton():
    pose = standard_pose("dress", (512, 768))
    image = render_openpose(pose)
    assert image.size == (512, 768) and image.mode == "RGB"
    arr = np.asarray(image)
    assert arr[2, 2].tolist() == [0, 0, 0]  # black background
    kp = pose.keypoints
    # joints: full colour circles in the 18-colour order
    for index in (NOSE, NECK, R_SHOULDER, L_HIP):
        x, y = kp[index, :2].round().astype(int)
        assert arr[y, x].tolist() == list(COLORS[index]), index
    # limbs: 60 % of their colour; limb 0 joins neck (1) and right shoulder (2): red
    mid = ((kp[NECK, :2] + kp[R_SHOULDER, :2]) / 2).round().astype(int)
    assert arr[mid[1], mid[0]].tolist() == [153, 0, 0]
    # only black + the 18 colours + their 60 % versions appear
    palette = {(0, 0, 0)} | set(COLORS) | {tuple(int(c * 0.6) for c in col) for col in COLORS}
    assert {tuple(p) for p in arr.reshape(-1, 3)} <= palette


def test_render_skips_missing_keypoints_and_rescales():
    pose = standard_pose("dress", (300, 400))
    pose.keypoints[R_SHOULDER] = (-1, -1, 0)
    arr = np.asarray(render_openpose(pose, (600, 800)))
    assert arr.shape == (800, 600, 3)
    assert not (arr == COLORS[R_SHOULDER]).all(axis=-1).any()  # no right-shoulder joint drawn
    with pytest.raises(ValueError):
        render_openpose(pose.keypoints)  # a bare array needs a size


def _render_with_opencv(pose: PoseResult, size: tuple[int, int]) -> np.ndarray:
    """The control image as OpenCV drew it before ``skeleton.render_openpose`` (the reference)."""
    import math

    import cv2

    kp = pose.scaled(size).keypoints if size != pose.size else pose.keypoints
    width, height = size
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    unit = max(1, round(4 * min(width, height) / 512))
    for (a, b), color in zip(LIMB_SEQ, COLORS, strict=False):
        p, q = kp[a - 1], kp[b - 1]
        if p[2] <= 0 or q[2] <= 0:
            continue
        cx, cy = (p[0] + q[0]) / 2, (p[1] + q[1]) / 2
        length = math.hypot(p[0] - q[0], p[1] - q[1])
        angle = math.degrees(math.atan2(p[1] - q[1], p[0] - q[0]))
        axes = (int(length / 2), unit)
        polygon = cv2.ellipse2Poly((int(cx), int(cy)), axes, int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, [int(c * 0.6) for c in color])
    for (x, y, conf), color in zip(kp, COLORS, strict=True):
        if conf > 0:
            cv2.circle(canvas, (int(x), int(y)), unit, color, thickness=-1)
    return canvas


def _random_poses(count: int) -> list[PoseResult]:
    """Wild poses: limbs across the frame and partly outside it, missing keypoints."""
    rng = np.random.default_rng(7)
    poses = []
    for _ in range(count):
        size = (int(rng.integers(64, 900)), int(rng.integers(64, 900)))
        kp = np.zeros((18, 3), dtype=np.float32)
        kp[:, 0] = rng.uniform(-0.1, 1.1, 18) * size[0]
        kp[:, 1] = rng.uniform(-0.1, 1.1, 18) * size[1]
        kp[:, 2] = rng.uniform(0, 1, 18) > 0.2
        poses.append(PoseResult(kp, size, True, 1.0))
    return poses


def test_the_light_renderer_draws_what_opencv_drew(person_poses):
    """``render_openpose`` (numpy + PIL, so the web process can draw a standard pose) gives the
    generator the control image OpenCV drew: same colours, limb order and thickness. Measured
    with OpenCV 4.11 it is pixel-identical; the bound leaves room for single edge pixels."""
    cases = [
        (standard_pose(category, size), size)
        for category in ("dress", "top")
        for size in ((512, 768), (768, 1024), (1000, 1000), (300, 400), (2000, 3000), (64, 96))
    ]
    cases += [(pose, pose.size) for pose in person_poses.values() if pose is not None]
    cases += [(pose, (pose.size[0] * 2, pose.size[1] * 2)) for pose, _ in cases[:3]]  # rescaled
    cases += [(pose, pose.size) for pose in _random_poses(20)]
    for pose, size in cases:
        light = np.asarray(render_openpose(pose, size)).astype(int)
        reference = _render_with_opencv(pose, size).astype(int)
        differing = (light != reference).any(axis=-1).sum()
        drawn = (reference > 0).any(axis=-1).sum()
        assert np.abs(light - reference).mean() < 0.02, (pose.source, size)
        assert differing <= 0.001 * drawn, (pose.source, size, differing, drawn)


def test_standard_pose_templates():
    for category, size in (("dress", (768, 1024)), ("bottom", (600, 1200)), ("top", (1000, 1000))):
        pose = standard_pose(category, size)
        kp = pose.keypoints
        assert not pose.detected and pose.source.startswith("standard:")
        assert pose.size == size and pose.person_mask is None
        assert (kp[kp[:, 2] > 0, 0] < size[0]).all() and (kp[kp[:, 2] > 0, 1] < size[1]).all()
        assert kp[NOSE, 1] < kp[NECK, 1] < kp[R_HIP, 1]
        assert kp[R_SHOULDER, 0] < kp[NECK, 0] < kp[L_SHOULDER, 0]  # facing the camera
        assert abs(kp[NECK, 0] - size[0] / 2) < 2  # centred
        json.dumps(pose.to_dict())
    assert standard_pose("dress", (768, 1024)).has(R_ANKLE)
    assert not standard_pose("top", (768, 1024)).has(R_ANKLE)  # upper-body framing
