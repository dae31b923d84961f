"""Media exposure: stored files reach only their owner, through seller-scoped views.

- /media/ (local storage) is served to staff only (admin previews, config/media.py), never to a
  seller or a signed-out visitor (404), and never outside MEDIA_ROOT.
- Every file URL on the seller pages is a seller-scoped view: the owner gets it, a signed-out
  visitor is sent to sign in, another seller gets a 404 (test_isolation covers every such URL
  for another seller; here the URLs are the ones the pages really link to).
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import resolve, reverse
from django.urls.exceptions import Resolver404

from facelibrary.models import FaceReference
from generation.models import Asset
from seller.models import Seller, Shoot
from tests.factories import SellerFactory, UserFactory
from tests.seller.test_pages_builders import reviewed_shoot

pytestmark = pytest.mark.django_db
FILE_VIEWS = {"photo_file", "mask_file", "pose_file", "asset_file", "face_thumb"}
LINK = re.compile(r'(?:src|href|poster|srcset|data-[\w-]+|hx-get)="([^"]+)"')


@pytest.fixture
def owner() -> Seller:
    return SellerFactory()


@pytest.fixture
def shoot(owner) -> Shoot:
    return reviewed_shoot(owner, faces=1, variants=1, video=True)


def stored_names(shoot: Shoot) -> list[str]:
    """Every stored file behind the shoot (and the library faces it used)."""
    photo = shoot.photos.get()
    names = [photo.image.name, photo.original.name, photo.masks.get().mask.name]
    names.append(photo.analyses.get().pose_image.name)
    for asset in Asset.objects.filter(job__run__shoot=shoot):
        names += [asset.file.name] + ([asset.poster.name] if asset.poster else [])
    for ref in FaceReference.objects.all():
        names += [ref.image.name, ref.thumbnail.name]
    assert all(names)
    return names


def clients(owner: Seller) -> dict[str, Client]:
    signed_out, seller, staff = Client(), Client(), Client()
    seller.force_login(owner.user)
    staff.force_login(UserFactory(is_staff=True, is_superuser=True))
    return {"signed out": signed_out, "owner": seller, "superuser": staff}


# --- /media/: staff only, a 404 for everyone else -------------------------------------------


def test_media_is_served_to_staff_only(owner, shoot):
    everyone = clients(owner)
    for name in stored_names(shoot):
        url = f"/media/{name}"
        for who in ("signed out", "owner"):
            response = everyone[who].get(url)
            assert response.status_code == 404, (who, name, response.status_code)
        response = everyone["superuser"].get(url)
        assert response.status_code == 200, (name, response.status_code)
        assert b"".join(response.streaming_content)  # read through the client: closes the file


def test_staff_cannot_leave_media_root(owner):
    staff = clients(owner)["superuser"]
    for path in ("../manage.py", "%2e%2e/manage.py", "..%2fmanage.py", "/etc/passwd"):
        response = staff.get(f"/media/{path}")
        assert response.status_code in (400, 404), (path, response.status_code)


# --- every file the seller pages link to ---------------------------------------------------------


def page_links(client: Client, shoot: Shoot) -> set[str]:
    asset = Asset.objects.get(job__run__shoot=shoot, kind="image")
    pages = [
        reverse("seller:dashboard"),
        reverse("seller:shoot", args=[shoot.pk]),
        reverse("seller:mask_review", args=[shoot.pk]),
        reverse("seller:faces", args=[shoot.pk]),
        reverse("seller:results", args=[shoot.pk]),
        reverse("seller:asset", args=[shoot.pk, asset.pk]),
    ]
    links = set()
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        for value in LINK.findall(response.content.decode()):
            for candidate in value.split(","):  # srcset
                url = candidate.strip().split(" ")[0].replace("&amp;", "&")
                if url.startswith("/"):
                    links.add(url)
    return links


def file_links(links: set[str]) -> dict[str, str]:
    """url -> view name, for links that resolve to a file view."""
    found = {}
    for url in links:
        try:
            match = resolve(url.split("?")[0])
        except Resolver404:
            continue
        if match.url_name in FILE_VIEWS:
            found[url] = match.url_name
    return found


def test_pages_link_files_only_through_seller_scoped_views(owner, shoot):
    client = Client()
    client.force_login(owner.user)
    links = page_links(client, shoot)
    names = stored_names(shoot)
    for url in links:
        assert not url.startswith("/media/"), url
        assert not any(name in url for name in names), url  # storage names never leak
    files = file_links(links)
    assert set(files.values()) == FILE_VIEWS, files  # the crawl found every kind of file
    for url in files:
        response = client.get(url)
        assert response.status_code in (200, 302), (url, response.status_code)
        if response.status_code == 200:
            assert "private" in response["Cache-Control"]


def test_a_signed_out_visitor_gets_no_linked_file(owner, shoot):
    signed_in = Client()
    signed_in.force_login(owner.user)
    files = file_links(page_links(signed_in, shoot))
    anonymous = Client()
    for url in files:
        response = anonymous.get(url)
        assert response.status_code == 302, (url, response.status_code)
        assert response["Location"].startswith(reverse("login"))


def test_another_seller_gets_404_for_every_linked_shoot_file(owner, shoot):
    signed_in = Client()
    signed_in.force_login(owner.user)
    files = file_links(page_links(signed_in, shoot))
    intruder = Client()
    intruder.force_login(SellerFactory().user)
    for url, view in files.items():
        response = intruder.get(url)
        # library face thumbnails are the same for every seller (active, consented faces)
        expected = 200 if view == "face_thumb" else 404
        assert response.status_code == expected, (url, response.status_code)
