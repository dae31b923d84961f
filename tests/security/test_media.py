"""Media exposure: stored files reach only their owner, through seller-scoped views.

- /media/ (local storage) is served to staff by role (admin previews, config/media.py: consent
  documents to face curators, faces to curators and QA, shoot files to QA, everything to
  superusers), never to a seller, a signed-out visitor or staff without the role (404), and
  never outside MEDIA_ROOT.
- Every file URL on the seller pages is a seller-scoped view: the owner gets it, a signed-out
  visitor is sent to sign in, another seller gets a 404 (test_isolation covers every such URL
  for another seller; here the URLs are the ones the pages really link to).
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.test import Client
from django.urls import resolve, reverse
from django.urls.exceptions import Resolver404

from config.media import MEDIA_ACCESS
from core.roles import FACE_CURATORS, ensure_groups
from facelibrary.models import FaceReference
from generation.models import Asset
from seller.models import Seller, Shoot
from tests.facelibrary.factories import ConsentFactory, DraftFaceFactory, FaceReferenceFactory
from tests.factories import SellerFactory, UserFactory
from tests.qa.factories import reviewer
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
# (the page builders store face references under "faces/", a folder the app does not use, so
# only a superuser gets those; the role tests below store every kind where the app does)


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


# --- /media/ by role ----------------------------------------------------------------------------


def stored(folder: str, ext: str, data: bytes = b"x") -> str:
    return default_storage.save(f"{folder}/{uuid.uuid4().hex}.{ext}", ContentFile(data))


@pytest.fixture
def every_kind(shoot) -> dict[str, str]:
    """One stored file of every kind, named as the app names it (upload_to / core.files.store)."""
    face = DraftFaceFactory()
    document = SimpleUploadedFile("Jane Doe release.pdf", b"%PDF-1.4 signed", "application/pdf")
    consent = ConsentFactory(face=face, document=document)
    reference = FaceReferenceFactory(
        face=face,
        image=stored("facelibrary/references", "png"),
        thumbnail=stored("facelibrary/thumbnails", "jpg"),
    )
    photo = shoot.photos.get()
    video = Asset.objects.get(job__run__shoot=shoot, kind=Asset.Kind.VIDEO)
    image = Asset.objects.get(job__run__shoot=shoot, kind=Asset.Kind.IMAGE)
    kinds = {
        "consent document": consent.document.name,
        "face reference": reference.image.name,
        "face thumbnail": reference.thumbnail.name,
        "generated image": image.file.name,
        "video": video.file.name,
        "video poster": video.poster.name,
        "seller photo": photo.image.name,
        "seller original": photo.original.name,
        "garment mask": photo.masks.get().mask.name,
        "pose image": photo.analyses.get().pose_image.name,
        "unknown folder": stored("elsewhere", "png"),
    }
    assert kinds["consent document"].startswith("facelibrary/consents/")
    return kinds


FACES = {"face reference", "face thumbnail"}
SHOOT_FILES = {"generated image", "video", "video poster", "seller photo", "garment mask"}
#: role -> the kinds it gets; every other kind is a 404
ROLES = {
    "signed out": set(),
    "seller (owner)": set(),
    "staff, no permissions": set(),
    "QA reviewer": FACES | SHOOT_FILES | {"pose image"},
    "face curator": FACES | {"consent document"},
    "superuser": "all",
}


def role_clients(owner: Seller) -> dict[str, Client]:
    ensure_groups()
    users = {
        "seller (owner)": owner.user,
        "staff, no permissions": UserFactory(is_staff=True),
        "QA reviewer": reviewer(),
        "face curator": UserFactory(is_staff=True, groups=[FACE_CURATORS]),
        "superuser": UserFactory(is_staff=True, is_superuser=True),
    }
    out = {"signed out": Client()}
    for role, user in users.items():
        out[role] = Client()
        out[role].force_login(user)
    return out


def fetch(client: Client, url: str) -> int:
    response = client.get(url)
    if response.status_code == 200:
        assert b"".join(response.streaming_content)  # closes the file
    return response.status_code


def test_media_is_served_by_role(owner, every_kind):
    everyone = role_clients(owner)
    got = {}
    for role, client in everyone.items():
        got[role] = {k for k, name in every_kind.items() if fetch(client, f"/media/{name}") == 200}
    expected = {role: set(every_kind) if kinds == "all" else kinds for role, kinds in ROLES.items()}
    assert got == expected


@pytest.mark.parametrize(
    "trick",
    [
        "assets/../{name}",
        "assets/%2e%2e/{name}",
        "photos//../{name}",
        "facelibrary/thumbnails/../../{name}",
    ],
)
def test_a_folder_the_role_may_see_does_not_open_another_one(owner, every_kind, trick):
    qa = role_clients(owner)["QA reviewer"]
    url = "/media/" + trick.format(name=every_kind["consent document"])
    assert fetch(qa, url) in (400, 404), url


def test_every_file_field_folder_has_a_role():
    """A new FileField (or a new folder) must be put in config.media.MEDIA_ACCESS: until then
    only superusers get its files."""
    folders = set()
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if not isinstance(field, models.FileField):
                continue
            upload_to = field.upload_to
            if callable(upload_to):
                name = upload_to(None, "x.pdf")
            elif upload_to:
                name = upload_to.split("%", 1)[0] + "x"
            else:  # FaceReference: named by facelibrary.services (facelibrary/references, ...)
                continue
            folders.add((f"{model.__name__}.{field.name}", name))
    assert len(folders) >= 8
    for field, name in folders:
        assert any(name.startswith(folder) for folder in MEDIA_ACCESS), (field, name)


def admin_media_links(client: Client, pages: list[str]) -> set[str]:
    """The /media/ links on admin pages, in the app's folders (the page builders store their
    faces under "faces/", which the app never does)."""
    links = set()
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        for url in LINK.findall(response.content.decode()):
            if url.startswith("/media/") and not url.startswith("/media/faces/"):
                links.add(url)
    return links


def test_admin_previews_work_for_the_role_that_sees_the_page(owner, every_kind):
    everyone = role_clients(owner)
    face_pages = [
        reverse("admin:facelibrary_face_changelist"),
        reverse("admin:facelibrary_face_change", args=[FaceReference.objects.last().face_id]),
        reverse("admin:facelibrary_facereference_changelist"),
        reverse("admin:facelibrary_consent_changelist"),
    ]
    curator = everyone["face curator"]
    links = admin_media_links(curator, face_pages)
    linked = {name for name in every_kind.values() if f"/media/{name}" in links}
    assert {every_kind["consent document"], every_kind["face thumbnail"]} <= linked, links
    for url in links:
        assert fetch(curator, url) == 200, url
    admin = everyone["superuser"]
    shoot_page = reverse("admin:seller_shoot_change", args=[Shoot.objects.get().pk])
    links = admin_media_links(admin, [shoot_page])
    assert f"/media/{every_kind['seller photo']}" in links
    for url in links:
        assert fetch(admin, url) == 200, url
    # a QA reviewer may open the shoot page, but its photo inline is not shown to them
    assert admin_media_links(everyone["QA reviewer"], [shoot_page]) == set()
