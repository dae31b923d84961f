"""Bad values in the other seller forms: a clear message and nothing changed, never a 500.

The upload form has its own corpus (test_upload_corpus.py). Here: the mask editor's brush
strokes (JSON built by the page, so anything can arrive), the rejection reason and the face
selection, posted as an htmx request like the page does.
"""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from generation.models import Asset, GenerationRun
from tests.factories import SellerFactory
from tests.seller.test_pages_builders import analysed_shoot, reviewed_shoot

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def signed_in(client):
    seller = SellerFactory()
    client.force_login(seller.user)
    client.seller = seller
    return client


@pytest.mark.parametrize(
    ("strokes", "radius", "message"),
    [
        ('[[["nan", 5]]]', 5, "Each point must be [x, y] numbers."),  # was a 500
        ("[[[NaN, 5]]]", 5, "Each point must be [x, y] numbers."),  # JSON allows NaN
        ('[[["x", 5]]]', 5, "Each point must be [x, y] numbers."),
        ("[[[5]]]", 5, "Each point must be [x, y] numbers."),
        ("[[]]", 5, "Each stroke must be a list of 1 to 2000 points."),
        ("[[" + ",".join(["[1, 1]"] * 2001) + "]]", 5, "Each stroke must be a list of 1 to 2000"),
        ("[" + ",".join(["[[1, 1]]"] * 201) + "]", 5, "Send at most 200 strokes as a list."),
        ('{"a": 1}', 5, "The brush strokes could not be read."),
        ("[[[1, 1]", 5, "The brush strokes could not be read."),
        ("[[[1, 1]]]", 999, "Ensure this value is less than or equal to 200."),
    ],
)
def test_malformed_brush_strokes_are_refused_with_a_message(signed_in, strokes, radius, message):
    shoot = analysed_shoot(signed_in.seller)
    photo = shoot.photos.get()
    photo.analyses.update(keypoints=None, pose_image="")  # the builder's pose is a stub
    response = signed_in.post(
        reverse("seller:mask_correct", args=[shoot.pk, photo.pk]),
        {"include_strokes": strokes, "brush_radius": radius},
        **HTMX,
    )
    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    assert photo.masks.count() == 1  # no new mask version


def test_infinite_coordinates_are_clamped_to_the_image(
    signed_in, settings, django_capture_on_commit_callbacks
):
    settings.QUEUE_MODE = "sync"  # the analysis worker applies the correction in this process
    shoot = analysed_shoot(signed_in.seller)
    photo = shoot.photos.get()
    photo.analyses.update(keypoints=None, pose_image="")
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(
            reverse("seller:mask_correct", args=[shoot.pk, photo.pk]),
            {"include_strokes": "[[[Infinity, -1e999]]]", "brush_radius": 5},
            **HTMX,
        )
    assert response.status_code == 200 and photo.masks.count() == 2


@pytest.mark.parametrize(
    ("reason", "message"),
    [("", "Say what is wrong"), ("x" * 501, "at most 500 characters (it has 501)")],
)
def test_rejection_reason_is_checked(signed_in, reason, message):
    shoot = reviewed_shoot(signed_in.seller, faces=1, variants=1)
    asset = Asset.objects.get(job__run__shoot=shoot)
    response = signed_in.post(
        reverse("seller:asset_reject", args=[shoot.pk, asset.pk]), {"reason": reason}, **HTMX
    )
    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    asset.refresh_from_db()
    assert asset.status == Asset.Status.GENERATED


def test_html_in_a_rejection_reason_is_escaped(signed_in):
    shoot = reviewed_shoot(signed_in.seller, faces=1, variants=1)
    asset = Asset.objects.get(job__run__shoot=shoot)
    payload = "<script>alert(1)</script>"
    signed_in.post(
        reverse("seller:asset_reject", args=[shoot.pk, asset.pk]), {"reason": payload}, **HTMX
    )
    for url in (
        reverse("seller:results", args=[shoot.pk]),
        reverse("seller:asset", args=[shoot.pk, asset.pk]),
        reverse("seller:shoot", args=[shoot.pk]),
    ):
        assert payload not in signed_in.get(url).content.decode(), url


@pytest.mark.parametrize(
    "faces", [["abc"], ["999999"], ["-1"], [str(2**70)], [str(n) for n in range(1, 40)]]
)
def test_face_selection_with_bogus_ids_starts_nothing(signed_in, faces):
    shoot = reviewed_shoot(signed_in.seller, faces=1, variants=1)
    runs = GenerationRun.objects.filter(shoot=shoot).count()
    response = signed_in.post(
        reverse("seller:faces", args=[shoot.pk]),
        {"faces": faces, "variants": 1, "scene": "studio_white"},
    )
    assert response.status_code == 422
    assert "Select a valid choice" in html.unescape(response.content.decode())
    assert GenerationRun.objects.filter(shoot=shoot).count() == runs
