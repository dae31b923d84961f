"""The gpu job: turn one GenerationJob (shoot analysis + face + settings) into assets.

Flow: claim the job (CAS queued -> running for this attempt), read its inputs, run the diffusion
engine (the pipeline stays loaded in the worker process between jobs), optionally a video, write
the files to storage, then record success in one short transaction. Every failure ends in a clear
job status and message; the run/shoot move on when the last job of the run is done.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings

from core.files import StorageWriteError, StoredFiles, png_bytes, sha256, stored_files
from facelibrary.identity import face_identity_inputs
from facelibrary.selectors import USE_IMAGES, USE_VIDEO, face_unusable_reason
from generation.inference.diffusion import GenerationRequest, GenerationResult, generate
from generation.inference.errors import GenerationCancelled, InferenceError, ModelMissingError
from generation.inference.registry import ModelRegistry
from generation.inference.video import generate_video, video_dimensions

from .inputs import job_inputs
from .models import Asset, GenerationJob
from .services import (
    CONSENT,
    NO_VIDEO,
    JobOutcome,
    StoredAsset,
    generation_job_fail,
    generation_job_progress,
    generation_job_start,
    generation_job_succeed,
)

log = logging.getLogger(__name__)

STORAGE_FAILED = (
    "The generated image could not be saved (storage full or unavailable). "
    "Nothing was kept; retry the generation later."
)

#: request fields a run's settings may override (anything else in settings is ignored)
TUNABLE = (
    "steps",
    "guidance_scale",
    "strength",
    "controlnet_conditioning_scale",
    "max_side",
    "scheduler",
    "mask_dilate_px",
    "mask_erode_px",
    "ip_adapter_scale",
    "prompt_extra",
    "negative_prompt",
    "lora_path",
    "lora_scale",
)


def job_settings(job: GenerationJob) -> dict[str, Any]:
    return {**settings.GENERATION_DEFAULTS, **(job.settings or {})}


def build_request(job: GenerationJob, options: dict[str, Any]) -> GenerationRequest:
    shoot = job.run.shoot
    inputs = job_inputs(job)
    if inputs.photo is None:
        raise InferenceError("The shoot has no photo to generate from.")
    if inputs.mask is None or not inputs.has_pose:
        raise InferenceError("The shoot has no confirmed mask and pose; redo the mask review.")
    identity = face_identity_inputs(job.face)
    return GenerationRequest(
        image=inputs.photo_image(),
        garment_mask=inputs.mask_array(),
        control_image=inputs.pose_image(),
        category=shoot.category,
        scene=options.get("scene") or shoot.scene,
        face_attributes=identity.attributes,
        garment_description=shoot.title,
        seed=job.seed,
        face_image=identity.image,
        face_embedding=identity.embedding,
        **{key: options[key] for key in TUNABLE if key in options},
    )


class _Progress:
    """Writes step i of n to the job row; remembers when the job was cancelled meanwhile."""

    def __init__(self, job_id: int, offset: int = 0, total: int | None = None) -> None:
        self.job_id, self.offset, self.total = job_id, offset, total
        self.stop = False

    def __call__(self, step: int, total: int) -> None:
        keep_going = generation_job_progress(
            job_id=self.job_id, step=self.offset + step, total=self.total or total
        )
        self.stop = not keep_going

    def should_cancel(self) -> bool:
        return self.stop


def _store_image(result: GenerationResult, files: StoredFiles) -> StoredAsset:
    data = png_bytes(result.image)
    name = files.store("assets", data, "png")
    width, height = result.image.size
    return StoredAsset(Asset.Kind.IMAGE, name, width, height, sha256(data))


def _make_video(
    job: GenerationJob, image, options, files: StoredFiles, progress
) -> StoredAsset | None:
    set_dir = settings.MODEL_ROOT / options["video_model_set"]
    width, height = video_dimensions(image.size, max_side=options["video_max_side"])
    try:
        video = generate_video(
            image,
            model_set_dir=set_dir,
            device=settings.INFERENCE_DEVICE,
            num_frames=options["video_frames"],
            fps=options["video_fps"],
            steps=options["video_steps"],
            seed=job.seed,
            width=width,
            height=height,
            progress=progress,
            should_cancel=progress.should_cancel,
        )
    except ModelMissingError as exc:
        # Video is an extra: a missing video model must not cost the seller the image.
        log.warning("job %s: no video (%s)", job.pk, exc)
        return None
    name = files.store("assets", video.mp4, "mp4")
    poster = files.store("assets", video.poster, "png")
    return StoredAsset(Asset.Kind.VIDEO, name, video.width, video.height, sha256(video.mp4), poster)


def run_generation_job(*, job_id: int, attempt: int) -> None:
    job = generation_job_start(job_id=job_id, attempt=attempt)
    if job is None:
        log.info("generation job %s attempt %s is not claimable; skipped", job_id, attempt)
        return
    # Consent at the moment of use: the face may have been retired, or its consent revoked or
    # ended, since the job was queued. Only this job fails; the rest of the run goes on.
    refused = face_unusable_reason(job.face, use=USE_IMAGES)
    if refused:
        log.info("generation job %s: face may no longer be used (%s)", job.pk, refused)
        generation_job_fail(job=job, code=CONSENT, message=refused)
        return
    try:
        with stored_files() as files:  # any failure below removes the files written so far
            _generate(job, files)
    except GenerationCancelled:
        generation_job_fail(job=job, code="cancelled", message="Cancelled.")
    except InferenceError as exc:
        generation_job_fail(job=job, code=exc.code, message=str(exc))
    except StorageWriteError:
        # Disk full or storage down: say so (not "unexpected"); nothing was kept, and retrying
        # the generation works once there is room again.
        log.exception("generation job %s could not store its result", job.pk)
        generation_job_fail(job=job, code="storage", message=STORAGE_FAILED)
    except Exception as exc:
        generation_job_fail(
            job=job, code="error", message=f"Generation failed unexpectedly ({type(exc).__name__})."
        )
        raise


def _generate(job: GenerationJob, files: StoredFiles) -> None:
    options = job_settings(job)
    registry = ModelRegistry(settings.MODEL_ROOT)
    set_dir = registry.set_dir(job.model_set)
    started = time.perf_counter()
    request = build_request(job, options)
    want_video = bool(options.get("video"))
    total = request.steps + (options["video_steps"] if want_video else 0)
    progress = _Progress(job.pk, total=total)
    result = generate(
        request,
        model_set_dir=set_dir,
        device=settings.INFERENCE_DEVICE,
        progress=progress,
        should_cancel=progress.should_cancel,
        commercial=settings.COMMERCIAL_MODE,
    )
    image_seconds = time.perf_counter() - started
    assets = [_store_image(result, files)]
    note = ""
    # Checked at video time: a consent may cover catalog images but not video. The image stays.
    no_video = face_unusable_reason(job.face, use=USE_VIDEO) if want_video else None
    if no_video:
        note = f"{no_video} No video was made; the image was kept."
        log.info("generation job %s: %s", job.pk, note)
    elif want_video:
        video_progress = _Progress(job.pk, offset=request.steps, total=total)
        video = _make_video(job, result.image, options, files, video_progress)
        if video is not None:
            assets.append(video)
    outcome = JobOutcome(
        seconds_per_image=round(image_seconds, 3),
        model_hashes=registry.model_hashes(job.model_set),
        prompt=result.prompt,
        negative_prompt=result.negative_prompt,
        note=note,
        note_code=NO_VIDEO if note else "",
    )
    if not generation_job_succeed(job=job, assets=assets, outcome=outcome):
        files.discard()  # cancelled or superseded while we worked
