"""The image engine on tiny random model sets: ControlNet inpainting, identity adapters, LoRA,
SDXL, progress, cancellation, determinism, typed failures, and the garment fidelity guarantee."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from generation.inference import diffusion
from generation.inference.cache import models
from generation.inference.composite import as_bool_mask, changed_pixels_inside, erode, ssim_inside
from generation.inference.diffusion import (
    DEFAULT_NEGATIVE_PROMPT,
    GenerationRequest,
    GenerationResult,
    build_prompt,
    fit_dimensions,
    generate,
    load_pipeline,
    text_to_image,
)
from generation.inference.errors import (
    GenerationCancelled,
    InferenceError,
    ModelChecksumError,
    ModelLicenceError,
    ModelMissingError,
    OutOfMemoryError,
)
from tests.inference.conftest_diffusion import *  # noqa: F403 - session fixtures
from tests.inference.conftest_diffusion import torso_mask

W, H = 64, 96


def _photo(seed: int = 0, size: tuple[int, int] = (W, H)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _pose(size: tuple[int, int] = (W, H)) -> Image.Image:
    """A crude skeleton stand-in: a few coloured limbs on black, like an OpenPose render."""
    import cv2

    canvas = np.zeros((size[1], size[0], 3), np.uint8)
    w, h = size
    cv2.line(canvas, (w // 2, h // 6), (w // 2, h // 2), (255, 0, 0), 2)
    cv2.line(canvas, (w // 4, h // 4), (3 * w // 4, h // 4), (0, 255, 0), 2)
    cv2.line(canvas, (w // 2, h // 2), (w // 3, 5 * h // 6), (0, 0, 255), 2)
    return Image.fromarray(canvas)


def _request(**overrides: object) -> GenerationRequest:
    photo = overrides.pop("image", None) or _photo()
    fields: dict[str, object] = dict(
        image=photo,
        garment_mask=torso_mask(photo.size),
        control_image=_pose(photo.size),
        category="dress",
        scene="studio_white",
        face_attributes={"gender": "woman", "age": "30s"},
        seed=1234,
        steps=2,
        width=W,
        height=H,
    )
    fields.update(overrides)
    return GenerationRequest(**fields)


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


def test_controlnet_inpainting_end_to_end(tiny_sd15: Path) -> None:
    steps: list[tuple[int, int]] = []
    req = _request(steps=3)
    result = generate(
        req, model_set_dir=tiny_sd15, device="cpu", progress=lambda i, n: steps.append((i, n))
    )

    assert result.raw_image.size == (W, H)
    assert result.image.size == req.image.size
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert result.seed == 1234 and result.model_set == "tiny-sd15"
    assert "dress" in result.prompt and "woman" in result.prompt
    assert result.negative_prompt == DEFAULT_NEGATIVE_PROMPT
    assert result.identity is None and result.lora is None
    assert set(result.timings) == {"load_s", "inference_s", "composite_s", "total_s"}
    core = erode(as_bool_mask(req.garment_mask), req.paste_erode_px)
    assert changed_pixels_inside(req.image, result.image, core) == 0


def test_pipeline_is_loaded_once_per_process(tiny_sd15: Path) -> None:
    engine = load_pipeline(tiny_sd15, device="cpu")
    for seed in (1, 2):
        generate(_request(seed=seed), model_set_dir=tiny_sd15, device="cpu")
    assert load_pipeline(tiny_sd15, device="cpu") is engine
    keys = [k for k in models.load_counts if k.startswith("inpaint:") and "tiny-sd15" in k]
    assert keys and all(models.load_counts[k] == 1 for k in keys)


def test_same_seed_same_pixels_other_seed_other_pixels(tiny_sd15: Path) -> None:
    a = generate(_request(seed=7), model_set_dir=tiny_sd15, device="cpu").raw_image
    b = generate(_request(seed=7), model_set_dir=tiny_sd15, device="cpu").raw_image
    c = generate(_request(seed=8), model_set_dir=tiny_sd15, device="cpu").raw_image
    assert np.array_equal(_pixels(a), _pixels(b))
    assert not np.array_equal(_pixels(a), _pixels(c))


def test_random_seed_is_reported(tiny_sd15: Path) -> None:
    result = generate(_request(seed=None), model_set_dir=tiny_sd15, device="cpu")
    again = generate(_request(seed=result.seed), model_set_dir=tiny_sd15, device="cpu")
    assert np.array_equal(_pixels(result.raw_image), _pixels(again.raw_image))


def test_cancel_after_first_step(tiny_sd15: Path) -> None:
    seen: list[int] = []
    with pytest.raises(GenerationCancelled):
        generate(
            _request(steps=4),
            model_set_dir=tiny_sd15,
            device="cpu",
            progress=lambda i, n: seen.append(i),
            should_cancel=lambda: len(seen) >= 1,
        )
    assert seen == [1]
    # the cached pipeline is not left interrupted: the next job runs all its steps
    steps: list[int] = []
    generate(
        _request(steps=2),
        model_set_dir=tiny_sd15,
        device="cpu",
        progress=lambda i, n: steps.append(i),
    )
    assert steps == [1, 2]


def test_cancel_before_start(tiny_sd15: Path) -> None:
    with pytest.raises(GenerationCancelled):
        generate(_request(), model_set_dir=tiny_sd15, device="cpu", should_cancel=lambda: True)


def test_ip_adapter_face_reference_changes_output_and_leaves_pipeline_clean(
    tiny_sd15: Path,
) -> None:
    plain = generate(_request(), model_set_dir=tiny_sd15, device="cpu").raw_image
    face = Image.new("RGB", (48, 48), (220, 170, 140))
    with_face = generate(
        _request(face_image=face, ip_adapter_scale=1.0), model_set_dir=tiny_sd15, device="cpu"
    )
    assert with_face.identity == "ip_adapter"
    assert not np.array_equal(_pixels(plain), _pixels(with_face.raw_image))
    engine = load_pipeline(tiny_sd15, device="cpu")
    assert engine.identity == "ip_adapter"  # stays loaded for the next job
    # a job without a face runs the loaded adapter at scale 0: same pixels as before it loaded
    after = generate(_request(), model_set_dir=tiny_sd15, device="cpu").raw_image
    assert np.array_equal(_pixels(plain), _pixels(after))


def test_faceid_embedding_and_its_licence(tiny_sd15: Path) -> None:
    plain = generate(_request(), model_set_dir=tiny_sd15, device="cpu").raw_image
    emb = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    emb /= np.linalg.norm(emb)
    with pytest.raises(ModelLicenceError, match="ip_adapter_faceid"):
        generate(_request(face_embedding=emb), model_set_dir=tiny_sd15, device="cpu")
    result = generate(
        _request(face_embedding=emb, ip_adapter_scale=1.0),
        model_set_dir=tiny_sd15,
        device="cpu",
        commercial=False,
    )
    assert result.identity == "ip_adapter_faceid"
    assert not np.array_equal(_pixels(plain), _pixels(result.raw_image))
    # two reference embeddings of the same person are accepted too
    generate(
        _request(face_embedding=np.stack([emb, emb])),
        model_set_dir=tiny_sd15,
        device="cpu",
        commercial=False,
    )
    # FaceID's own LoRA is switched off for jobs without a face: the output is the plain one
    after = generate(_request(), model_set_dir=tiny_sd15, device="cpu").raw_image
    assert np.array_equal(_pixels(plain), _pixels(after))
    with pytest.raises(InferenceError, match="512-d"):
        generate(_request(face_embedding=np.zeros(128)), model_set_dir=tiny_sd15, device="cpu")


def test_identity_adapter_falls_back_and_switches(tiny_sd15: Path) -> None:
    emb = np.ones(512, np.float32) / np.sqrt(512)
    face = Image.new("RGB", (48, 48), (200, 150, 120))
    # commercial mode with both inputs: FaceID is refused, the plain adapter takes over
    result = generate(
        _request(face_embedding=emb, face_image=face), model_set_dir=tiny_sd15, device="cpu"
    )
    assert result.identity == "ip_adapter"
    faceid = generate(
        _request(face_embedding=emb, face_image=face),
        model_set_dir=tiny_sd15,
        device="cpu",
        commercial=False,
    )
    assert faceid.identity == "ip_adapter_faceid"
    back = generate(_request(face_image=face), model_set_dir=tiny_sd15, device="cpu")
    assert back.identity == "ip_adapter"
    assert np.array_equal(_pixels(back.raw_image), _pixels(result.raw_image))


def test_lora_is_applied_then_removed(tiny_sd15: Path) -> None:
    plain = generate(_request(), model_set_dir=tiny_sd15, device="cpu").raw_image
    styled = generate(
        _request(lora_path="loras/tiny-style.safetensors", lora_scale=1.0),
        model_set_dir=tiny_sd15,
        device="cpu",
    )
    assert styled.lora == "loras/tiny-style.safetensors"
    assert not np.array_equal(_pixels(plain), _pixels(styled.raw_image))
    engine = load_pipeline(tiny_sd15, device="cpu")
    assert diffusion._JOB_LORA not in diffusion._list_adapters(engine.pipe)
    after = generate(_request(), model_set_dir=tiny_sd15, device="cpu").raw_image
    assert np.array_equal(_pixels(plain), _pixels(after))
    with pytest.raises(InferenceError, match="LoRA file not found"):
        generate(
            _request(lora_path="loras/nope.safetensors"), model_set_dir=tiny_sd15, device="cpu"
        )


def test_sdxl_variant(tiny_sdxl: Path) -> None:
    req = _request(width=64, height=64)
    a = generate(req, model_set_dir=tiny_sdxl, device="cpu")
    b = generate(req, model_set_dir=tiny_sdxl, device="cpu")
    assert a.raw_image.size == (64, 64) and a.model_set == "tiny-sdxl"
    assert np.array_equal(_pixels(a.raw_image), _pixels(b.raw_image))
    assert changed_pixels_inside(req.image, a.image, erode(req.garment_mask > 0, 2)) == 0


def test_text_to_image_for_synthetic_faces(tiny_sd15: Path) -> None:
    def portrait(**extra: Any) -> GenerationResult:
        return text_to_image(
            "portrait photo of a woman, studio light",
            model_set_dir=tiny_sd15,
            device="cpu",
            width=64,
            height=64,
            seed=3,
            steps=2,
            **extra,
        )

    steps: list[int] = []
    result = portrait(progress=lambda i, n: steps.append(i))
    assert result.image.size == (64, 64) and steps == [1, 2]
    assert np.array_equal(_pixels(result.image), _pixels(portrait().image))


def test_cuda_oom_is_mapped(tiny_sd15: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = load_pipeline(tiny_sd15, device="cpu")

    def oom(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(type(engine.pipe), "__call__", oom)
    with pytest.raises(OutOfMemoryError, match="Out of memory on cpu generating 64x96"):
        generate(_request(), model_set_dir=tiny_sd15, device="cpu")


def test_cpu_allocation_failure_is_mapped_other_errors_are_not(
    tiny_sd15: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = load_pipeline(tiny_sd15, device="cpu")
    errors = iter(
        [
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory"
            ),
            RuntimeError("shape mismatch"),
        ]
    )

    def fail(*args: object, **kwargs: object) -> None:
        raise next(errors)

    monkeypatch.setattr(type(engine.pipe), "__call__", fail)
    with pytest.raises(OutOfMemoryError):
        generate(_request(), model_set_dir=tiny_sd15, device="cpu")
    with pytest.raises(RuntimeError, match="shape mismatch"):
        generate(_request(), model_set_dir=tiny_sd15, device="cpu")


def _private_copy(src: Path, tmp_path: Path) -> Path:
    dest = tmp_path / src.name
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".verified.json"))
    return dest


def test_missing_weights_raise_model_missing(tiny_sd15: Path, tmp_path: Path) -> None:
    broken = _private_copy(tiny_sd15, tmp_path)
    (broken / "controlnet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelMissingError, match="missing controlnet/diffusion_pytorch_model"):
        generate(_request(), model_set_dir=broken, device="cpu")
    with pytest.raises(ModelMissingError, match="not installed"):
        generate(_request(), model_set_dir=tmp_path / "sd15", device="cpu")


def test_corrupted_weights_raise_checksum_error(tiny_sd15: Path, tmp_path: Path) -> None:
    broken = _private_copy(tiny_sd15, tmp_path)
    unet = broken / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(unet.read_bytes())
    data[-100] ^= 0xFF
    unet.write_bytes(bytes(data))
    with pytest.raises(ModelChecksumError):
        generate(_request(), model_set_dir=broken, device="cpu")


def test_invalid_requests_are_refused(tiny_sd15: Path) -> None:
    with pytest.raises(InferenceError, match="garment mask is"):
        generate(
            _request(garment_mask=np.zeros((10, 10), np.uint8)),
            model_set_dir=tiny_sd15,
            device="cpu",
        )
    with pytest.raises(InferenceError, match="multiples of 8"):
        generate(_request(width=60), model_set_dir=tiny_sd15, device="cpu")
    with pytest.raises(InferenceError, match="empty"):
        generate(
            _request(garment_mask=np.zeros((H, W), np.uint8)), model_set_dir=tiny_sd15, device="cpu"
        )
    with pytest.raises(InferenceError, match="not an image set"):
        generate(_request(), model_set_dir=tiny_sd15.parent / "tiny-svd", device="cpu")


def test_garment_pixels_survive_on_real_photos(tiny_sd15: Path, samples_persons: Path) -> None:
    """The product promise on real seller-like photos: 0 changed pixels inside the garment."""
    for name in ("street_0223.jpg", "runway_man.jpg", "street_0630.jpg"):
        photo = Image.open(samples_persons / name).convert("RGB")
        mask = torso_mask(photo.size)
        req = _request(image=photo, garment_mask=mask, control_image=_pose(photo.size))
        result = generate(req, model_set_dir=tiny_sd15, device="cpu")

        core = erode(mask > 0, req.paste_erode_px)
        assert result.image.size == photo.size
        assert changed_pixels_inside(photo, result.image, core) == 0, name
        # SSIM's 11x11 window reaches 5 px (7 px at its corners) past a pixel: stay inside
        assert ssim_inside(photo, result.image, erode(core, 8)) == pytest.approx(1.0)
        # and the rest of the photo really was regenerated
        assert changed_pixels_inside(photo, result.image, mask == 0) > 0


def test_build_prompt_templates() -> None:
    prompt = build_prompt(
        category="dress",
        scene="runway",
        face={"gender": "woman", "age": "20s", "hair": "long red hair", "mood": "ignored"},
        garment_description="floral midi",
        extra="spring collection",
    )
    assert prompt.startswith(
        "a fashion model (20s woman, long red hair) wearing a floral midi dress"
    )
    assert "runway" in prompt and "spring collection" in prompt and "ignored" not in prompt
    assert "upper body" in build_prompt(category="tshirt")
    assert "wearing a outfit" in build_prompt(category="unknown-thing")
    assert "<" not in build_prompt(category="top", face={"hair": "<script>blond</script>"})
    for word in ("hands", "fingers", "extra limbs", "deformed", "watermark", "text", "blurry"):
        assert word in DEFAULT_NEGATIVE_PROMPT


def test_negative_prompt_override(tiny_sd15: Path) -> None:
    result = generate(_request(negative_prompt="blurry"), model_set_dir=tiny_sd15, device="cpu")
    assert result.negative_prompt == "blurry"


def test_fit_dimensions_keeps_aspect_in_multiples_of_8() -> None:
    assert fit_dimensions((550, 844), 768) == (504, 768)
    assert fit_dimensions((1000, 1000), 512) == (512, 512)
    w, h = fit_dimensions((739, 1134), 768)
    assert w % 8 == 0 and h == 768
