"""Memory of one web worker: RSS of a fresh gunicorn worker after boot and after the seller pages.

The web process should hold Django, the project, numpy and PIL, and nothing of the ML stack
(OpenCV, torch, mediapipe...): those belong to the analysis and gpu workers. This starts gunicorn
(``config.wsgi``, one sync worker) on a throw-away database (``bench_web_rss`` beside
DATABASE_URL's, dropped and re-created each run) and a Redis db (``WEB_RSS_REDIS_URL``, default
db 10, flushed), then prints the worker's RSS (psutil):

1. after boot (Django set up, no request yet);
2. after the first request (the URLconf and every view module are imported);
3. after a signed-in seller opened the main pages (dashboard, new shoot, a shoot, its mask
   editor and files, the face page, results, an asset) and an admin opened the admin index;
4. after a mask correction (POST, as the mask editor sends it) and an upload (POST);
5. after "use the standard pose" (POST: the OpenPose skeleton is drawn in the request);
6. after a curator added a face reference photo in the admin (POST: stored, gated later by the
   analysis worker).

It also lists the ML libraries mapped into the worker (from /proc/<pid>/maps), which shows
*what* was loaded whatever the Python module names.

    .venv/bin/python bench/web_rss.py
    WEB_RSS_REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/web_rss.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

# Run as a script, bench/ would be sys.path[0] and its queue.py shadow the stdlib ``queue``.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.support import use_stack  # noqa: E402
from tests.reliability.servers import start_gunicorn  # noqa: E402

PASSWORD = "web-rss-Pass-123"  # noqa: S105 - throw-away accounts in a throw-away database
#: shared libraries of the ML stack, as they appear in /proc/<pid>/maps
ML_LIBRARIES = (
    "cv2",
    "opencv",
    "torch",
    "mediapipe",
    "onnxruntime",
    "dlib",
    "scipy",
    "tensorflow",
    "transformers",
    "diffusers",
    "skimage",
)

STACK = use_stack(
    "bench_web_rss",
    redis_url=os.environ.get("WEB_RSS_REDIS_URL", "redis://127.0.0.1:6379/10"),
    media_prefix="studio-web-rss-media-",
    QUEUE_MODE="rq",
)

import django  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402


def seed() -> dict:
    """Schema and data: a seller with a shoot per page, faces, an admin. Returns the URLs."""
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.core.management import call_command
    from django.urls import reverse

    from core.queues import get_redis
    from core.roles import ensure_groups
    from facelibrary.models import Face
    from generation.inference.skeleton import standard_pose
    from seller.accounts import seller_create
    from tests.seller.test_pages_builders import (
        active_faces,
        analysed_shoot,
        reviewed_shoot,
        seller_page_urls,
    )

    get_redis().flushdb()
    call_command("migrate", verbosity=0, interactive=False, skip_checks=True)
    ensure_groups()
    seller = seller_create(
        username="rss-seller", password=PASSWORD, store_name="RSS", catalog_seller_id="rss-1"
    )
    get_user_model().objects.create_superuser("rss-admin", "rss@example.com", PASSWORD)
    mask_shoot = analysed_shoot(seller)
    photo = mask_shoot.photos.get()
    sample = settings.SAMPLES_DIR / "persons" / "street_0223.jpg"
    if sample.is_file():
        # a real photo, so a correction does what it does for a seller (pose, face, refinement)
        from PIL import Image

        with Image.open(sample) as img:
            width, height = img.size
        name = default_storage.save("photos/rss.jpg", ContentFile(sample.read_bytes()))
        type(photo).objects.filter(pk=photo.pk).update(image=name, width=width, height=height)
        photo.refresh_from_db()
        from generation.inference.pose import estimate_pose

        pose = estimate_pose(Image.open(sample).convert("RGB"))
    else:
        pose = standard_pose(mask_shoot.category, (photo.width, photo.height))
    photo.analyses.update(keypoints=pose.to_dict())
    no_pose_shoot = analysed_shoot(seller)  # a flat lay: no pose found, the standard one offered
    no_pose_shoot.photos.get().analyses.update(keypoints=None, pose_image="")
    face = Face.objects.create(code="RSS-FACE")
    face_shoot = analysed_shoot(seller, status="face_selection")
    active_faces(3)
    review = reviewed_shoot(seller, faces=2, variants=1)
    asset = review.runs.get().jobs.first().assets.get()
    return {
        "pages": seller_page_urls(
            mask_shoot=mask_shoot, photo=photo, face_shoot=face_shoot, review=review, asset=asset
        ),
        "admin": reverse("admin:index"),
        "correct": reverse("seller:mask_correct", args=[mask_shoot.pk, photo.pk]),
        "size": (photo.width, photo.height),
        "new_shoot": reverse("seller:shoot_new"),
        "standard_pose": reverse("seller:standard_pose", args=[no_pose_shoot.pk]),
        "face": reverse("admin:facelibrary_face_change", args=[face.pk]),
        "face_photo": str(settings.SAMPLES_DIR / "faces" / "face04.png"),
    }


def sign_in(client: httpx.Client, username: str) -> None:
    client.get("/accounts/login/").raise_for_status()
    response = client.post(
        "/accounts/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": client.cookies.get("csrftoken", ""),
        },
    )
    if response.status_code != 302:
        raise RuntimeError(f"{username} could not sign in ({response.status_code})")


def check(response: httpx.Response, *expected: int) -> None:
    if response.status_code not in (expected or (200,)):
        raise RuntimeError(f"{response.request.url} answered {response.status_code}")


def face_form(page: str) -> dict[str, str]:
    """What the face change page posts: its hidden inputs (CSRF token, the inlines' management
    forms) and the face's attributes as the seed left them (code and source only)."""
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return hidden | {"code": "RSS-FACE", "source": "licensed_model", "_continue": "1"}


def web_worker(master: psutil.Process) -> psutil.Process:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = master.children()
        if children:
            return children[0]
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def settle(proc: psutil.Process, timeout: float = 60) -> None:
    """Wait until the worker has booted the app: its RSS stops growing for a second."""
    deadline = time.monotonic() + timeout
    last, steady = -1, 0
    while time.monotonic() < deadline and steady < 4:
        time.sleep(0.25)
        now = proc.memory_info().rss
        steady = steady + 1 if now == last else 0
        last = now


def rss_mib(proc: psutil.Process) -> float:
    return proc.memory_info().rss / 2**20


def ml_libraries(proc: psutil.Process) -> list[str]:
    """ML shared libraries mapped into the process (package folder names)."""
    found = set()
    for mapping in proc.memory_maps(grouped=True):
        path = mapping.path
        if "site-packages/" not in path:
            continue
        top = path.split("site-packages/", 1)[1].split("/", 1)[0]
        top = re.sub(r"\.libs$|-.*$", "", top)
        if any(name in top.lower() for name in ML_LIBRARIES):
            found.add(top)
    return sorted(found)


def measure(urls: dict, samples: Path | None) -> list[tuple[str, float, list[str]]]:
    log = STACK.media / "gunicorn.log"
    server, base = start_gunicorn(env=STACK.env, log_path=log, workers=1, threads=1)
    rows = []
    try:
        worker = web_worker(psutil.Process(server.pid))

        def record(stage: str) -> None:
            rows.append((stage, rss_mib(worker), ml_libraries(worker)))

        settle(worker)
        record("after boot (Django set up, no request)")
        with (
            httpx.Client(base_url=base, timeout=120) as seller,
            httpx.Client(base_url=base, timeout=120) as admin,
        ):
            check(seller.get("/accounts/login/"))
            record("after the first request (URLconf loaded)")
            sign_in(seller, "rss-seller")
            sign_in(admin, "rss-admin")
            for url in urls["pages"].values():
                check(seller.get(url))
            check(admin.get(urls["admin"]))
            record("after the seller pages and the admin index")
            width, height = urls["size"]
            stroke = [[width * 0.6, height * 0.36], [width * 0.65, height * 0.38]]
            response = seller.post(
                urls["correct"],
                data={
                    "include_strokes": "",
                    "exclude_strokes": json.dumps([stroke]),
                    "brush_radius": "12",
                    "csrfmiddlewaretoken": seller.cookies.get("csrftoken", ""),
                },
                headers={"HX-Request": "true", "X-CSRFToken": seller.cookies.get("csrftoken", "")},
            )
            check(response)
            record("after a mask correction (POST)")
            if samples is not None:
                response = seller.post(
                    urls["new_shoot"],
                    data={
                        "sku": "RSS-2",
                        "title": "Upload",
                        "category": "dress",
                        "scene": "studio_white",
                        "csrfmiddlewaretoken": seller.cookies.get("csrftoken", ""),
                    },
                    files=[("photos", (samples.name, samples.read_bytes(), "image/jpeg"))],
                )
                check(response, 302)
                record("after an upload (POST)")
            response = seller.post(
                urls["standard_pose"],
                data={"csrfmiddlewaretoken": seller.cookies.get("csrftoken", "")},
            )
            check(response, 302)
            record("after use the standard pose (POST)")
            page = admin.get(urls["face"])
            check(page)
            photo = Path(urls["face_photo"])
            response = admin.post(
                urls["face"],
                data=face_form(page.text),
                files=[("new_references", (photo.name, photo.read_bytes(), "image/png"))],
            )
            check(response, 302)
            record("after a face reference upload (admin POST)")
    except Exception:
        print(server.log()[-4000:], file=sys.stderr)
        raise
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="fresh workers to measure")
    args = parser.parse_args()
    STACK.recreate_database()
    try:
        urls = seed()
        from django.conf import settings

        sample = settings.SAMPLES_DIR / "persons" / "street_0223.jpg"
        results = [measure(urls, sample if sample.is_file() else None) for _ in range(args.rounds)]
    finally:
        from django.db import connections

        connections.close_all()
        STACK.drop_database()
        shutil.rmtree(STACK.media, ignore_errors=True)
    print(f"gunicorn config.wsgi, 1 sync worker, QUEUE_MODE=rq; {args.rounds} fresh worker(s)")
    print(f"{'stage':<48} {'RSS MiB':>8}  ML libraries mapped")
    for i, (stage, _, _) in enumerate(results[0]):
        values = [r[i][1] for r in results]
        libraries = sorted({lib for r in results for lib in r[i][2]})
        shown = ", ".join(libraries) or "none"
        print(
            f"{stage:<48} {min(values):8.1f}  {shown}"
            + (f"   (max {max(values):.1f})" if len(values) > 1 else "")
        )


if __name__ == "__main__":
    main()
