"""A seller never sees or reaches another seller's shoots, files or assets: every seller URL.

Another seller's object is a 404 (it looks exactly like one that does not exist), for GET and
POST alike, and a refused POST changes nothing. The URL table below must cover every route in
``seller.urls``: a new page without an isolation test fails ``test_every_seller_url_is_covered``.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from generation.models import Asset, GenerationRun
from qa.models import AssetRating
from seller import urls as seller_urls
from seller.models import MaskCorrection, ShootEvent, ShootStatus
from tests.factories import SellerFactory, UserFactory
from tests.seller.test_pages_builders import reviewed_shoot

pytestmark = pytest.mark.django_db
S = ShootStatus

#: routes that take no object id (they only ever show the signed-in seller's own data)
UNSCOPED = {"dashboard", "shoot_new"}
#: library routes: the same for every seller, guarded by the face's own rules (test_pages)
LIBRARY = {"face_thumb"}


def object_urls(shoot) -> list[tuple[str, str, dict]]:
    """(method, url name, kwargs) for every seller URL that names one of ``shoot``'s objects."""
    photo = shoot.photos.get()
    mask = photo.masks.get(is_chosen=True)
    analysis = photo.analyses.get()
    image = Asset.objects.get(job__run__shoot=shoot, kind="image")
    video = Asset.objects.get(job__run__shoot=shoot, kind="video")
    s = {"shoot_id": shoot.pk}
    p = s | {"photo_id": photo.pk}
    a = s | {"asset_id": image.pk}
    return [
        ("get", "shoot", s),
        ("get", "shoot_status", s),
        ("post", "retry_analysis", s),
        ("post", "rerun_analysis", s),
        ("post", "standard_pose", s),
        ("get", "mask_review", s),
        ("post", "mask_confirm", s),
        ("post", "mask_correct", p),
        ("post", "mask_choose", p),
        ("get", "mask_panel", p),
        ("get", "faces", s),
        ("post", "faces", s),
        ("post", "retry_generation", s),
        ("post", "cancel_generation", s),
        ("post", "regenerate", s),
        ("get", "results", s),
        ("post", "send_to_qa", s),
        ("get", "asset", a),
        ("post", "asset_approve", a),
        ("post", "asset_reject", a),
        ("post", "asset_rate", a),
        ("get", "photo_file", p | {"variant": "image"}),
        ("get", "photo_file", p | {"variant": "thumb"}),
        ("get", "photo_file", p | {"variant": "original"}),
        ("get", "mask_file", s | {"mask_id": mask.pk}),
        ("get", "pose_file", s | {"analysis_id": analysis.pk}),
        ("get", "asset_file", a | {"variant": "file"}),
        ("get", "asset_file", a | {"variant": "thumb"}),
        ("get", "asset_file", s | {"asset_id": video.pk, "variant": "poster"}),
        ("get", "asset_file", s | {"asset_id": video.pk, "variant": "file"}),
    ]


POST_DATA = {
    "faces": [],
    "variants": 1,
    "scene": "studio_white",
    "reason": "not mine",
    "stars": 1,
    "include_strokes": "[[[1, 1]]]",
    "brush_radius": 3,
}


@pytest.fixture
def owner():
    return SellerFactory()


@pytest.fixture
def owned_shoot(owner):
    shoot = reviewed_shoot(owner, faces=1, variants=1, video=True, sku="OWNER-SKU")
    mask = shoot.photos.get().masks.get()
    POST_DATA["mask"] = mask.pk
    return shoot


def snapshot(shoot) -> tuple:
    shoot.refresh_from_db()
    return (
        shoot.status,
        ShootEvent.objects.filter(shoot=shoot).count(),
        GenerationRun.objects.filter(shoot=shoot).count(),
        sorted(Asset.objects.filter(job__run__shoot=shoot).values_list("status", flat=True)),
        list(shoot.photos.get().masks.values_list("pk", "is_chosen")),
        AssetRating.objects.filter(asset__job__run__shoot=shoot).count(),
        MaskCorrection.objects.filter(photo__shoot=shoot).count(),
    )


def test_every_seller_url_is_covered(owned_shoot):
    covered = {name for _, name, _ in object_urls(owned_shoot)} | UNSCOPED | LIBRARY
    routes = {pattern.name for pattern in seller_urls.urlpatterns}
    assert routes == covered


def test_owner_reaches_every_get_url(client, owner, owned_shoot):
    client.force_login(owner.user)
    for method, name, kwargs in object_urls(owned_shoot):
        if method == "get":
            response = client.get(reverse(f"seller:{name}", kwargs=kwargs))
            assert response.status_code == 200, (name, kwargs, response.status_code)


def test_another_seller_gets_404_on_every_url_and_changes_nothing(client, owned_shoot):
    client.force_login(SellerFactory().user)
    before = snapshot(owned_shoot)
    for method, name, kwargs in object_urls(owned_shoot):
        url = reverse(f"seller:{name}", kwargs=kwargs)
        response = getattr(client, method)(url, POST_DATA if method == "post" else None)
        assert response.status_code == 404, (method, name, kwargs, response.status_code)
        htmx = getattr(client, method)(
            url, POST_DATA if method == "post" else None, HTTP_HX_REQUEST="true"
        )
        assert htmx.status_code == 404, (method, name, "htmx", htmx.status_code)
    assert snapshot(owned_shoot) == before


def test_own_shoot_id_with_another_sellers_object_ids_is_404(client, owned_shoot):
    """Mixing an own shoot id with another seller's photo, mask or asset id does not leak."""
    intruder = SellerFactory()
    own = reviewed_shoot(intruder, faces=1, variants=1, video=True)
    client.force_login(intruder.user)
    before = snapshot(owned_shoot)
    for method, name, kwargs in object_urls(owned_shoot):
        if set(kwargs) == {"shoot_id"}:
            continue
        mixed = kwargs | {"shoot_id": own.pk}
        url = reverse(f"seller:{name}", kwargs=mixed)
        response = getattr(client, method)(url, POST_DATA if method == "post" else None)
        assert response.status_code == 404, (method, name, mixed, response.status_code)
    assert snapshot(owned_shoot) == before


def test_choosing_another_sellers_mask_version_is_404(client, owned_shoot):
    intruder = SellerFactory()
    own = reviewed_shoot(intruder, faces=1, variants=1)
    client.force_login(intruder.user)
    own_photo = own.photos.get()
    foreign_mask = owned_shoot.photos.get().masks.get()
    response = client.post(
        reverse("seller:mask_choose", args=[own.pk, own_photo.pk]), {"mask": foreign_mask.pk}
    )
    assert response.status_code == 404


def test_dashboard_never_lists_or_finds_another_sellers_shoots(client, owned_shoot):
    client.force_login(SellerFactory().user)
    for params in ({}, {"q": "OWNER-SKU"}, {"status": S.SELLER_REVIEW}):
        page = client.get(reverse("seller:dashboard"), params).content.decode()
        assert owned_shoot.title not in page
        assert reverse("seller:shoot", args=[owned_shoot.pk]) not in page
        assert "No shoots yet" in page or "No shoot matches" in page


def test_generation_on_another_sellers_shoot_is_404(client, owned_shoot):
    """Starting a generation on another seller's shoot is refused before any face is read."""
    client.force_login(SellerFactory().user)
    url = reverse("seller:faces", args=[owned_shoot.pk])
    response = client.post(url, {"faces": [1], "variants": 1, "scene": "runway"})
    assert response.status_code == 404


def test_anonymous_is_sent_to_sign_in_from_every_url(client, owned_shoot):
    for method, name, kwargs in [("get", n, {}) for n in UNSCOPED] + object_urls(owned_shoot):
        response = getattr(client, method)(reverse(f"seller:{name}", kwargs=kwargs))
        assert response.status_code == 302, (name, response.status_code)
        assert response["Location"].startswith(reverse("login"))


def test_non_seller_account_is_refused_everywhere(client, owned_shoot):
    client.force_login(UserFactory(is_staff=True))
    for method, name, kwargs in [("get", n, {}) for n in UNSCOPED] + object_urls(owned_shoot):
        response = getattr(client, method)(reverse(f"seller:{name}", kwargs=kwargs))
        assert response.status_code == 403, (name, response.status_code)


def test_media_files_are_not_served_by_path(client, owner, owned_shoot):
    """Stored files are reachable only through the seller-scoped views, never by their path."""
    client.force_login(owner.user)
    photo = owned_shoot.photos.get()
    for name in (photo.image.name, photo.original.name):
        assert client.get(f"/media/{name}").status_code == 404
