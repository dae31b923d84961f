"""Server time of every seller page for a seller with 500 shoots (target: p95 <= 50 ms).

Creates a throw-away database (``bench_pages_<name>`` beside DATABASE_URL's), seeds one seller
with 500 shoots across every status (photos, analyses, masks, timelines, generation runs with
jobs and image + video assets), two other sellers with 500 shoots each (so the tables are not
trivially small) and a face library, then requests each page through the Django test client and
prints median / p95 / max wall milliseconds, the p95 CPU milliseconds of this process (what a
page costs the web server, whatever else the machine is doing) and SQL queries per request. The
client runs the whole Django stack in process (middleware, view, queries, template rendering), so
the wall figure is server time without the network.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/studio .venv/bin/python bench/pages.py
    .venv/bin/python bench/pages.py --shoots 500 --requests 60 --check   # exit 1 over budget
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

# Run as a script, this folder would be sys.path[0] and bench/queue.py would shadow the stdlib
# ``queue`` module: put the repository root there instead.
REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/studio")
os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789abcdefghijkl")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("STATIC_MANIFEST", "false")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("LOG_LEVEL", "ERROR")
os.environ.setdefault("QUEUE_MODE", "sync")  # GET pages never enqueue; no Redis needed
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="studio-bench-media-"))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402
from django.core.files.storage import default_storage  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from facelibrary.models import Consent, Face, FaceReference  # noqa: E402
from generation.models import Asset, GenerationJob, GenerationRun  # noqa: E402
from seller.accounts import seller_create  # noqa: E402
from seller.models import (  # noqa: E402
    Category,
    MaskVersion,
    PhotoAnalysis,
    Shoot,
    ShootEvent,
    ShootPhoto,
)
from tests.seller.test_pages_builders import FAKE_MP4, S, image_bytes  # noqa: E402

if TYPE_CHECKING:  # only named in annotations
    from seller.models import Seller

BUDGET_MS = 50.0
PASSWORD = "bench-Pass-123"  # noqa: S105
STATUS_CYCLE = [
    S.ANALYZING,
    S.MASK_REVIEW,
    S.FACE_SELECTION,
    S.GENERATING,
    S.SELLER_REVIEW,
    S.SELLER_REVIEW,
    S.QA_REVIEW,
    S.APPROVED,
    S.PUBLISHED,
    S.PUBLISHED,
]
#: the path a shoot took to reach each status (for its timeline)
PATH = [
    S.UPLOADED,
    S.ANALYZING,
    S.MASK_REVIEW,
    S.FACE_SELECTION,
    S.GENERATING,
    S.SELLER_REVIEW,
    S.QA_REVIEW,
    S.APPROVED,
    S.PUBLISHED,
]
HAS_RUN = {S.GENERATING, S.SELLER_REVIEW, S.QA_REVIEW, S.APPROVED, S.PUBLISHED}


# --- seeding -------------------------------------------------------------------------------------


#: the size of the seeded photo and asset files, and of the face reference
PHOTO_SIZE = (550, 844)
FACE_SIZE = (256, 256)


def _size(size: tuple[int, int]) -> dict[str, int]:
    """The width and height fields of a row that points at an image file of ``size``."""
    return {"width": size[0], "height": size[1]}


@dataclass
class Files:
    photo: str
    mask: str
    pose: str
    asset: str
    video: str
    face: str


def store_files() -> Files:
    """One file of each kind; every seeded row points at these (pages never read the bytes)."""

    def save(name: str, data: bytes) -> str:
        return default_storage.save(name, ContentFile(data))

    return Files(
        photo=save("photos/bench.png", image_bytes(PHOTO_SIZE, (200, 60, 90))),
        mask=save("masks/bench.png", image_bytes(PHOTO_SIZE, 0, mode="L")),
        pose=save("analysis/bench.png", image_bytes(PHOTO_SIZE, (0, 0, 0))),
        asset=save("assets/bench.png", image_bytes(PHOTO_SIZE, (40, 90, 160))),
        video=save("assets/bench.mp4", FAKE_MP4),
        face=save("faces/bench.jpg", image_bytes(FACE_SIZE, (120, 90, 140))),
    )


def seed_faces(count: int, files: Files) -> list[Face]:
    looks = [("feminine", "25-34", 3), ("masculine", "35-44", 7), ("androgynous", "18-24", 9)]
    faces = Face.objects.bulk_create(
        Face(
            code=f"B{n:04d}",
            status=Face.Status.ACTIVE,
            gender_presentation=looks[n % 3][0],
            age_band=looks[n % 3][1],
            skin_tone=looks[n % 3][2],
            region_tags=["south_asia"] if n % 2 else ["europe"],
        )
        for n in range(count)
    )
    Consent.objects.bulk_create(Consent(face=f, licence_terms="Bench release.") for f in faces)
    FaceReference.objects.bulk_create(
        FaceReference(
            face=f,
            image=files.face,
            thumbnail=files.face,
            **_size(FACE_SIZE),
            source_sha256=f"{f.pk:064d}",
            is_primary=True,
            gate_passed=True,
        )
        for f in faces
    )
    return faces


def seed_seller(name: str, shoots: int, files: Files, faces: list[Face]) -> Seller:
    seller = seller_create(
        username=name, password=PASSWORD, store_name=name.title(), catalog_seller_id=name
    )
    categories = Category.values
    now = timezone.now()
    rows = Shoot.objects.bulk_create(
        Shoot(
            seller=seller,
            sku=f"{name[:3].upper()}-{n:05d}",
            title=f"{('Linen', 'Silk', 'Denim', 'Cotton')[n % 4]} garment {n}",
            category=categories[n % len(categories)],
            status=STATUS_CYCLE[n % len(STATUS_CYCLE)],
            analysis_attempts=1,
        )
        for n in range(shoots)
    )
    Shoot.objects.filter(seller=seller).update(created_at=now)
    photos = ShootPhoto.objects.bulk_create(
        ShootPhoto(
            shoot=s,
            original=files.photo,
            image=files.photo,
            **_size(PHOTO_SIZE),
            original_name="front.jpg",
            original_format="JPEG",
            sha256="0" * 64,
        )
        for s in rows
    )
    analysed = [(s, p) for s, p in zip(rows, photos, strict=True) if s.status != S.ANALYZING]
    analyses = PhotoAnalysis.objects.bulk_create(
        PhotoAnalysis(
            photo=p,
            keypoints={"keypoints": [[100.0, 100.0, 0.9]] * 18},
            pose_source="detected",
            pose_image=files.pose,
            person_mask=files.mask,
        )
        for _, p in analysed
    )
    MaskVersion.objects.bulk_create(
        MaskVersion(photo=p, analysis=a, version=v, mask=files.mask, is_chosen=v == 2)
        for (_, p), a in zip(analysed, analyses, strict=True)
        for v in (1, 2)
    )
    events = []
    for s in rows:
        steps = PATH[: PATH.index(s.status) + 1]
        events += [
            ShootEvent(shoot=s, from_status=a, to_status=b, actor=seller.user, note="bench")
            for a, b in itertools.pairwise(steps)
        ]
    ShootEvent.objects.bulk_create(events)
    seed_runs(rows, files, faces)
    return seller


def seed_runs(shoots: list[Shoot], files: Files, faces: list[Face]) -> None:
    with_runs = [s for s in shoots if s.status in HAS_RUN]
    runs = GenerationRun.objects.bulk_create(
        GenerationRun(
            shoot=s, status="active" if s.status == S.GENERATING else "succeeded", settings={}
        )
        for s in with_runs
    )
    jobs = GenerationJob.objects.bulk_create(
        GenerationJob(
            run=run,
            face=faces[(i + v) % len(faces)],
            variant=v,
            seed=1000 + v,
            status="running" if run.status == "active" else "succeeded",
            progress_step=10,
            progress_total=25,
            seconds_per_image=4.2,
            finished_at=timezone.now(),
        )
        for i, run in enumerate(runs)
        for v in range(4)
    )
    done = [j for j in jobs if j.status == "succeeded"]
    Asset.objects.bulk_create(
        Asset(job=j, kind=kind, file=file, poster=poster, checksum="0" * 64, **_size(PHOTO_SIZE))
        for j in done
        for kind, file, poster in (("image", files.asset, ""), ("video", files.video, files.asset))
    )


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    times_ms: list[float]
    cpu_ms: list[float]
    queries: int
    status: int

    @property
    def p50(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        return pct95(self.times_ms)


def pct95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


class QueryCounter:
    """Counts every SQL statement run on the connection (DEBUG off, no query log needed)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def measure(name: str, request: Callable[[], object], repeat: int) -> Result:
    for _ in range(3):  # warm caches (templates, URL resolvers, connection)
        request()
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        response = request()
    times, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        request()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return Result(name, times, cpu, counter.count, response.status_code)


def pages(seller: Seller) -> dict[str, tuple[str, dict, dict]]:
    """name -> (url, GET params, extra headers)."""
    shoots = Shoot.objects.filter(seller=seller)

    def one(status: str) -> Shoot:
        return shoots.filter(status=status).order_by("-id").first()

    review = one(S.SELLER_REVIEW)
    asset = Asset.objects.filter(job__run__shoot=review, kind="image").first()
    htmx = {"HTTP_HX_REQUEST": "true"}
    return {
        "dashboard": (reverse("seller:dashboard"), {}, {}),
        "dashboard, page 15": (reverse("seller:dashboard"), {"page": 15}, {}),
        "dashboard search (htmx)": (reverse("seller:dashboard"), {"q": "silk"}, htmx),
        "dashboard status filter": (reverse("seller:dashboard"), {"status": S.PUBLISHED}, {}),
        "new shoot form": (reverse("seller:shoot_new"), {}, {}),
        "shoot, analysing": (reverse("seller:shoot", args=[one(S.ANALYZING).pk]), {}, {}),
        "shoot, generating": (reverse("seller:shoot", args=[one(S.GENERATING).pk]), {}, {}),
        "shoot, review": (reverse("seller:shoot", args=[review.pk]), {}, {}),
        "status poll (htmx)": (
            reverse("seller:shoot_status", args=[one(S.GENERATING).pk]),
            {"seen": S.GENERATING},
            htmx,
        ),
        "mask review": (reverse("seller:mask_review", args=[one(S.MASK_REVIEW).pk]), {}, {}),
        "faces": (reverse("seller:faces", args=[one(S.FACE_SELECTION).pk]), {}, {}),
        "faces filter (htmx)": (
            reverse("seller:faces", args=[one(S.FACE_SELECTION).pk]),
            {"gender_presentation": "feminine"},
            htmx,
        ),
        "results": (reverse("seller:results", args=[review.pk]), {}, {}),
        "asset large view": (reverse("seller:asset", args=[review.pk, asset.pk]), {}, {}),
    }


def profile(client: Client, page: tuple[str, dict, dict]) -> int:
    import cProfile
    import pstats

    url, params, headers = page
    for _ in range(3):
        client.get(url, params, **headers)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(20):
        client.get(url, params, **headers)
    profiler.disable()
    pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(25)
    timer = QueryTimer()
    with connection.execute_wrapper(timer):
        client.get(url, params, **headers)
    for ms, sql in sorted(timer.queries, reverse=True):
        print(f"{ms:7.2f} ms  {sql[:300]}")
    return 0


class QueryTimer:
    def __init__(self) -> None:
        self.queries: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append(((time.perf_counter() - started) * 1000, sql))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoots", type=int, default=500)
    parser.add_argument("--requests", type=int, default=60, help="timed requests per page")
    parser.add_argument("--faces", type=int, default=60)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if a p95 > {BUDGET_MS} ms")
    parser.add_argument("--profile", metavar="PAGE", help="print a cProfile of one page instead")
    args = parser.parse_args()

    test_db = settings.DATABASES["default"].setdefault("TEST", {})
    test_db["NAME"] = f"bench_pages_{settings.DATABASES['default']['NAME']}"
    # No setup_test_environment(): its template instrumentation (context copies for the test
    # client) would be counted as server time.
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        started = time.perf_counter()
        files = store_files()
        faces = seed_faces(args.faces, files)
        seller = seed_seller("benchseller", args.shoots, files, faces)
        for other in ("othershop", "thirdshop"):
            seed_seller(other, args.shoots, files, faces)
        if connection.vendor == "postgresql":
            connection.cursor().execute("ANALYZE")
        seeded = time.perf_counter() - started
        client = Client()
        client.force_login(seller.user)
        print(
            f"seeded {Shoot.objects.count()} shoots ({args.shoots} for the measured seller), "
            f"{Asset.objects.count()} assets, {args.faces} faces in {seeded:.1f} s; "
            f"{connection.vendor}, DEBUG={settings.DEBUG}, {args.requests} requests per page"
        )
        if args.profile:
            return profile(client, pages(seller)[args.profile])
        print(
            f"{'page':28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu p95':>8} "
            f"{'queries':>8}  status"
        )
        worst = 0.0
        for name, (url, params, headers) in pages(seller).items():
            result = measure(
                name, lambda u=url, p=params, h=headers: client.get(u, p, **h), args.requests
            )
            worst = max(worst, result.p95)
            flag = "" if result.p95 <= BUDGET_MS else "  OVER BUDGET"
            print(
                f"{name:28} {result.p50:8.1f} {result.p95:8.1f} {max(result.times_ms):8.1f} "
                f"{pct95(result.cpu_ms):8.1f} {result.queries:8d}  {result.status}{flag}"
            )
        print(f"worst p95: {worst:.1f} ms (budget {BUDGET_MS:.0f} ms)")
        return 1 if args.check and worst > BUDGET_MS else 0
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
