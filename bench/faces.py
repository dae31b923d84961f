"""Benchmark and calibration of the face gate and embeddings on the real sample photos.

Usage: .venv/bin/python bench/faces.py [--samples DIR] [--rounds N]

Prints:
- time per reference photo (median, p95) for the gate without the embedding, for the embedding
  alone, and for the gate with the embedding (what the face library runs), over samples/faces and
  the person photos resized to <= 1024 px long side; plus a 2560 px photo (the downscale path);
- the gate's measured values on the originals and on degraded copies (the calibration behind
  the default thresholds, see docs/faces.md);
- duplicate distances: same person (re-crop, mirror, rescale, JPEG; and one model in two shop
  photos), different people (the 45 pairs of samples/faces, and every pair of people photos).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from generation.inference import faces  # noqa: E402

# one woman photographed for two listings (same haircut, same features; distance 0.37)
SAME_PERSON_PHOTOS = {"shop_knitdress.jpg", "shop_tietop.jpg"}


def load(path: Path, long_side: int | None = None) -> np.ndarray:
    with Image.open(path) as image:
        image = image.convert("RGB")
        if long_side and max(image.size) > long_side:
            image.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
        return np.asarray(image)


def scaled(image: np.ndarray, factor: float) -> np.ndarray:
    height, width = image.shape[:2]
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(
        image, (round(width * factor), round(height * factor)), interpolation=interpolation
    )


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def bench_timing(photos: dict[str, np.ndarray], rounds: int) -> None:
    gate, embed, both = [], [], []
    for _ in range(rounds):
        for image in photos.values():
            gate.append(timed(lambda image=image: faces.assess_face_photo(image, embed=False)))
            found = faces.detect_faces(image)
            if found:
                embed.append(timed(lambda image=image, f=found[0]: faces.embed_face(image, f)))
            both.append(timed(lambda image=image: faces.assess_face_photo(image)))
    print(f"{'':34s}{'median':>8s}{'p95':>8s}{'n':>5s}")
    for label, values in (
        ("gate (detect + checks)", gate),
        ("embedding (chip + ResNet)", embed),
        ("gate + embedding", both),
    ):
        median, p95 = statistics.median(values), percentile(values, 95)
        print(f"{label:34s}{median:7.0f}ms{p95:6.0f}ms{len(values):5d}")


def bench_large(photo: np.ndarray) -> None:
    large = scaled(photo, 2560 / max(photo.shape[:2]))
    faces.assess_face_photo(large)
    times = [timed(lambda: faces.assess_face_photo(large)) for _ in range(5)]
    print(
        f"gate + embedding, {large.shape[1]}x{large.shape[0]} photo: median "
        f"{statistics.median(times):.0f}ms (detection on a {faces.DETECT_LONG_SIDE} px copy)"
    )


def degraded(image: np.ndarray, reference: faces.FaceQualityReport) -> dict[str, np.ndarray]:
    small = scaled(image, 60 / reference.face.short_side)
    canvas = np.full((480, 640, 3), 200, dtype=np.uint8)
    canvas[100 : 100 + small.shape[0], 300 : 300 + small.shape[1]] = small
    as_float = image.astype(np.float32)
    return {
        "blur sigma 2": cv2.GaussianBlur(image, (0, 0), 2),
        "blur sigma 3": cv2.GaussianBlur(image, (0, 0), 3),
        "dark x0.25": (as_float * 0.25).astype(np.uint8),
        "dark x0.2": (as_float * 0.2).astype(np.uint8),
        "bright x1.8": np.clip(as_float * 1.8, 0, 255).astype(np.uint8),
        "bright x2.2": np.clip(as_float * 2.2, 0, 255).astype(np.uint8),
        "face at 60 px": canvas,
    }


def value_range(reports: list[faces.FaceQualityReport], name: str) -> str:
    values = [r.check(name).value for r in reports if r.check(name) is not None]
    if not values:
        return f"{'-':>15s}"
    return f"{min(values):7.3g}..{max(values):<7.3g}"


def bench_calibration(references: dict[str, np.ndarray], people: dict[str, np.ndarray]) -> None:
    names = ["face_size", "yaw", "pitch", "sharpness", "brightness", "clipping"]
    print(f"{'photos':28s}{'pass':>6s}" + "".join(f"{n:>17s}" for n in names))

    def row(label: str, reports: list[faces.FaceQualityReport]) -> None:
        passed = f"{sum(r.passed for r in reports)}/{len(reports)}"
        print(
            f"{label:28s}{passed:>6s}" + "".join(f"{value_range(reports, n):>17s}" for n in names)
        )

    base = {name: faces.assess_face_photo(image, embed=False) for name, image in references.items()}
    row("samples/faces originals", list(base.values()))
    row("persons (<=1024 px)", [faces.assess_face_photo(i, embed=False) for i in people.values()])
    copies: dict[str, list[faces.FaceQualityReport]] = {}
    for name, image in references.items():
        for kind, copy in degraded(image, base[name]).items():
            copies.setdefault(kind, []).append(faces.assess_face_photo(copy, embed=False))
    for kind, reports in copies.items():
        row(f"faces, {kind}", reports)
    lost = {k: sum(r.check("face_count").value != 1 for r in v) for k, v in copies.items()}
    print("copies where the face was not found:", {k: v for k, v in lost.items() if v} or "none")


def bench_duplicates(references: dict[str, np.ndarray], people: dict[str, np.ndarray]) -> None:
    embeddings = {
        name: faces.assess_face_photo(image).embedding for name, image in references.items()
    }
    same: dict[str, list[float]] = {}
    for name, image in references.items():
        height, width = image.shape[:2]
        copies = {
            "re-crop": image[
                int(height * 0.08) : int(height * 0.95), int(width * 0.1) : int(width * 0.93)
            ],
            "mirror": image[:, ::-1],
            "rescale x0.8": scaled(image, 0.8),
            "rescale x1.25": scaled(image, 1.25),
            "jpeg q60": cv2.imdecode(
                cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 60])[1], 1
            )[:, :, ::-1],
        }
        for kind, copy in copies.items():
            vector = faces.assess_face_photo(np.ascontiguousarray(copy)).embedding
            same.setdefault(kind, []).append(faces.face_distance(embeddings[name], vector))
    print("same person, copies of the 10 references:")
    for kind, values in same.items():
        print(f"  {kind:14s} min {min(values):.3f}  max {max(values):.3f}")
    everything = [d for values in same.values() for d in values]
    print(f"  all copies     min {min(everything):.3f}  max {max(everything):.3f}")

    pairs = {
        (a, b): faces.face_distance(embeddings[a], embeddings[b])
        for a, b in itertools.combinations(embeddings, 2)
    }
    closest = min(pairs, key=pairs.get)
    print(
        f"different people, 45 pairs of samples/faces: min {pairs[closest]:.3f} {closest}, "
        f"median {statistics.median(pairs.values()):.3f}, max {max(pairs.values()):.3f}"
    )

    people_vectors = {
        name: faces.assess_face_photo(image).embedding for name, image in people.items()
    }
    everyone = {**embeddings, **{k: v for k, v in people_vectors.items() if v is not None}}
    different, same_photos = [], []
    for a, b in itertools.combinations(everyone, 2):
        distance = faces.face_distance(everyone[a], everyone[b])
        (same_photos if {a, b} == SAME_PERSON_PHOTOS else different).append((distance, a, b))
    different.sort()
    print(
        f"different people, all {len(everyone)} photos with a face ({len(different)} pairs): "
        f"min {different[0][0]:.3f} {different[0][1:]}, "
        f"next {different[1][0]:.3f} {different[1][1:]}"
    )
    for distance, a, b in same_photos:
        print(f"same person, two different photos: {distance:.3f} ({a}, {b})")
    print(
        f"thresholds: duplicate {faces.DLIB_DUPLICATE_THRESHOLD} (margin "
        f"{faces.DLIB_DUPLICATE_THRESHOLD - max(everything):.3f} over copies, "
        f"{different[0][0] - faces.DLIB_DUPLICATE_THRESHOLD:.3f} under the closest different "
        f"pair); dlib same-person {faces.DLIB_SAME_PERSON_THRESHOLD}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = os.environ.get("STUDIO_SAMPLES_DIR", str(REPO.parent / "shared" / "samples"))
    parser.add_argument("--samples", type=Path, default=Path(default))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    references = {p.name: load(p) for p in sorted((args.samples / "faces").iterdir())}
    people = {p.name: load(p, 1024) for p in sorted((args.samples / "persons").iterdir())}
    # other processes on the machine change the timings: print the load next to them
    print(f"cv2 threads {cv2.getNumThreads()}, cpu count {os.cpu_count()}, load {load_average()}")

    load_ms = timed(lambda: faces.assess_face_photo(references["face01.png"]))
    print(f"first call (loads dlib x4 + mediapipe): {load_ms:.0f}ms; loads: {faces.models.stats()}")

    print(
        f"\n== timing: {len(references)} references + {len(people)} person photos, x{args.rounds}"
    )
    bench_timing({**references, **people}, args.rounds)
    print("-- references only (samples/faces)")
    bench_timing(references, args.rounds)
    bench_large(references["face09.jpg"])
    print(f"load average after timing: {load_average()}")

    print("\n== gate values (min..max) on real photos and degraded copies")
    bench_calibration(references, people)

    print("\n== duplicate distances (dlib 128-d, euclidean)")
    bench_duplicates(references, people)


if __name__ == "__main__":
    main()
