"""Seconds per catalog image for the ControlNet inpainting engine, and peak memory.

Loads the pipeline once (reported separately), runs ``--warmup`` untimed images (first-call
kernel selection, torch.compile), then ``--runs`` timed ones, and prints median / p95 seconds per
image and peak memory: RSS on CPU (psutil now, getrusage peak), and
``torch.cuda.max_memory_allocated`` on CUDA.

Default: builds the tiny random model sets into a temp dir and runs on CPU (a smoke number only;
tiny-model images are noise). The real figure, on a GPU host with the sd15 set downloaded:

    .venv/bin/python bench/generate.py --model-root /models --model-set sd15 \\
        --device cuda --width 512 --height 768 --steps 25 --runs 20
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ is sys.path[0], and bench/queue.py would shadow the stdlib ``queue``
# module that torch imports: put the repository root there instead.
REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def synthetic_inputs(width: int, height: int) -> tuple[Image.Image, np.ndarray, Image.Image]:
    """A photo-sized noise image, an ellipse 'garment' over the torso, and a stick-figure pose."""
    import cv2

    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    mask = np.zeros((height, width), np.uint8)
    center = (width // 2, int(height * 0.45))
    cv2.ellipse(mask, center, (width // 5, height // 5), 0, 0, 360, 255, -1)
    pose = np.zeros((height, width, 3), np.uint8)
    cv2.line(pose, (width // 2, height // 6), (width // 2, height // 2), (255, 0, 0), 4)
    cv2.line(pose, (width // 4, height // 4), (3 * width // 4, height // 4), (0, 255, 0), 4)
    return photo, mask, Image.fromarray(pose)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--model-set", default="tiny-sd15")
    parser.add_argument("--model-root", type=Path, help="default: build tiny sets in a temp dir")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scheduler", default="unipc")
    parser.add_argument("--guidance-scale", type=float, default=7.0)
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (CUDA)")
    parser.add_argument("--face", action="store_true", help="use the IP-Adapter with a face image")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead")
    args = parser.parse_args()

    import psutil
    import torch

    from generation.inference.diffusion import GenerationRequest, generate, load_pipeline
    from generation.inference.registry import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = None
    model_root = args.model_root
    if model_root is None:
        from generation.inference.tiny import make_tiny_models

        tmp = tempfile.TemporaryDirectory(prefix="studio-bench-models-")
        model_root = Path(tmp.name)
        t0 = time.perf_counter()
        make_tiny_models(model_root, sets=(args.model_set,))
        print(f"built {args.model_set} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    set_dir = model_root / args.model_set
    device, dtype = resolve_device(args.device)
    cuda = device.startswith("cuda")

    t0 = time.perf_counter()
    load_pipeline(set_dir, device=device, compile_unet=args.compile)
    load_s = time.perf_counter() - t0

    photo, mask, pose = synthetic_inputs(args.width, args.height)
    face = Image.new("RGB", (224, 224), (200, 160, 130)) if args.face else None

    # these command-line options are named after the GenerationRequest fields they set
    options = {
        k: getattr(args, k) for k in ("steps", "guidance_scale", "width", "height", "scheduler")
    }
    base = GenerationRequest(
        photo, mask, control_image=pose, face_image=face, category="dress", **options
    )

    def one(seed: int) -> float:
        request = dataclasses.replace(base, seed=seed)
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        generate(request, model_set_dir=set_dir, device=device, compile_unet=args.compile)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for i in range(args.warmup):
        one(1000 + i)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = [one(i) for i in range(args.runs)]

    report = {
        "model_set": args.model_set,
        "device": device,
        "dtype": str(dtype).replace("torch.", ""),
        "size": f"{args.width}x{args.height}",
        "steps": args.steps,
        "scheduler": args.scheduler,
        "compile": args.compile,
        "runs": args.runs,
        "load_s": round(load_s, 3),
        "median_s": round(statistics.median(times), 4),
        "p95_s": round(percentile(times, 95), 4),
        "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    if cuda:
        report["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        report["gpu"] = torch.cuda.get_device_name()
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{report['model_set']} on {device} ({report['dtype']}), {report['size']}, "
            f"{args.steps} steps, {args.scheduler}{' +compile' if args.compile else ''}"
        )
        print(f"  load (first, cold):   {report['load_s']:.2f} s")
        med, p95 = report["median_s"], report["p95_s"]
        print(f"  per image (n={args.runs}): median {med:.3f} s, p95 {p95:.3f} s")
        if cuda:
            peak = report["cuda_peak_allocated_mb"]
            print(f"  peak CUDA allocated:  {peak:.0f} MB ({report['gpu']})")
        print(f"  RSS now / peak:       {report['rss_mb']:.0f} MB / {report['peak_rss_mb']:.0f} MB")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
