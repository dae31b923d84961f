"""Short motion clips from a finished catalog photo (Stable Video Diffusion), as H.264 MP4.

The pipeline is diffusers' ``StableVideoDiffusionPipeline`` loaded from an ``svd`` model set and
cached per (set, device) like the image pipelines. A missing set raises ModelMissingError; the
Django side decides whether video is optional for a shoot.

MP4 encoding uses the ffmpeg binary bundled with imageio-ffmpeg (a static build with libx264), so
no system ffmpeg is needed: H.264 High profile, yuv420p (what every browser and phone plays),
even dimensions (a yuv420p requirement) and ``+faststart`` (the index at the front, so the clip
starts playing before it has fully downloaded).
"""

from __future__ import annotations

import io
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .cache import models
from .diffusion import _free_memory, _generator, _is_oom, phase_timings
from .errors import GenerationCancelled, InferenceError, OutOfMemoryError
from .registry import assert_components_allowed, resolve_device, verify_set_dir

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


@dataclass
class VideoResult:
    frames: list[Image.Image]
    mp4: bytes
    poster: bytes  # PNG of the first frame (the conditioning image, the sharpest frame)
    fps: int
    seed: int
    width: int
    height: int
    model_set: str
    timings: dict[str, float]  # load_s, inference_s, encode_s, total_s


@dataclass
class _VideoEngine:
    pipe: Any
    name: str
    device: str
    model_set: Any


def load_video_pipeline(model_set_dir: Path | str, *, device: str = "auto") -> _VideoEngine:
    set_dir = Path(model_set_dir).resolve()
    dev, dtype = resolve_device(device)
    return models.get(f"svd:{set_dir}:{dev}", lambda: _load(set_dir, dev, dtype))


def _load(set_dir: Path, device: str, dtype: Any) -> _VideoEngine:
    from diffusers import StableVideoDiffusionPipeline

    model_set = verify_set_dir(set_dir)
    if model_set.kind != "svd":
        raise InferenceError(f"Model set '{model_set.name}' is a {model_set.kind} set, not svd")
    pipe = StableVideoDiffusionPipeline.from_pretrained(set_dir, dtype=dtype, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    return _VideoEngine(pipe=pipe, name=model_set.name, device=device, model_set=model_set)


def video_dimensions(size: tuple[int, int], max_side: int = 1024) -> tuple[int, int]:
    """The photo's aspect ratio with long side ``max_side``, multiples of 64 (SVD's UNet
    downsamples the 1/8 latents three more times)."""
    w, h = size
    scale = max_side / max(w, h)
    return max(64, round(w * scale / 64) * 64), max(64, round(h * scale / 64) * 64)


def generate_video(
    image: Image.Image,
    *,
    model_set_dir: Path | str,
    device: str = "auto",
    num_frames: int = 14,
    fps: int = 7,
    seed: int | None = None,
    steps: int = 25,
    width: int | None = None,
    height: int | None = None,
    motion_bucket_id: int = 127,
    noise_aug_strength: float = 0.02,
    decode_chunk_size: int = 8,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    commercial: bool = True,
) -> VideoResult:
    """Animate a still into ``num_frames`` frames and encode them as an MP4 at ``fps``.

    ``decode_chunk_size`` trades VAE memory for speed (8 fits 25 frames at 1024x576 on a
    24 GB GPU). ``motion_bucket_id`` (1-255) sets how much motion; ~127 suits a model turning or
    shifting weight.
    """
    t_start = time.perf_counter()
    if should_cancel is not None and should_cancel():
        raise GenerationCancelled("Video generation was cancelled before it started")
    engine = load_video_pipeline(model_set_dir, device=device)
    assert_components_allowed(engine.model_set, commercial=commercial)
    t_loaded = time.perf_counter()
    if width is None or height is None:
        width, height = video_dimensions(image.size)
    seed = seed if seed is not None else secrets.randbits(31)

    def on_step_end(pipe: Any, step: int, timestep: Any, cb_kwargs: dict[str, Any]) -> dict:
        if progress is not None:
            progress(step + 1, pipe.num_timesteps)
        if should_cancel is not None and should_cancel():
            # the SVD pipeline has no interrupt flag: leave its loop by raising
            raise GenerationCancelled("Video generation was cancelled")
        return cb_kwargs

    try:
        out = engine.pipe(
            image.convert("RGB"),
            width=width,
            height=height,
            num_frames=num_frames,
            num_inference_steps=steps,
            fps=fps,
            motion_bucket_id=motion_bucket_id,
            noise_aug_strength=noise_aug_strength,
            decode_chunk_size=decode_chunk_size,
            generator=_generator(seed),
            callback_on_step_end=on_step_end,
        )
    except GenerationCancelled:
        raise
    except Exception as exc:
        if _is_oom(exc):
            _free_memory()
            raise OutOfMemoryError(
                f"Out of memory on {engine.device} making a {num_frames}-frame {width}x{height} "
                "video; retry with fewer frames, a smaller size or a smaller decode_chunk_size."
            ) from exc
        raise
    frames = list(out.frames[0])
    t_inferred = time.perf_counter()
    mp4 = encode_mp4(frames, fps)
    poster = poster_frame(frames)
    t_end = time.perf_counter()
    return VideoResult(
        frames=frames,
        mp4=mp4,
        poster=poster,
        fps=fps,
        seed=seed,
        width=width,
        height=height,
        model_set=engine.name,
        timings=phase_timings(t_start, load=t_loaded, inference=t_inferred, encode=t_end),
    )


def _even(frame: Image.Image) -> np.ndarray:
    """RGB uint8 with even width and height: yuv420p stores colour at half resolution. Cropping
    one edge pixel avoids resampling (and its blur) for odd-sized frames."""
    arr = np.asarray(frame.convert("RGB"))
    h, w = arr.shape[:2]
    return np.ascontiguousarray(arr[: h - h % 2, : w - w % 2])


def encode_mp4(
    frames: Sequence[Image.Image], fps: int, path: str | Path | None = None, *, crf: int = 18
) -> bytes:
    """Encode frames as H.264 MP4 (libx264, yuv420p, +faststart); return the bytes, and also
    write them to ``path`` when given."""
    import imageio_ffmpeg

    if not frames:
        raise InferenceError("cannot encode a video without frames")
    arrays = [_even(f) for f in frames]
    h, w = arrays[0].shape[:2]
    if h < 2 or w < 2 or any(a.shape != arrays[0].shape for a in arrays):
        raise InferenceError("all frames must have the same size, at least 2x2")
    with tempfile.TemporaryDirectory(prefix="studio-mp4-") as tmp:
        # +faststart rewrites the file after encoding, so ffmpeg needs a seekable file, not a pipe
        out = Path(tmp) / "clip.mp4"
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{w}x{h}",
            "-r",
            str(fps),
            "-i",
            "-",
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            "medium",
            "-crf",
            str(crf),
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            str(out),
        ]
        proc = subprocess.run(
            cmd, input=b"".join(a.tobytes() for a in arrays), capture_output=True, timeout=300
        )
        if proc.returncode != 0:
            raise InferenceError(
                f"ffmpeg failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-500:]}"
            )
        data = out.read_bytes()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def poster_frame(frames: Sequence[Image.Image], *, index: int = 0, fmt: str = "PNG") -> bytes:
    """One frame as PNG (or JPEG) bytes, for the <video poster> and thumbnails."""
    if not frames:
        raise InferenceError("no frames to take a poster from")
    buf = io.BytesIO()
    frame = frames[index].convert("RGB")
    frame.save(buf, format=fmt, **({"quality": 90} if fmt.upper() == "JPEG" else {}))
    return buf.getvalue()
