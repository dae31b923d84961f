"""A page request never imports the ML stack.

The web process serves pages, uploads, the seller's mask corrections and the curator's admin;
OpenCV, torch, mediapipe, dlib and the rest belong to the workers (``analysis``, ``gpu``). A fresh
Python process, set up like a web worker, loads the URLconf, requests every main page and posts a
mask correction, an upload, "use the standard pose" (it draws the OpenPose skeleton in the
request) and a face reference photo in the admin (stored; the ``analysis`` worker runs the quality
gate); then none of the heavy modules may be in ``sys.modules``. It has to be a fresh process:
this pytest process has long imported them for other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from core.queues import get_queue
from facelibrary.models import FaceReference
from generation.inference.skeleton import standard_pose
from seller.models import PhotoAnalysis
from tests.conftest import REPO, worker_env
from tests.facelibrary.factories import DraftFaceFactory
from tests.factories import SellerFactory
from tests.seller.test_pages_builders import (
    active_faces,
    analysed_shoot,
    image_bytes,
    reviewed_shoot,
    seller_page_urls,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

#: top-level modules of the ML stack (and of the heavy numeric libraries it drags in)
HEAVY = (
    "cv2",
    "torch",
    "torchvision",
    "diffusers",
    "transformers",
    "accelerate",
    "safetensors",
    "mediapipe",
    "dlib",
    "onnxruntime",
    "insightface",
    "rembg",
    "scipy",
    "skimage",
    "sklearn",
    "numba",
    "tensorflow",
    "matplotlib",
)

#: runs in the fresh process: Django set up as in a web worker, then the requests
WEB_PROCESS = r"""
import json, sys

import django

django.setup()
from django.test.utils import setup_test_environment

setup_test_environment()  # lets the test client's "testserver" host in; nothing else

import config.urls  # noqa: F401  (what the first request of a web worker loads)

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

plan = json.loads(sys.argv[1])
heavy = plan["heavy"]
after_urlconf = sorted(m for m in heavy if m in sys.modules)
users = get_user_model().objects
seller, admin = Client(), Client()
seller.force_login(users.get(pk=plan["seller_user"]))
admin.force_login(users.get(pk=plan["admin_user"]))
statuses = {}
for name, url in plan["seller_pages"].items():
    statuses[name] = seller.get(url).status_code
for name, url in plan["admin_pages"].items():
    statuses[name] = admin.get(url).status_code
correction = seller.post(plan["correct_url"], plan["correction"], HTTP_HX_REQUEST="true")
statuses["mask correction"] = correction.status_code
upload = seller.post(
    plan["new_shoot_url"],
    plan["new_shoot"] | {"photos": SimpleUploadedFile("front.png", bytes.fromhex(plan["photo"]))},
)
statuses["upload"] = upload.status_code
statuses["standard pose"] = seller.post(plan["standard_pose_url"]).status_code
reference = admin.post(
    plan["face_url"],
    plan["face_form"]
    | {"new_references": SimpleUploadedFile("portrait.png", open(plan["face_photo"], "rb").read())},
)
statuses["face reference"] = reference.status_code
print(json.dumps({
    "statuses": statuses,
    "after_urlconf": after_urlconf,
    "heavy": sorted(m for m in heavy if m in sys.modules),
    "correction": correction.content.decode()[:4000],
}))
"""


def _face_form(client, face) -> dict:
    """The face change form as the admin page posts it (attributes and inline management forms)."""
    page = client.get(reverse("admin:facelibrary_face_change", args=[face.pk]))
    data = {
        name: getattr(face, name) if getattr(face, name) is not None else ""
        for name in ("code", "source", "gender_presentation", "age_band", "skin_tone")
    }
    data |= {name: getattr(face, name) for name in ("region_tags", "expression", "hair")}
    data |= {"hair_color": face.hair_color, "notes": face.notes, "_continue": "1"}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[f"{inline.formset.prefix}-{name}"] = management[name].value()
    return data


def test_pages_and_seller_and_curator_posts_import_no_ml_stack(redis_conn, client, samples_dir):
    seller = SellerFactory()
    mask_shoot = analysed_shoot(seller)
    photo = mask_shoot.photos.get()
    # a real pose record (the builders' placeholder keypoints are enough for the pages only)
    pose = standard_pose("dress", (photo.width, photo.height)).to_dict()
    photo.analyses.update(keypoints=pose)
    no_pose_shoot = analysed_shoot(seller)  # a flat lay: no person, so no pose was found
    no_pose_shoot.photos.get().analyses.update(keypoints=None, pose_image="")
    face = DraftFaceFactory()
    face_shoot = analysed_shoot(seller, status="face_selection")
    active_faces(2)
    review = reviewed_shoot(seller, faces=1, variants=1)
    asset = review.runs.get().jobs.first().assets.get()
    admin = get_user_model().objects.create_superuser("web-imports-admin", "a@example.com", "x")
    plan = {
        "heavy": HEAVY,
        "seller_user": seller.user.pk,
        "admin_user": admin.pk,
        "seller_pages": seller_page_urls(
            mask_shoot=mask_shoot, photo=photo, face_shoot=face_shoot, review=review, asset=asset
        )
        | {"shoot status": reverse("seller:shoot_status", args=[mask_shoot.pk])},
        "admin_pages": {"admin index": reverse("admin:index")},
        "correct_url": reverse("seller:mask_correct", args=[mask_shoot.pk, photo.pk]),
        "correction": {
            "include_strokes": json.dumps([[[20, 30], [60, 30]]]),
            "exclude_strokes": json.dumps([[[5, 5]]]),
            "brush_radius": 6,
        },
        "new_shoot_url": reverse("seller:shoot_new"),
        "new_shoot": {
            "sku": "WEB-1",
            "title": "Linen dress",
            "category": "dress",
            "scene": "studio_white",
        },
        "photo": image_bytes().hex(),
        "standard_pose_url": reverse("seller:standard_pose", args=[no_pose_shoot.pk]),
        "face_url": reverse("admin:facelibrary_face_change", args=[face.pk]),
        "face_photo": str(samples_dir / "faces" / "face04.png"),
    }
    client.force_login(admin)
    plan["face_form"] = _face_form(client, face)
    result = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS, json.dumps(plan)],
        cwd=REPO,
        env=worker_env(DJANGO_SETTINGS_MODULE="config.settings", QUEUE_MODE="rq"),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {name: 200 for name in [*plan["seller_pages"], *plan["admin_pages"]]}
    posts = {"mask correction": 200, "upload": 302, "standard pose": 302, "face reference": 302}
    assert report["statuses"] == expected | posts, report
    imported = {"URLconf": report["after_urlconf"], "requests": report["heavy"]}
    assert imported == {"URLconf": [], "requests": []}, "the web process imported the ML stack"
    # the posts did their work: a standard pose drawn, a reference stored for the worker's gate
    template = no_pose_shoot.photos.get().analyses.first()
    assert template.pose_source == PhotoAnalysis.PoseSource.TEMPLATE and template.pose_image
    reference = FaceReference.objects.get(face=face)
    assert reference.gate_pending and reference.gate_job_id in get_queue("analysis").job_ids
