"""Benchmark of the analysis step (pose + garment mask) on the real sample photos.

Usage: .venv/bin/python bench/analysis.py [--samples DIR] [--dump DIR]
           [--backend auto|segformer|cloth|classical] [--model-root DIR] [--device cpu|cuda]

--backend picks the garment-mask backend (default auto: the best one whose weights are in the
model root, which is --model-root, else $MODEL_ROOT, else var/models like the Django settings).
The backend that actually ran is printed, so one table per backend can be compared.

Prints, over samples/persons and samples/parsing: median and p95 time per image for pose and for
the mask, the pose detection rate, and the garment-mask IoU against the pixel labels of
samples/parsing per category and overall. With --dump, writes an overlay PNG per (photo,
category): green = both, red = predicted only, blue = ground truth only.

How a parsing photo maps to what we segment: labels.json lists, per photo, the categories it
shows (dress / top / bottom). For each listed category we segment that category and compare with
the pixels of that category's label group (the groups below, as in samples/SOURCES.md).
Pairs from photos with outerwear (coat, jacket, blazer, cape, suit) or with both a dress and a
top are marked "layered": there the labels split what the seller would call one look into
layers, which no colour/geometry method can tell apart; their scores are also shown apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ is sys.path[0], and bench/queue.py would shadow the stdlib ``queue``
# module that torch imports (segformer backend): put the repository root there instead.
REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from generation.inference.errors import NoPoseFoundError  # noqa: E402
from generation.inference.pose import estimate_pose  # noqa: E402
from generation.inference.segmentation import available_backends, segment_garment  # noqa: E402
from tests.support.samples import (  # noqa: E402
    GROUPS,
    OUTERWEAR,
    label_mask,
    parsing_labels,
    samples_path,
)

PERSON_CATEGORY = {
    "shop_knitdress": "dress",
    "street_0223": "dress",
    "street_0630": "dress",
    "street_1037": "dress",
    "mannequin_front": "dress",
    "mannequin_back": "dress",
    "street_0482": "top",
    "street_1740": "top",
    "runway_man": "top",
}


def default_model_root() -> Path:
    env = os.environ.get("MODEL_ROOT")
    return Path(env) if env else REPO / "var" / "models"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - start) * 1000


#: backend name -> how many masks it made in this run
RAN: collections.Counter[str] = collections.Counter()


def analyse(path: Path, category: str, args: argparse.Namespace, timings: dict[str, list[float]]):
    image = Image.open(path).convert("RGB")
    try:
        pose, ms = timed(estimate_pose, image)
        found = True
    except NoPoseFoundError:
        pose, ms, found = None, float("nan"), False
    if found:
        timings["pose"].append(ms)
    seg, ms = timed(
        segment_garment,
        image,
        category=category,
        pose=pose,
        backend=args.backend,
        model_root=args.model_root,
        device=args.device,
        detect_pose=False,
    )
    RAN[seg.backend] += 1
    timings["mask"].append(ms)
    if found:
        timings["total"].append(timings["pose"][-1] + ms)
    return image, pose, seg, found


def overlay(image: Image.Image, pred: np.ndarray, truth: np.ndarray | None) -> Image.Image:
    base = np.asarray(image).astype(np.float32) * 0.45
    color = np.zeros_like(base)
    if truth is None:
        color[pred] = (0, 200, 0)
    else:
        color[pred & truth] = (0, 200, 0)
        color[pred & ~truth] = (230, 0, 0)
        color[~pred & truth] = (0, 80, 255)
    return Image.fromarray(np.clip(base + color * 0.55, 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=samples_path())
    parser.add_argument("--dump", type=Path, default=None)
    parser.add_argument(
        "--backend", default="auto", help="auto (default), segformer, cloth or classical"
    )
    parser.add_argument("--model-root", type=Path, default=default_model_root())
    parser.add_argument("--device", default="cpu", help="segformer only: cpu, cuda, auto")
    args = parser.parse_args()
    samples: Path = args.samples
    if not samples.is_dir():
        sys.exit(f"sample photos not found at {samples}")
    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)

    # warm up: model loading is a one-off per worker process, not per photo
    warm = Image.new("RGB", (256, 384), (200, 200, 200))
    warm_seg, load_ms = timed(
        segment_garment,
        warm,
        category="dress",
        backend=args.backend,
        model_root=args.model_root,
        device=args.device,
    )
    print(
        f"mask backend: {warm_seg.backend} (requested {args.backend}; installed "
        f"{', '.join(available_backends(args.model_root))} under {args.model_root}; "
        f"device {args.device}; first call incl. loading {load_ms:.0f} ms)"
    )
    print()

    timings: dict[str, list[float]] = {"pose": [], "mask": [], "total": []}
    persons = sorted((samples / "persons").glob("*.jpg"))
    found_count = 0
    print(f"{'photo':<22} {'pose':>5} {'cat':<7} {'mask ms':>8}  flags")
    for path in persons:
        category = PERSON_CATEGORY.get(path.stem, "top")
        image, _, seg, found = analyse(path, category, args, timings)
        found_count += found
        print(
            f"{path.stem:<22} {'yes' if found else 'no':>5} {category:<7} "
            f"{timings['mask'][-1]:8.0f}  {'; '.join(seg.flags)}"
        )
        if args.dump:
            overlay(image, seg.mask > 0, None).save(args.dump / f"person_{path.stem}.png")

    meta = json.loads((samples / "parsing" / "labels.json").read_text())
    names = meta["labels"]
    ious: dict[str, list[float]] = {"dress": [], "top": [], "bottom": []}
    ious_outer: list[float] = []
    parsing_found = 0
    rows = []
    for key, categories in sorted(meta["categories"].items()):
        path = samples / "parsing" / "images" / f"{key}.jpg"
        labels = parsing_labels(samples, key)
        first = True
        for category in categories:
            image, _, seg, found = analyse(path, category, args, timings)
            if first:
                parsing_found += found
            elif found:
                # time pose once per photo: drop the repeated pose measurement
                timings["pose"].pop()
                timings["total"].pop()
            first = False
            truth = label_mask(labels, names, GROUPS[category])
            pred = seg.mask > 0
            score = iou(pred, truth)
            ious[category].append(score)
            if category == "top":
                outer = label_mask(labels, names, GROUPS[category] | OUTERWEAR)
                ious_outer.append(iou(pred, outer))
            layered = bool(label_mask(labels, names, OUTERWEAR).any()) or (
                "dress" in categories and "top" in categories
            )
            rows.append((key, category, score, layered))
            if args.dump:
                overlay(image, pred, truth).save(args.dump / f"parsing_{key}_{category}.png")

    total_photos = len(persons) + len(meta["categories"])
    print()
    ran = ", ".join(f"{name} x{count}" for name, count in RAN.most_common())
    print(f"masks made by: {ran}")
    for key, category, score, layered in rows:
        print(f"parsing {key} {category:<7} IoU {score:.3f}{'  layered' if layered else ''}")
    print()
    print(f"photos: {len(persons)} persons + {len(meta['categories'])} parsing = {total_photos}")
    print(
        f"pose detected: persons {found_count}/{len(persons)}, parsing "
        f"{parsing_found}/{len(meta['categories'])}, overall "
        f"{(found_count + parsing_found) / total_photos:.0%}"
    )
    for name in ("pose", "mask", "total"):
        values = timings[name]
        print(
            f"time {name:<5} median {statistics.median(values):6.0f} ms   "
            f"p95 {pct(values, 95):6.0f} ms   (n={len(values)})"
        )
    print()
    print(f"{'category':<10} {'n':>3} {'median IoU':>11} {'mean IoU':>9}")
    everything: list[float] = []
    for category, values in ious.items():
        everything += values
        print(
            f"{category:<10} {len(values):>3} {statistics.median(values):>11.3f} "
            f"{statistics.fmean(values):>9.3f}"
        )
    print(
        f"{'overall':<10} {len(everything):>3} {statistics.median(everything):>11.3f} "
        f"{statistics.fmean(everything):>9.3f}"
    )
    print(
        f"{'top+outer':<10} {len(ious_outer):>3} {statistics.median(ious_outer):>11.3f} "
        f"{statistics.fmean(ious_outer):>9.3f}   (top compared with top + coat/jacket/blazer/cape)"
    )
    single = [score for _, _, score, layered in rows if not layered]
    print(
        f"{'unlayered':<10} {len(single):>3} {statistics.median(single):>11.3f} "
        f"{statistics.fmean(single):>9.3f}   (photos with no coat/jacket/blazer/cape/suit and "
        "not dress+top)"
    )
    for category in GROUPS:
        values = [s for _, c, s, layered in rows if c == category and not layered]
        if values:
            print(
                f"  unlayered {category:<7} n={len(values):<3} "
                f"median {statistics.median(values):.3f}"
            )


if __name__ == "__main__":
    main()
