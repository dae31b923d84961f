"""The ``segformer`` garment backend, on a tiny randomly initialised SegFormer built here.

Real clothes-parsing weights cannot be downloaded on this machine, so these tests prove the
mechanics (discovery, ``auto`` preference, loading through transformers, preprocessing,
inference on real photos, the per-process cache, the label-name mapping to our categories, and
the errors) with a model whose predictions are noise; the label mapping is proven with forced
outputs: a classifier that always answers one label, and hand-made probability maps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generation.inference.cache import models
from generation.inference.errors import InferenceError, ModelMissingError
from generation.inference.pose import PoseResult, estimate_pose
from generation.inference.segmentation import (
    BG,
    CLOTH_MODEL_FILE,
    FG,
    PR_FG,
    SEGFORMER_DIR,
    LoadedParser,
    ParsingLabels,
    SegformerBackend,
    available_backends,
    parsing_trimap,
    segment_garment,
)
from generation.inference.segmentation.context import _detect_face
from generation.inference.segmentation.learned import _Preprocessing

#: mattmdjaga/segformer_b2_clothes (ATR)
ATR = [
    "Background", "Hat", "Hair", "Sunglasses", "Upper-clothes", "Skirt", "Pants", "Dress", "Belt",
    "Left-shoe", "Right-shoe", "Face", "Left-leg", "Right-leg", "Left-arm", "Right-arm", "Bag",
    "Scarf",
]  # fmt: skip
LIP = [
    "Background", "Hat", "Hair", "Glove", "Sunglasses", "Upper-clothes", "Dress", "Coat", "Socks",
    "Pants", "Jumpsuits", "Scarf", "Skirt", "Face", "Left-arm", "Right-arm", "Left-leg",
    "Right-leg", "Left-shoe", "Right-shoe",
]  # fmt: skip
CIHP = [
    "Background", "Hat", "Hair", "Glove", "Sunglasses", "UpperClothes", "Dress", "Coat", "Socks",
    "Pants", "Torso-skin", "Scarf", "Skirt", "Face", "Left-arm", "Right-arm", "Left-leg",
    "Right-leg", "Left-shoe", "Right-shoe",
]  # fmt: skip
CATEGORIES = ("dress", "top", "bottom", "full_outfit")
#: the tiny model's input side, from its preprocessor_config.json (the real model uses 512)
INPUT_SIDE = 256


def build_tiny_segformer(model_root: Path, names: list[str] = ATR, seed: int = 0) -> Path:
    """A randomly initialised SegFormer with ``names`` as labels, saved where the backend looks."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    folder = model_root / SEGFORMER_DIR
    config = SegformerConfig(
        hidden_sizes=[8, 16, 16, 16],
        depths=[1, 1, 1, 1],
        num_attention_heads=[1, 1, 1, 1],
        decoder_hidden_size=16,
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    torch.manual_seed(seed)
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    # what SegformerImageProcessor.save_pretrained writes, at a smaller size
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "SegformerImageProcessor",
                "do_resize": True,
                "size": {"height": INPUT_SIDE, "width": INPUT_SIDE},
                "resample": 2,
                "do_rescale": True,
                "rescale_factor": 1 / 255,
                "do_normalize": True,
                "image_mean": [0.485, 0.456, 0.406],
                "image_std": [0.229, 0.224, 0.225],
                "do_reduce_labels": False,
            }
        )
    )
    return folder


@pytest.fixture(scope="module")
def model_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    build_tiny_segformer(root)
    return root


@pytest.fixture(scope="module")
def photo(samples_dir) -> tuple[Image.Image, PoseResult]:
    with Image.open(samples_dir / "persons" / "shop_tank.jpg") as img:
        image = img.convert("RGB")
    return image, estimate_pose(image)


@pytest.fixture(scope="module")
def small_photo(photo) -> tuple[Image.Image, PoseResult]:
    """The same photo at 480 px high, for the many forced-label runs."""
    image, _ = photo
    small = image.resize((round(image.width * 480 / image.height), 480), Image.Resampling.LANCZOS)
    return small, estimate_pose(small)


# --- discovery, auto, errors ---------------------------------------------------------------------


def test_found_and_preferred_by_auto(model_root, tmp_path):
    assert available_backends(model_root) == ["segformer", "classical"]
    # preferred over the cloth backend when both are installed
    both = tmp_path / "both"
    build_tiny_segformer(both)
    (both / CLOTH_MODEL_FILE).write_bytes(b"onnx")  # only its presence matters here
    assert available_backends(both) == ["segformer", "cloth", "classical"]
    seg = segment_garment(Image.new("RGB", (120, 160), (200, 200, 200)), category="dress",
                          model_root=both)  # fmt: skip
    assert seg.backend == "segformer"


def test_missing_weights_explicit_is_a_clear_error_and_auto_falls_back(tmp_path):
    image = Image.new("RGB", (120, 160), (200, 200, 200))
    with pytest.raises(ModelMissingError) as info:
        segment_garment(image, category="dress", backend="segformer", model_root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "segmentation" / "segformer-clothes") in message
    assert "manage.py download_models segformer-clothes" in message
    assert info.value.code == "model_missing"
    with pytest.raises(ModelMissingError, match="segmentation/segformer-clothes"):
        segment_garment(image, category="dress", backend="segformer", model_root=None)
    # a half-installed folder (no weights file) is not available either
    folder = tmp_path / SEGFORMER_DIR
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"id2label": dict(enumerate(ATR))}))
    assert available_backends(tmp_path) == ["classical"]
    assert segment_garment(image, category="dress", model_root=tmp_path).backend == "classical"
    with pytest.raises(ModelMissingError):
        segment_garment(image, category="dress", backend="segformer", model_root=tmp_path)


def test_unreadable_or_incomplete_weights_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    garbage = tmp_path / "garbage"
    build_tiny_segformer(garbage)
    (garbage / SEGFORMER_DIR / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelMissingError, match="could not be loaded"):
        SegformerBackend(garbage).load()

    # transformers would silently fill a missing tensor with random values: refused instead
    partial = tmp_path / "partial"
    weights = build_tiny_segformer(partial) / "model.safetensors"
    tensors = load_file(weights)
    del tensors["decode_head.classifier.weight"]
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(ModelMissingError, match="missing"):
        SegformerBackend(partial).load()


def test_a_model_without_clothing_labels_is_refused(tmp_path):
    build_tiny_segformer(tmp_path, names=["wall", "building", "sky", "person"])
    with pytest.raises(InferenceError, match="not a human/clothes parser"):
        SegformerBackend(tmp_path).load()


# --- real loading and inference ------------------------------------------------------------------


def test_real_inference_on_a_sample_photo(model_root, photo):
    image, pose = photo
    seg = segment_garment(image, category="top", pose=pose, model_root=model_root)
    assert seg.backend == "segformer"
    assert seg.mask.shape == (image.height, image.width) and seg.mask.dtype == np.uint8
    assert set(np.unique(seg.mask)) <= {0, 255}
    assert seg.feathered.shape == seg.mask.shape
    assert (seg.feathered[seg.mask > 0] == 255).all()
    json.dumps(seg.quality)

    parser = SegformerBackend(model_root).load()
    assert parser.device == "cpu" and parser.dtype == torch.float32
    probs = parser.probabilities(np.asarray(image), (200, 300))
    assert probs.shape == (len(ATR), 300, 200) and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=0), 1.0, atol=1e-4)


def test_preprocessing_follows_the_config(model_root):
    prep = _Preprocessing.from_folder(model_root / SEGFORMER_DIR)
    grey = np.full((90, 60, 3), 128, np.uint8)
    tensor = prep(grey)
    assert tensor.shape == (1, 3, INPUT_SIDE, INPUT_SIDE) and tensor.dtype == np.float32
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (128 / 255 - mean) / std
    assert np.allclose(tensor[0, :, 10, 10], expected, atol=1e-5)
    # no preprocessor_config.json: SegformerImageProcessor's defaults (512 x 512, ImageNet)
    defaults = _Preprocessing.from_folder(model_root / "nowhere")
    assert defaults(grey).shape == (1, 3, 512, 512)
    assert np.allclose(defaults(grey)[0, :, 0, 0], expected, atol=1e-5)


def test_loaded_once_per_process(tmp_path, photo):
    image, pose = photo
    build_tiny_segformer(tmp_path)
    backend = SegformerBackend(tmp_path)
    key = backend.cache_key()
    assert key not in models and models.load_counts[key] == 0
    for category in ("top", "dress"):
        seg = segment_garment(image, category=category, pose=pose, model_root=tmp_path)
        assert seg.backend == "segformer"
    assert key in models and models.load_counts[key] == 1
    assert SegformerBackend(tmp_path).load() is backend.load()
    assert models.load_counts[key] == 1
    models.evict(key)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_runs_in_fp16(model_root, photo):
    image, _ = photo
    parser = SegformerBackend(model_root, device="cuda").load()
    assert parser.dtype == torch.float16
    probs = parser.probabilities(np.asarray(image), (100, 150))
    assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=0), 1.0, atol=1e-3)


# --- label mapping -------------------------------------------------------------------------------


def test_label_roles_by_name():
    atr = ParsingLabels.from_id2label(dict(enumerate(ATR)))
    assert atr.upper == (4,) and atr.skirt == (5,) and atr.pants == (6,)
    assert atr.one_piece == (7,) and atr.coat == () and atr.outfit_extra == (8, 17)
    assert atr.head == (2, 3, 11) and atr.skin == (12, 13, 14, 15)  # hair, sunglasses, face
    assert atr.targets("dress") == (7,) and atr.targets("top") == (4,)
    assert atr.targets("bottom") == (5, 6)
    assert set(atr.targets("full_outfit")) == {4, 5, 6, 7, 8, 17}
    # config.json keys are strings before transformers converts them
    assert ParsingLabels.from_id2label({str(i): n for i, n in enumerate(ATR)}) == atr

    lip = ParsingLabels.from_id2label(dict(enumerate(LIP)))
    assert lip.one_piece == (6, 10) and lip.coat == (7,) and lip.upper == (5,)
    assert lip.targets("top") == (5, 7) and lip.targets("top", top_includes_coat=False) == (5,)
    assert lip.targets("bottom") == (12, 9) and lip.head == (2, 4, 13)
    cihp = ParsingLabels.from_id2label(dict(enumerate(CIHP)))
    assert cihp.upper == (5,) and 10 in cihp.skin  # Torso-skin


def _probs(label_map: np.ndarray, n: int, confidence: float = 0.95) -> np.ndarray:
    """Probabilities (n x H x W): ``confidence`` on each pixel's label, the rest spread evenly."""
    probs = np.full((n, *label_map.shape), (1 - confidence) / (n - 1), np.float32)
    np.put_along_axis(probs, label_map[None], confidence, axis=0)
    return probs


def _garment(trimap: np.ndarray) -> np.ndarray:
    return np.isin(trimap, (FG, PR_FG))


def test_trimap_maps_labels_to_categories_and_keeps_body_out():
    a = {name: i for i, name in enumerate(ATR)}
    grid = np.zeros((60, 40), np.int64)  # Background
    grid[0:10, 10:30] = a["Face"]
    grid[10:15, 10:30] = a["Hair"]
    grid[15:30, 6:34] = a["Upper-clothes"]
    grid[30:45, 6:34] = a["Skirt"]
    grid[15:45, 0:6] = a["Left-arm"]
    grid[15:45, 34:40] = a["Right-arm"]
    grid[45:60, 6:34] = a["Left-leg"]
    labels = ParsingLabels.from_id2label(dict(enumerate(ATR)))
    probs = _probs(grid, len(ATR))
    upper, skirt = grid == a["Upper-clothes"], grid == a["Skirt"]
    body = np.isin(grid, [a[n] for n in ("Face", "Hair", "Left-arm", "Right-arm", "Left-leg")])

    expected = {"top": upper, "bottom": skirt, "dress": upper | skirt, "full_outfit": upper | skirt}
    for category, want in expected.items():
        trimap = parsing_trimap(probs, labels, category)
        assert np.array_equal(_garment(trimap), want), category
        assert (trimap[body] == BG).all(), category  # definite: GrabCut cannot take them
    # confident garment is definite inside, probable on its outline
    top = parsing_trimap(probs, labels, "top")
    assert (top[18:27, 10:30] == FG).all() and top[15, 20] == PR_FG
    # uncertain pixels: probable, never definite
    soft = parsing_trimap(_probs(grid, len(ATR), confidence=0.6), labels, "top")
    assert (soft[upper] == PR_FG).all()


def test_dress_read_as_top_and_skirt_or_with_a_separate_top():
    a = {name: i for i, name in enumerate(ATR)}
    labels = ParsingLabels.from_id2label(dict(enumerate(ATR)))
    grid = np.zeros((60, 40), np.int64)
    grid[10:25, 8:32] = a["Upper-clothes"]  # bodice, touching the dress below
    grid[25:50, 8:32] = a["Dress"]
    grid[52:58, 2:8] = a["Upper-clothes"]  # a separate upper piece (a top held in the hand)
    probs = _probs(grid, len(ATR))
    dress = parsing_trimap(probs, labels, "dress")
    assert (dress[30:45, 12:28] == FG).all()  # the Dress itself is definite
    assert (dress[10:25, 8:32] == PR_FG).all()  # the touching bodice is probable
    assert not _garment(dress)[52:58, 2:8].any()  # the separate top is not the dress
    top = parsing_trimap(probs, labels, "top")
    assert _garment(top)[10:25, 8:32].all() and _garment(top)[52:58, 2:8].all()
    assert not _garment(top)[25:50].any()
    assert not _garment(parsing_trimap(probs, labels, "bottom")).any()

    # a little Dress inside a top + skirt: the parser split the one-piece; all of it is the dress
    grid = np.zeros((60, 40), np.int64)
    grid[10:30, 8:32] = a["Upper-clothes"]
    grid[30:50, 8:32] = a["Skirt"]
    grid[28:32, 18:22] = a["Dress"]
    dress = parsing_trimap(_probs(grid, len(ATR)), labels, "dress")
    assert np.array_equal(_garment(dress), grid != 0)


def test_lip_labels_coat_jumpsuit_pants():
    a = {name: i for i, name in enumerate(LIP)}
    labels = ParsingLabels.from_id2label(dict(enumerate(LIP)))
    grid = np.zeros((60, 40), np.int64)
    grid[10:30, 4:12] = a["Coat"]
    grid[10:30, 12:28] = a["Upper-clothes"]
    grid[10:30, 28:36] = a["Coat"]
    grid[30:55, 8:32] = a["Pants"]
    grid[0:10, 12:28] = a["Face"]
    probs = _probs(grid, len(LIP))
    coat, upper, pants = grid == a["Coat"], grid == a["Upper-clothes"], grid == a["Pants"]
    assert np.array_equal(_garment(parsing_trimap(probs, labels, "top")), coat | upper)
    only_upper = parsing_trimap(probs, labels, "top", top_includes_coat=False)
    assert np.array_equal(_garment(only_upper), upper)
    assert np.array_equal(_garment(parsing_trimap(probs, labels, "bottom")), pants)
    # no Dress found: the seller's dress was read as the top (a tunic dress over trousers);
    # neither the coat nor the trousers are the dress
    assert np.array_equal(_garment(parsing_trimap(probs, labels, "dress")), upper)
    full = parsing_trimap(probs, labels, "full_outfit")
    assert np.array_equal(_garment(full), coat | upper | pants)
    assert (full[grid == a["Face"]] == BG).all()

    grid[10:55, 8:32] = a["Jumpsuits"]
    dress = parsing_trimap(_probs(grid, len(LIP)), labels, "dress")
    assert np.array_equal(_garment(dress), grid == a["Jumpsuits"])


@contextmanager
def forced_label(parser: LoadedParser, label: str) -> Iterator[None]:
    """Make the loaded model answer ``label`` everywhere: classifier weights 0, that bias high."""
    classifier = parser.model.decode_head.classifier
    saved = classifier.weight.detach().clone(), classifier.bias.detach().clone()
    with torch.no_grad():
        classifier.weight.zero_()
        classifier.bias.fill_(-8.0)
        classifier.bias[parser.labels.names.index(label)] = 8.0
    try:
        yield
    finally:
        with torch.no_grad():
            classifier.weight.copy_(saved[0])
            classifier.bias.copy_(saved[1])


#: label the model is forced to answer -> categories whose mask covers the body, the rest empty
FORCED = {
    "Dress": {"dress", "full_outfit"},
    "Upper-clothes": {"top", "dress", "full_outfit"},  # a dress read as a top is the dress
    "Skirt": {"bottom", "dress", "full_outfit"},
    "Pants": {"bottom", "full_outfit"},
    "Scarf": {"full_outfit"},
    "Face": set(),
    "Hair": set(),
    "Left-arm": set(),
    "Bag": set(),
}


@pytest.mark.parametrize("label", list(FORCED))
def test_forced_model_output_through_the_whole_pipeline(model_root, small_photo, label):
    image, pose = small_photo
    parser = SegformerBackend(model_root).load()
    face = _detect_face(np.asarray(image), pose)
    assert face is not None
    with forced_label(parser, label):
        probs = parser.probabilities(np.asarray(image), (40, 60))
        assert (probs.argmax(axis=0) == ATR.index(label)).all()
        for category in CATEGORIES:
            seg = segment_garment(image, category=category, pose=pose, model_root=model_root)
            assert seg.backend == "segformer"
            share = (seg.mask > 0).mean()
            if category in FORCED[label]:
                assert share > 0.8, (label, category, share)  # the whole photo but the head
                x0, y0, x1, y1 = face
                assert not seg.mask[y0:y1, x0:x1].any(), (label, category)
            else:
                assert share == 0, (label, category, share)


def test_parser_face_and_skin_stay_out_at_full_resolution(model_root, photo, monkeypatch):
    """Face/skin the parser finds where the face detector saw nothing are still removed."""
    image, pose = photo
    height, width = image.height, image.width
    # in the torso, far from the real head: a "face" box and an "arm" box inside a dress
    face_box = (int(width * 0.30), int(height * 0.45), int(width * 0.45), int(height * 0.55))
    arm_box = (int(width * 0.55), int(height * 0.45), int(width * 0.70), int(height * 0.55))

    def fake(self, rgb, size):
        w, h = size
        grid = np.full((h, w), ATR.index("Dress"), np.int64)
        for box, name in ((face_box, "Face"), (arm_box, "Left-arm")):
            x0, y0, x1, y1 = (round(v * w / width) for v in box)
            grid[y0:y1, x0:x1] = ATR.index(name)
        return _probs(grid, len(ATR), confidence=0.98)

    monkeypatch.setattr(LoadedParser, "probabilities", fake)
    seg = segment_garment(image, category="dress", pose=pose, model_root=model_root)
    assert (seg.mask > 0).mean() > 0.6
    x0, y0, x1, y1 = face_box
    m = 2  # the box edges, rounded at the 320 px working size
    assert not seg.mask[y0 + m : y1 - m, x0 + m : x1 - m].any()
    x0, y0, x1, y1 = arm_box
    m = 8  # skin is definite background for GrabCut; the guided upsampling may blur 1-2 px
    assert not seg.mask[y0 + m : y1 - m, x0 + m : x1 - m].any()
    # the dress around both boxes is kept
    assert seg.mask[int(height * 0.65), int(width * 0.5)] == 255
