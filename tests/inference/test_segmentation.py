"""Garment masks on the real sample photos: inside the person, never the face, close to the
ground-truth labels, seller hints as hard constraints, backends, and the mask file helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation.inference.errors import ModelMissingError, NoPoseFoundError
from generation.inference.pose import L_EYE, NOSE, R_EYE, PoseResult, estimate_pose
from generation.inference.segmentation import (
    CLOTH_MODEL_FILE,
    MaskHints,
    SegmentationResult,
    Stroke,
    available_backends,
    canonical_category,
    feather,
    mask_from_png,
    mask_to_png,
    segment_garment,
)
from generation.inference.segmentation.context import _detect_face
from tests.support.samples import GROUPS, label_mask, parsing_labels

PERSON_CATEGORY = {
    "runway_man": "top",
    "shop_knitdress": "dress",
    "shop_tank": "top",
    "shop_tietop": "top",
    "street_0223": "dress",
    "street_0482": "top",
    "street_0630": "dress",
    "street_1037": "dress",
    "street_1740": "top",
    "vitonhd_00034": "top",
    "vitonhd_00035": "top",
    "vitonhd_01992": "top",
}
#: (photo, category) -> IoU floor; measured IoU in brackets (bench/analysis.py, docs/analysis.md)
IOU_FLOORS = {
    ("0014", "dress"): 0.80,  # 0.886
    ("0025", "dress"): 0.75,  # 0.863
    ("0027", "dress"): 0.80,  # 0.892
    ("0007", "top"): 0.72,  # 0.830
    ("0015", "top"): 0.82,  # 0.926
    ("0018", "bottom"): 0.88,  # 0.981
    ("0019", "bottom"): 0.82,  # 0.928
}


def _open(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


def _pose_or_none(image: Image.Image) -> PoseResult | None:
    try:
        return estimate_pose(image)
    except NoPoseFoundError:
        return None


@pytest.fixture(scope="module")
def person_results(samples_dir) -> dict[str, tuple[Image.Image, PoseResult, SegmentationResult]]:
    out = {}
    for name, category in PERSON_CATEGORY.items():
        image = _open(samples_dir / "persons" / f"{name}.jpg")
        pose = _pose_or_none(image)
        if pose is None:
            continue
        seg = segment_garment(image, category=category, pose=pose, detect_pose=False)
        out[name] = (image, pose, seg)
    assert len(out) >= len(PERSON_CATEGORY) - 1
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# --- real photos ---------------------------------------------------------------------------------


def test_masks_are_binary_and_sized(person_results):
    for name, (image, _, seg) in person_results.items():
        assert seg.mask.shape == (image.height, image.width), name
        assert seg.mask.dtype == np.uint8 and set(np.unique(seg.mask)) <= {0, 255}, name
        assert seg.person_mask.shape == seg.mask.shape
        assert 0.03 < (seg.mask > 0).mean() < 0.6, name


def test_masks_stay_inside_the_person(person_results):
    for name, (_, _, seg) in person_results.items():
        on = seg.mask > 0
        overlap = (on & (seg.person_mask > 0)).sum() / on.sum()
        assert overlap >= 0.95, (name, overlap)
        assert seg.quality["mask_person_overlap"] == pytest.approx(overlap, abs=1e-3)


def test_no_face_pixels_in_the_mask(person_results):
    for name, (image, pose, seg) in person_results.items():
        rgb = np.asarray(image)
        # the face box from mediapipe face detection, shrunk to the face itself (no hair/neck)
        box = _detect_face(rgb, pose)
        assert box is not None, name
        x0, y0, x1, y1 = box
        dx, dy = (x1 - x0) // 10, (y1 - y0) // 10
        assert not seg.mask[y0 + dy : y1 - dy, x0 + dx : x1 - dx].any(), name
        # and independently from the pose: a disc around nose and eyes
        pts = [pose.point(i) for i in (NOSE, R_EYE, L_EYE)]
        pts = [p for p in pts if p is not None]
        cx, cy = np.mean(pts, axis=0)
        r = max(6.0, (x1 - x0) * 0.3)
        yy, xx = np.mgrid[0 : image.height, 0 : image.width]
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        assert not (seg.mask[disc] > 0).any(), name


def test_quality_report(person_results):
    for name, (_, _, seg) in person_results.items():
        q = seg.quality
        for key in ("mask_area_fraction", "mask_person_overlap", "edge_sharpness"):
            assert 0.0 <= q[key] <= 1.0, (name, key)
        assert q["pose_confidence"] > 0.5
        assert isinstance(q["flags"], list) and isinstance(q["low_quality"], bool)
        json.dumps(q)
        # masks follow visible edges on these clean photos
        assert q["edge_sharpness"] > 0.6, name
        assert "Garment mask extends outside the person" not in seg.flags


def test_iou_against_ground_truth_labels(samples_dir):
    meta = json.loads((samples_dir / "parsing" / "labels.json").read_text())
    names = meta["labels"]
    scores = {}
    for (key, category), floor in IOU_FLOORS.items():
        image = _open(samples_dir / "parsing" / "images" / f"{key}.jpg")
        truth = label_mask(parsing_labels(samples_dir, key), names, GROUPS[category])
        seg = segment_garment(image, category=category)
        scores[key, category] = _iou(seg.mask > 0, truth)
        assert scores[key, category] >= floor, (key, category, scores[key, category])
    assert np.median(list(scores.values())) >= 0.85, scores


def test_top_and_bottom_split_the_outfit(samples_dir):
    image = _open(samples_dir / "parsing" / "images" / "0018.jpg")
    pose = estimate_pose(image)
    top = segment_garment(image, category="top", pose=pose).mask > 0
    bottom = segment_garment(image, category="bottom", pose=pose).mask > 0
    full = segment_garment(image, category="full_outfit", pose=pose).mask > 0
    assert np.argwhere(top)[:, 0].mean() < np.argwhere(bottom)[:, 0].mean()
    assert _iou(top, bottom) < 0.1
    assert full.sum() >= 0.8 * (top | bottom).sum()


def test_mannequin_gets_a_sensible_mask(samples_dir):
    for name in ("mannequin_front", "mannequin_back"):
        image = _open(samples_dir / "persons" / f"{name}.jpg")
        seg = segment_garment(image, category="dress")  # no pose found: object mode
        on = seg.mask > 0
        assert 0.15 < on.mean() < 0.5, name
        ys, xs = np.nonzero(on)
        # the dress hangs in the middle of the frame, below the dress form's neck
        assert 0.3 * image.width < xs.mean() < 0.7 * image.width, name
        assert ys.min() > 0.1 * image.height, name
        assert any("No person" in f for f in seg.flags)


def test_product_shots_without_a_person(samples_dir):
    for name in ("dress_draped", "hanger_dress", "flatlay_tunic", "vitonhd_09133"):
        image = _open(samples_dir / "garments" / f"{name}.jpg")
        seg = segment_garment(image, category="kurta" if "tunic" in name else "dress")
        on = seg.mask > 0
        assert 0.2 < on.mean() < 0.8, (name, on.mean())
        border = np.concatenate([on[0], on[-1], on[:, 0], on[:, -1]])
        assert border.mean() < 0.2, name  # the backdrop is not garment


# --- hints ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tank(samples_dir) -> tuple[Image.Image, PoseResult, SegmentationResult]:
    image = _open(samples_dir / "persons" / "shop_tank.jpg")
    pose = estimate_pose(image)
    return image, pose, segment_garment(image, category="top", pose=pose)


def test_exclude_stroke_removes_pixels(tank):
    image, pose, base = tank
    ys, xs = np.nonzero(base.mask)
    cx, cy = int(np.median(xs)), int(np.median(ys))
    stroke = Stroke(points=[(cx - 60, cy), (cx + 60, cy)], radius=15)
    assert base.mask[cy, cx] == 255
    hints = MaskHints(exclude=[stroke])
    seg = segment_garment(image, category="top", pose=pose, hints=hints)
    _, exclude = hints.rasterize(image.size)
    assert (base.mask[exclude] > 0).mean() > 0.9  # the stroke lies on the garment...
    assert not seg.mask[exclude].any()  # ...and every brushed pixel is gone
    assert not seg.mask[cy - 14 : cy + 15, cx - 60 : cx + 61].any()
    assert (seg.mask > 0).sum() < (base.mask > 0).sum()


def test_include_stroke_adds_pixels(tank):
    image, pose, base = tank
    # the face region is excluded automatically; the seller can still force a patch in
    x, y = 40, 40  # background corner
    assert base.mask[y, x] == 0
    hints = MaskHints(include=[Stroke(points=[(x, y), (x + 50, y + 10)], radius=10)])
    seg = segment_garment(image, category="top", pose=pose, hints=hints)
    include, _ = hints.rasterize(image.size)
    assert include.sum() > 900 and (seg.mask[include] == 255).all()
    # the rest of the mask is essentially unchanged
    rest = np.ones_like(base.mask, bool)
    rest[y - 20 : y + 31, x - 20 : x + 71] = False
    assert _iou(seg.mask[rest] > 0, base.mask[rest] > 0) > 0.95


def test_brushed_hint_masks(tank):
    image, pose, base = tank
    exclude = np.zeros_like(base.mask)
    ys, _ = np.nonzero(base.mask)
    y_cut = int(np.percentile(ys, 80))
    exclude[y_cut:, :] = 255  # brush away the lower fifth of the garment
    hints = MaskHints(exclude_mask=exclude)
    seg = segment_garment(image, category="top", pose=pose, hints=hints)
    assert not seg.mask[y_cut:].any()
    assert seg.mask[: y_cut - 5].sum() > 0.8 * base.mask[: y_cut - 5].sum()


def test_hints_round_trip_json():
    hints = MaskHints(include=[Stroke([(1.5, 2.0), (3, 4)], 5)], exclude=[Stroke([(9, 9)], 2)])
    back = MaskHints.from_dict(json.loads(json.dumps(hints.to_dict())))
    assert back.include[0].points == [(1.5, 2.0), (3.0, 4.0)] and back.exclude[0].radius == 2
    include, exclude = back.rasterize((20, 20))
    assert include[2, 2] and include[4, 3] and exclude[9, 9] and not include[15, 15]
    assert MaskHints().is_empty() and not back.is_empty()


# --- backends, categories, helpers ---------------------------------------------------------------


def test_categories():
    assert canonical_category("Dress") == "dress"
    assert canonical_category("saree") == "full_outfit"
    assert canonical_category("kurta") == "full_outfit"
    assert canonical_category("full-outfit") == "full_outfit"
    with pytest.raises(ValueError):
        canonical_category("hat")


def test_cloth_backend_without_weights_is_a_clear_error(tmp_path):
    image = Image.new("RGB", (120, 160), (200, 200, 200))
    with pytest.raises(ModelMissingError) as info:
        segment_garment(image, category="dress", backend="cloth", model_root=tmp_path)
    assert "u2net_cloth_seg.onnx" in str(info.value)
    assert available_backends(tmp_path) == ["classical"]
    seg = segment_garment(image, category="dress", backend="auto", model_root=tmp_path)
    assert seg.backend == "classical"


def _fake_cloth_model(path: Path) -> None:
    """A 1x1-conv ONNX model with u2net_cloth_seg's interface that says "full body" everywhere."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros((4, 3, 1, 1), np.float32), "w")
    bias = numpy_helper.from_array(np.array([0, 0, 0, 1], np.float32), "b")
    node = helper.make_node("Conv", ["input", "w", "b"], ["out"])
    graph = helper.make_graph(
        [node],
        "fake_cloth",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 768, 768])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 768, 768])],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())


def test_cloth_backend_is_used_when_its_weights_exist(tmp_path, tank):
    image, pose, _ = tank
    _fake_cloth_model(tmp_path / CLOTH_MODEL_FILE)
    assert available_backends(tmp_path)[0] == "cloth"
    seg = segment_garment(image, category="dress", pose=pose, model_root=tmp_path)
    assert seg.backend == "cloth"
    # "full body" everywhere, minus the face zone that is never garment
    assert (seg.mask > 0).mean() > 0.8
    face = _detect_face(np.asarray(image), pose)
    x0, y0, x1, y1 = face
    assert not seg.mask[y0 + 10 : y1 - 10, x0 + 10 : x1 - 10].any()
    # the same model says "no top" for a top: the mask is empty and flagged
    top = segment_garment(image, category="top", pose=pose, model_root=tmp_path)
    assert (top.mask > 0).mean() < 0.03 and top.low_quality


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError):
        segment_garment(Image.new("RGB", (64, 64)), category="dress", backend="magic")


def test_blank_photo_gives_an_empty_flagged_mask():
    seg = segment_garment(Image.new("RGB", (300, 400), (128, 128, 128)), category="top")
    assert (seg.mask > 0).mean() < 0.03
    assert seg.low_quality and "Mask covers under 3% of the photo" in seg.flags


def test_feathered_alpha_only_grows_outwards():
    mask = np.zeros((100, 100), np.uint8)
    mask[30:70, 30:70] = 255
    alpha = feather(mask, width=8)
    assert (alpha[mask > 0] == 255).all()  # exact inside
    assert alpha[50, 25] > 0 and alpha[50, 25] < 255  # soft just outside
    assert alpha[50, 10] == 0 and alpha[5, 5] == 0  # nothing far away
    assert (alpha >= mask).all()


def test_segmentation_feathered_matches_mask(tank):
    _, _, seg = tank
    assert (seg.feathered[seg.mask > 0] == 255).all()
    assert (seg.feathered >= seg.mask).all()
    assert (seg.feathered > 0).sum() > (seg.mask > 0).sum()


def test_mask_png_round_trip():
    mask = np.zeros((50, 80), np.uint8)
    mask[10:20, 5:60] = 255
    data = mask_to_png(mask)
    assert data.startswith(b"\x89PNG")
    assert np.array_equal(mask_from_png(data), mask)
    assert np.array_equal(mask_from_png(mask_to_png(mask > 0)), mask)  # bool masks too
    soft = np.arange(256, dtype=np.uint8)[None, :].repeat(4, 0)
    assert np.array_equal(mask_from_png(mask_to_png(soft), binary=False), soft)


def test_mask_does_not_depend_on_opencv_global_rng_state(samples_dir):
    """Bug: GrabCut seeds from OpenCV's global RNG; ~1 state in 8 collapsed this product shot to
    ~1% of its garment, so masks changed with whatever ran before in the process."""
    import cv2

    image = _open(samples_dir / "garments" / "vitonhd_09133.jpg")
    masks = []
    for state in (772169327, 1862777267, 1163862, 0):  # the first three collapsed before the fix
        cv2.setRNGSeed(state)
        masks.append(segment_garment(image, category="dress").mask)
    assert 0.2 < (masks[0] > 0).mean() < 0.8
    assert all(np.array_equal(masks[0], other) for other in masks[1:])
