"""Catalog photos: ControlNet (OpenPose) inpainting of everything but the garment.

Built on diffusers' own pipelines (``StableDiffusionControlNetInpaintPipeline`` and the SDXL
variant) loaded from a model set folder (see ``registry``), never from the network. A loaded
pipeline is cached per (set, device) in ``cache.models``, so a GPU worker pays the load once and
then runs job after job; per-job state (LoRA, IP-Adapter scale, scheduler) is set at the start of
each job and LoRAs are removed at the end, so the cached pipeline stays clean.

The seller's garment is protected twice: the pipeline only repaints outside it, and the result is
passed through ``composite.paste_garment`` so the garment pixels are the original bytes.
"""

from __future__ import annotations

import gc
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .cache import models
from .composite import as_bool_mask, inpaint_mask_from_garment, paste_garment
from .errors import GenerationCancelled, InferenceError, OutOfMemoryError
from .registry import ModelSet, assert_components_allowed, resolve_device, verify_set_dir

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]

#: components used only on request; everything else in a set is always in use
_ON_DEMAND = ("ip_adapter", "ip_adapter_faceid", "lora")
_JOB_LORA = "job_lora"

# --------------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------------

#: how each garment category is named in the prompt, and the framing that shows it best
CATEGORIES: dict[str, tuple[str, str]] = {
    "top": ("top", "upper body shot"),
    "tshirt": ("t-shirt", "upper body shot"),
    "shirt": ("shirt", "upper body shot"),
    "blouse": ("blouse", "upper body shot"),
    "knitwear": ("knit sweater", "upper body shot"),
    "jacket": ("jacket", "three-quarter body shot"),
    "coat": ("coat", "full body shot"),
    "dress": ("dress", "full body shot"),
    "jumpsuit": ("jumpsuit", "full body shot"),
    "skirt": ("skirt", "full body shot"),
    "trousers": ("trousers", "full body shot"),
    "jeans": ("jeans", "full body shot"),
    "shorts": ("shorts", "full body shot"),
    "suit": ("suit", "full body shot"),
    "swimwear": ("swimwear", "full body shot"),
    "other": ("outfit", "full body shot"),
}

#: scene presets a seller can pick
SCENES: dict[str, str] = {
    "studio_white": "in a photo studio, seamless pure white background, soft even studio lighting",
    "studio_grey": "in a photo studio, plain light grey background, soft box lighting",
    "street": "on a city street, urban background softly out of focus, natural daylight",
    "outdoor": "outdoors in a park, greenery in soft focus, warm golden hour sunlight",
    "runway": "walking on a fashion show runway, dramatic spotlights, audience out of focus",
    "interior": "in a bright minimal interior, large window light, neutral tones",
}

#: face attribute keys we put into the prompt, in this order; other keys are ignored
FACE_ATTRIBUTE_ORDER = (
    "age",
    "ethnicity",
    "skin_tone",
    "gender",
    "hair",
    "body_type",
    "expression",
)

QUALITY = "professional e-commerce catalog photo, sharp focus, high detail, realistic skin texture"

DEFAULT_NEGATIVE_PROMPT = (
    "deformed hands, extra fingers, missing fingers, fused fingers, bad hands, bad anatomy, "
    "extra limbs, missing limbs, extra arms, extra legs, deformed, disfigured, mutated, "
    "malformed face, asymmetric eyes, artefacts, jpeg artifacts, watermark, text, logo, "
    "signature, blurry, out of focus, lowres, cropped head, nsfw, nude"
)

_UNSAFE = re.compile(r"[^\w\s'\-]+", re.UNICODE)


def _clean(value: object, max_len: int = 60) -> str:
    """Attribute values come from curators and sellers: keep words only, and keep them short so
    CLIP's 77-token window still reaches the garment and the scene."""
    text = _UNSAFE.sub(" ", str(value))
    return " ".join(text.split())[:max_len].strip()


def describe_face(face: dict[str, Any] | None) -> str:
    """``{"age": "30s", "gender": "woman", "hair": "short black hair"}`` -> "30s woman, ..."."""
    face = face or {}
    parts = {k: _clean(face[k]) for k in FACE_ATTRIBUTE_ORDER if face.get(k)}
    subject = " ".join(
        parts.pop(k) for k in ("age", "ethnicity", "skin_tone", "gender") if k in parts
    )
    if subject and "gender" not in face:
        subject += " person"
    rest = [parts.get("hair", "")]
    if "body_type" in parts:
        rest.append(f"{parts['body_type']} build")
    if "expression" in parts:
        rest.append(f"{parts['expression']} expression")
    return ", ".join(p for p in [subject, *rest] if p)


def build_prompt(
    *,
    category: str,
    scene: str = "studio_white",
    face: dict[str, Any] | None = None,
    garment_description: str = "",
    extra: str = "",
) -> str:
    """The positive prompt: garment first (CLIP weighs early tokens most), then model, scene."""
    noun, framing = CATEGORIES.get(category, CATEGORIES["other"])
    garment = f"{_clean(garment_description)} {noun}".strip()
    who = describe_face(face)
    subject = f"a fashion model ({who})" if who else "a fashion model"
    scene_text = SCENES.get(scene) or _clean(scene, 120) or SCENES["studio_white"]
    # the seller's own words go before the generic quality tail: CLIP truncates at 77 tokens
    parts = [f"{subject} wearing a {garment}", framing, scene_text, _clean(extra, 120), QUALITY]
    return ", ".join(p for p in parts if p)


# --------------------------------------------------------------------------------------------
# Request / result
# --------------------------------------------------------------------------------------------


@dataclass
class GenerationRequest:
    image: Image.Image  # the seller's photo (RGB, EXIF orientation already applied)
    garment_mask: np.ndarray  # (H, W) uint8 of the photo's size, 255 = garment (kept)
    control_image: Image.Image | None = None  # rendered OpenPose skeleton; None = no pose guide
    category: str = "top"
    scene: str = "studio_white"
    face_attributes: dict[str, str] = field(default_factory=dict)
    garment_description: str = ""
    prompt_extra: str = ""
    negative_prompt: str | None = None  # None = DEFAULT_NEGATIVE_PROMPT
    seed: int | None = None  # None = a random seed, reported in the result
    steps: int = 25
    guidance_scale: float = 7.0
    strength: float = 1.0
    controlnet_conditioning_scale: float = 0.8
    width: int | None = None  # multiples of 8; None = the photo's aspect, long side max_side
    height: int | None = None
    max_side: int = 768
    scheduler: str = "unipc"  # see SCHEDULERS
    mask_dilate_px: int = 0  # grow the garment before inpainting (tight segmentation)
    mask_erode_px: int = 6  # repaint this far into the garment edge, so seams blend
    paste_erode_px: int = 2  # exact-copy region = garment eroded by this
    paste_feather_px: int = 6  # blend band outside the exact-copy region
    face_image: Image.Image | None = None  # reference face for the plain IP-Adapter
    face_embedding: np.ndarray | None = None  # 512-d insightface embedding(s) for FaceID
    ip_adapter_scale: float = 0.6
    lora_path: str | Path | None = None  # absolute, or relative to the model set folder
    lora_scale: float = 0.8


@dataclass
class GenerationResult:
    image: Image.Image  # final: photo size, original garment pixels pasted back
    raw_image: Image.Image  # the pipeline's own output at width x height
    seed: int
    prompt: str
    negative_prompt: str
    model_set: str
    width: int
    height: int
    steps: int
    identity: str | None  # "ip_adapter", "ip_adapter_faceid" or None
    lora: str | None
    timings: dict[str, float]  # load_s, inference_s, composite_s, total_s


def fit_dimensions(
    size: tuple[int, int], max_side: int = 768, multiple: int = 8
) -> tuple[int, int]:
    """(w, h) with the photo's aspect ratio, long side ``max_side``, multiples of ``multiple``."""
    w, h = size
    scale = max_side / max(w, h)
    return (
        max(multiple, round(w * scale / multiple) * multiple),
        max(multiple, round(h * scale / multiple) * multiple),
    )


# --------------------------------------------------------------------------------------------
# Loading (cached per process)
# --------------------------------------------------------------------------------------------


@dataclass
class Engine:
    """A loaded pipeline plus the per-process state we track on it."""

    pipe: Any
    model_set: ModelSet
    device: str
    dtype: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    identity: str | None = None  # which IP-Adapter component is loaded into the UNet
    faceid_adapters: tuple[str, ...] = ()  # LoRA adapters FaceID brought with it


def _scheduler(name: str, config: Any) -> Any:
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
        UniPCMultistepScheduler,
    )

    # UniPC and DPM++ 2M (Karras) reach good quality in 15-25 steps; that is most of the speed
    factories = {
        "unipc": lambda: UniPCMultistepScheduler.from_config(config),
        "dpmpp_2m": lambda: DPMSolverMultistepScheduler.from_config(config, use_karras_sigmas=True),
        "euler": lambda: EulerDiscreteScheduler.from_config(config),
        "euler_a": lambda: EulerAncestralDiscreteScheduler.from_config(config),
        "ddim": lambda: DDIMScheduler.from_config(config),
    }
    if name not in factories:
        raise InferenceError(f"Unknown scheduler {name!r}; choose from {', '.join(factories)}")
    return factories[name]()


SCHEDULERS = ("unipc", "dpmpp_2m", "euler", "euler_a", "ddim")


def load_pipeline(
    model_set_dir: Path | str, *, device: str = "auto", compile_unet: bool = False
) -> Engine:
    """The cached engine for this set and device, loading (and verifying) it the first time."""
    set_dir = Path(model_set_dir).resolve()
    dev, dtype = resolve_device(device)
    key = f"inpaint:{set_dir}:{dev}:{'compiled' if compile_unet else 'eager'}"
    return models.get(key, lambda: _load_engine(set_dir, dev, dtype, compile_unet))


def _load_engine(set_dir: Path, device: str, dtype: Any, compile_unet: bool) -> Engine:
    import torch
    from diffusers import (
        ControlNetModel,
        StableDiffusionControlNetInpaintPipeline,
        StableDiffusionXLControlNetInpaintPipeline,
    )

    model_set = verify_set_dir(set_dir)  # stamps make this a stat() per file after the 1st time
    if model_set.kind not in ("sd15", "sdxl"):
        raise InferenceError(
            f"Model set '{model_set.name}' is a {model_set.kind} set, not an image set"
        )
    if not model_set.has("controlnet"):
        raise InferenceError(f"Model set '{model_set.name}' has no controlnet component")
    t0 = time.perf_counter()
    common: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
    controlnet = ControlNetModel.from_pretrained(set_dir / "controlnet", **common)
    if model_set.kind == "sd15":
        pipe = StableDiffusionControlNetInpaintPipeline.from_pretrained(
            set_dir,
            controlnet=controlnet,
            safety_checker=None,  # moderation happens in QA review; no checker weights shipped
            requires_safety_checker=False,
            **common,
        )
    else:
        pipe = StableDiffusionXLControlNetInpaintPipeline.from_pretrained(
            set_dir, controlnet=controlnet, add_watermarker=False, **common
        )
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    if device.startswith("cuda"):
        # Attention uses PyTorch SDPA (diffusers' default processor): flash/mem-efficient
        # kernels in fp16, no xformers needed. channels_last speeds up the convolutions.
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.controlnet.to(memory_format=torch.channels_last)
        pipe.vae.enable_slicing()  # decode one image at a time: caps VAE memory for batches
        if compile_unet:
            # compiled in place, so load_ip_adapter / LoRA still reach the module; each change
            # of adapters recompiles once, so keep adapters stable on compiled workers
            pipe.unet.compile(mode="max-autotune-no-cudagraphs")
            pipe.controlnet.compile(mode="max-autotune-no-cudagraphs")
    logger.info("loaded %s on %s in %.1fs", model_set.name, device, time.perf_counter() - t0)
    return Engine(pipe=pipe, model_set=model_set, device=device, dtype=dtype)


# --------------------------------------------------------------------------------------------
# IP-Adapter / FaceID / LoRA management on a cached pipeline
# --------------------------------------------------------------------------------------------


def _wanted_identity(engine: Engine, request: GenerationRequest, *, commercial: bool) -> str | None:
    """Which identity adapter this job uses. FaceID (an insightface embedding) keeps a face more
    faithfully than the plain IP-Adapter, so it wins when the set has it and its licence allows
    this use; with both inputs given, a job falls back to the plain adapter instead of failing."""
    ms = engine.model_set
    faceid = ms.component("ip_adapter_faceid")
    faceid_allowed = faceid is not None and (faceid.commercial_use or not commercial)
    if request.face_embedding is not None and faceid_allowed:
        return "ip_adapter_faceid"
    if request.face_image is not None and ms.has("ip_adapter"):
        return "ip_adapter"
    if request.face_embedding is not None:
        if faceid is not None:
            return "ip_adapter_faceid"  # the licence check refuses it with a clear message
        raise InferenceError(
            f"A FaceID embedding was given but model set '{ms.name}' has no "
            "ip_adapter_faceid component (download it with its optional components)"
        )
    if request.face_image is not None:
        raise InferenceError(
            f"A face reference image was given but model set '{ms.name}' has no ip_adapter"
        )
    return None


def _ensure_identity_adapter(engine: Engine, wanted: str | None) -> None:
    """Load the wanted IP-Adapter once; keep whatever is loaded when none is wanted (a job
    without a face then runs it at scale 0, which leaves the output unchanged)."""
    if wanted is None or engine.identity == wanted:
        return
    pipe = engine.pipe
    if engine.identity is not None:
        _unload_identity(engine)
    params = engine.model_set.components[wanted].params
    before = set(_list_adapters(pipe))
    pipe.load_ip_adapter(
        str(engine.model_set.root),
        subfolder=params.get("subfolder", "ip_adapter"),
        weight_name=params["weight_name"],
        image_encoder_folder=params.get("image_encoder_folder"),  # None for FaceID
        local_files_only=True,
    )
    engine.identity = wanted
    engine.faceid_adapters = tuple(sorted(set(_list_adapters(pipe)) - before))


def _unload_identity(engine: Engine) -> None:
    pipe = engine.pipe
    if engine.faceid_adapters:
        pipe.delete_adapters(list(engine.faceid_adapters))
    pipe.unload_ip_adapter()
    engine.identity = None
    engine.faceid_adapters = ()


def _list_adapters(pipe: Any) -> list[str]:
    try:
        return sorted({a for names in pipe.get_list_adapters().values() for a in names})
    except (ValueError, AttributeError):  # no PEFT adapter loaded yet
        return []


def _identity_inputs(engine: Engine, request: GenerationRequest, use: str | None) -> dict[str, Any]:
    """Pipeline kwargs for the loaded IP-Adapter: the real face input, or zeros at scale 0."""
    import torch

    pipe = engine.pipe
    if engine.identity is None:
        return {}
    pipe.set_ip_adapter_scale(request.ip_adapter_scale if use else 0.0)
    if use == "ip_adapter":
        return {"ip_adapter_image": request.face_image.convert("RGB")}
    layer = pipe.unet.encoder_hid_proj.image_projection_layers[0]
    in_dim = next(m for m in layer.modules() if isinstance(m, torch.nn.Linear)).in_features
    if use == "ip_adapter_faceid":
        emb = np.asarray(request.face_embedding, dtype=np.float32)
        if emb.shape[-1] != in_dim:
            raise InferenceError(f"this FaceID adapter needs {in_dim}-d embeddings")
        positive = torch.from_numpy(emb.reshape(1, -1, in_dim))  # (1, n_images, dim)
    else:
        positive = torch.zeros(1, 1, in_dim)
    # classifier-free guidance: [negative (zeros, as in the FaceID paper), positive]
    embeds = torch.cat([torch.zeros_like(positive), positive]).to(engine.device, engine.dtype)
    return {"ip_adapter_image_embeds": [embeds]}


def _check_embedding(request: GenerationRequest) -> None:
    if request.face_embedding is None:
        return
    emb = np.asarray(request.face_embedding)
    if emb.shape[-1] != 512 or emb.ndim > 2:
        raise InferenceError(
            f"FaceID needs 512-d insightface embeddings, shape (512,) or (n, 512); got {emb.shape}"
        )


def _set_lora_weights(engine: Engine, *, faceid_on: bool, job_lora: float | None) -> None:
    """Activate exactly the LoRAs this job needs (load_lora_weights activates only the new
    adapter, which would silently switch FaceID's own LoRA off)."""
    names: list[str] = []
    weights: list[float] = []
    for name in engine.faceid_adapters:
        names.append(name)
        weights.append(1.0 if faceid_on else 0.0)
    if job_lora is not None:
        names.append(_JOB_LORA)
        weights.append(job_lora)
    if names:
        engine.pipe.set_adapters(names, adapter_weights=weights)


def _resolve_lora(model_set_dir: Path, lora: str | Path) -> Path:
    path = Path(lora)
    if not path.is_absolute():
        path = model_set_dir / path
    if not path.is_file():
        raise InferenceError(f"LoRA file not found: {path}")
    return path


# --------------------------------------------------------------------------------------------
# Running a job
# --------------------------------------------------------------------------------------------


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):  # torch.cuda.OutOfMemoryError is this class
        return True
    msg = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError)
        or "can't allocate memory" in msg
        or "not enough memory" in msg
        or "out of memory" in msg
    )


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _oom_error(engine: Engine, width: int, height: int, exc: BaseException) -> OutOfMemoryError:
    return OutOfMemoryError(
        f"Out of memory on {engine.device} generating {width}x{height} with "
        f"'{engine.model_set.name}' ({type(exc).__name__}). Retry at a smaller size or with fewer "
        "images per job, or run one GPU worker per GPU; the worker freed its cache and can go on."
    )


def _run_pipeline(
    engine: Engine,
    kwargs: dict[str, Any],
    *,
    progress: ProgressFn | None,
    should_cancel: CancelFn | None,
) -> Any:
    cancelled = False

    def on_step_end(pipe: Any, step: int, timestep: Any, cb_kwargs: dict[str, Any]) -> dict:
        nonlocal cancelled
        if progress is not None:
            progress(step + 1, pipe.num_timesteps)
        if should_cancel is not None and should_cancel():
            # the pipeline skips the remaining steps; we raise once it returns
            cancelled = True
            pipe._interrupt = True
        return cb_kwargs

    try:
        out = engine.pipe(callback_on_step_end=on_step_end, **kwargs)
    except Exception as exc:
        if _is_oom(exc):
            _free_memory()
            raise _oom_error(engine, kwargs["width"], kwargs["height"], exc) from exc
        raise
    if cancelled:
        raise GenerationCancelled("Generation was cancelled")
    return out


def generate(
    request: GenerationRequest,
    *,
    model_set_dir: Path | str,
    device: str = "auto",
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    commercial: bool = True,
    compile_unet: bool = False,
) -> GenerationResult:
    """Repaint everything but the garment around an OpenPose skeleton, paste the garment back.

    ``progress(i, n)`` is called after each denoising step; ``should_cancel()`` is polled there
    too, and a True stops the job with GenerationCancelled. ``commercial`` refuses components
    whose licence forbids commercial use (ModelLicenceError).
    """
    t_start = time.perf_counter()
    _validate(request)
    if should_cancel is not None and should_cancel():
        raise GenerationCancelled("Generation was cancelled before it started")
    set_dir = Path(model_set_dir)
    engine = load_pipeline(set_dir, device=device, compile_unet=compile_unet)
    t_loaded = time.perf_counter()

    wanted = _wanted_identity(engine, request, commercial=commercial)
    used = [c for c in engine.model_set.components if c not in _ON_DEMAND]
    assert_components_allowed(
        engine.model_set, commercial=commercial, components=used + ([wanted] if wanted else [])
    )
    width, height = _dimensions(request)
    prompt = build_prompt(
        category=request.category,
        scene=request.scene,
        face=request.face_attributes,
        garment_description=request.garment_description,
        extra=request.prompt_extra,
    )
    job = _Resolved(
        prompt=prompt,
        negative_prompt=(
            request.negative_prompt
            if request.negative_prompt is not None
            else DEFAULT_NEGATIVE_PROMPT
        ),
        seed=request.seed if request.seed is not None else secrets.randbits(31),
        width=width,
        height=height,
    )
    raw = _inpaint(engine, request, set_dir, wanted, job, progress, should_cancel)
    t_inferred = time.perf_counter()
    final = paste_garment(
        request.image.convert("RGB"),
        raw,
        request.garment_mask,
        erode_px=request.paste_erode_px,
        feather_px=request.paste_feather_px,
    )
    return _result(
        engine,
        request,
        job,
        wanted,
        raw=raw,
        final=final,
        timings=phase_timings(
            t_start, load=t_loaded, inference=t_inferred, composite=time.perf_counter()
        ),
    )


@dataclass(frozen=True)
class _Resolved:
    """What a job settles before the pipeline runs (a random seed, the default negative prompt,
    the output size): the pipeline call uses it and the result reports it."""

    prompt: str
    negative_prompt: str
    seed: int
    width: int
    height: int


def phase_timings(start: float, **phase_ends: float) -> dict[str, float]:
    """``{"<phase>_s": seconds, ..., "total_s": seconds}`` from ``perf_counter`` marks.

    ``phase_ends`` lists, in order, the moment each phase ended; each phase began when the
    previous one ended (the first at ``start``).
    """
    timings: dict[str, float] = {}
    previous = start
    for phase, end in phase_ends.items():
        timings[f"{phase}_s"] = end - previous
        previous = end
    timings["total_s"] = previous - start
    return timings


def _inpaint(
    engine: Engine,
    request: GenerationRequest,
    set_dir: Path,
    wanted: str | None,
    job: _Resolved,
    progress: ProgressFn | None,
    should_cancel: CancelFn | None,
) -> Image.Image:
    """One pipeline call: repaint all but ``request.garment_mask`` around its pose guide."""
    photo = request.image.convert("RGB")
    control = request.control_image
    control_scale = request.controlnet_conditioning_scale
    if control is None:  # no pose guide: a black image, which scale 0 makes the ControlNet ignore
        control, control_scale = Image.new("RGB", photo.size), 0.0
    inputs: dict[str, Any] = dict(
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        image=photo,
        mask_image=inpaint_mask_from_garment(
            request.garment_mask,
            dilate_px=request.mask_dilate_px,
            erode_px=request.mask_erode_px,
        ),
        control_image=control.convert("RGB"),
        width=job.width,
        height=job.height,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance_scale,
        strength=request.strength,
        controlnet_conditioning_scale=control_scale,
        generator=_generator(job.seed),
    )
    pipe = engine.pipe
    with engine.lock:  # one job at a time per cached pipeline: adapters are shared state
        pipe.scheduler = _scheduler(request.scheduler, pipe.scheduler.config)
        _ensure_identity_adapter(engine, wanted)
        inputs |= _identity_inputs(engine, request, wanted)
        job_lora = None
        try:
            if request.lora_path:
                lora = _resolve_lora(set_dir, request.lora_path)
                pipe.load_lora_weights(
                    str(lora.parent), weight_name=lora.name, adapter_name=_JOB_LORA
                )
                job_lora = request.lora_scale
            _set_lora_weights(engine, faceid_on=wanted == "ip_adapter_faceid", job_lora=job_lora)
            out = _run_pipeline(engine, inputs, progress=progress, should_cancel=should_cancel)
        finally:
            if job_lora is not None or _JOB_LORA in _list_adapters(pipe):
                # delete only this job's adapter: unload_lora_weights would drop FaceID's LoRA too
                pipe.delete_adapters(_JOB_LORA)
    return out.images[0]


def _result(
    engine: Engine,
    request: GenerationRequest,
    job: _Resolved,
    identity: str | None,
    *,
    raw: Image.Image,
    final: Image.Image,
    timings: dict[str, float],
) -> GenerationResult:
    return GenerationResult(
        image=final,
        raw_image=raw,
        seed=job.seed,
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        model_set=engine.model_set.name,
        width=job.width,
        height=job.height,
        steps=request.steps,
        identity=identity,
        lora=str(request.lora_path) if request.lora_path else None,
        timings=timings,
    )


def _generator(seed: int) -> Any:
    """A CPU generator on purpose: diffusers draws the initial noise on the generator's device
    and moves it, so the same seed gives the same noise on CPU, any CUDA GPU and in tests."""
    import torch

    return torch.Generator(device="cpu").manual_seed(seed)


def _dimensions(request: GenerationRequest) -> tuple[int, int]:
    if request.width is None or request.height is None:
        return fit_dimensions(request.image.size, request.max_side)
    if request.width % 8 or request.height % 8:
        raise InferenceError(
            f"width and height must be multiples of 8, got {request.width}x{request.height}"
        )
    photo_aspect = request.image.width / request.image.height
    if abs(request.width / request.height - photo_aspect) > 0.02 * photo_aspect:
        # the pipeline stretches the photo to this size and paste-back stretches it back: it
        # works, but the model sees a distorted body
        logger.warning(
            "generating at %sx%s for a %sx%s photo distorts its aspect ratio",
            request.width,
            request.height,
            request.image.width,
            request.image.height,
        )
    return request.width, request.height


def _validate(request: GenerationRequest) -> None:
    mask = as_bool_mask(request.garment_mask)
    if mask.shape != (request.image.height, request.image.width):
        raise InferenceError(
            f"garment mask is {mask.shape[1]}x{mask.shape[0]} but the photo is "
            f"{request.image.width}x{request.image.height}"
        )
    if not mask.any():
        raise InferenceError("the garment mask is empty; nothing would be kept")
    if request.steps < 1:
        raise InferenceError("steps must be at least 1")
    if not 0.0 < request.strength <= 1.0:
        raise InferenceError("strength must be in (0, 1]")
    _check_embedding(request)


# --------------------------------------------------------------------------------------------
# Text to image (synthetic faces for the face library)
# --------------------------------------------------------------------------------------------


def text_to_image(
    prompt: str,
    *,
    model_set_dir: Path | str,
    device: str = "auto",
    negative_prompt: str | None = None,
    width: int = 512,
    height: int = 512,
    seed: int | None = None,
    steps: int = 25,
    guidance_scale: float = 7.0,
    scheduler: str = "unipc",
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    commercial: bool = True,
) -> GenerationResult:
    """Plain text-to-image with the cached inpainting pipeline: an all-white mask repaints the
    whole canvas and the ControlNet runs at scale 0. Reusing the loaded pipeline avoids a second
    copy of the weights in GPU memory (an inpainting UNet cannot run in a text-to-image
    pipeline: it expects 9 input channels)."""
    t_start = time.perf_counter()
    if width % 8 or height % 8:
        raise InferenceError(f"width and height must be multiples of 8, got {width}x{height}")
    if should_cancel is not None and should_cancel():
        raise GenerationCancelled("Generation was cancelled before it started")
    engine = load_pipeline(model_set_dir, device=device)
    t_loaded = time.perf_counter()
    used = [c for c in engine.model_set.components if c not in _ON_DEMAND]
    assert_components_allowed(engine.model_set, commercial=commercial, components=used)
    job = _Resolved(
        prompt=prompt,
        negative_prompt=negative_prompt if negative_prompt is not None else DEFAULT_NEGATIVE_PROMPT,
        seed=seed if seed is not None else secrets.randbits(31),
        width=width,
        height=height,
    )
    # a grey canvas with no garment: the inpainting mask is then all white (repaint everything)
    # and, with no pose guide, the ControlNet runs at scale 0
    request = GenerationRequest(
        image=Image.new("RGB", (width, height), (127, 127, 127)),
        garment_mask=np.zeros((height, width), np.uint8),
        steps=steps,
        guidance_scale=guidance_scale,
        scheduler=scheduler,
    )
    raw = _inpaint(engine, request, Path(model_set_dir), None, job, progress, should_cancel)
    t_end = time.perf_counter()
    return _result(
        engine,
        request,
        job,
        None,
        raw=raw,
        final=raw,  # nothing to paste back
        timings=phase_timings(t_start, load=t_loaded, inference=t_end, composite=t_end),
    )


def loaded_engines() -> Iterable[str]:
    """Keys of the pipelines this process holds (for worker health output)."""
    return [k for k in models.stats() if k.startswith("inpaint:") and k in models]
