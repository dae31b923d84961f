"""Upload abuse: per-seller limits on the new-shoot POST (config/ratelimit.limit_shoot_uploads).

``shoot_create`` counts shoots created (default 30 per hour); ``shoot_upload`` counts every
new-shoot POST whatever its outcome (default 120 per hour), because refused uploads cost the
server a decode too. A refused request stores nothing and shows a clear message with HTTP 429.
"""

from __future__ import annotations

import html
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core import ratelimit
from seller.models import Shoot
from tests.factories import SellerFactory
from tests.security import corpus as c
from tests.security.conftest import csrf_client, csrf_token

pytestmark = pytest.mark.django_db
NEW_SHOOT = "/shoots/new/"
PHOTO = c.jpeg((64, 64))


def post_shoot(client, *, good: bool = True, **extra):
    token = csrf_token(client, NEW_SHOOT)
    photo = SimpleUploadedFile("front.jpg", PHOTO if good else b"not a photo", "image/jpeg")
    data = {"sku": "S-1", "title": "Shirt", "category": "top", "scene": "studio_white"}
    return client.post(NEW_SHOOT, data | {"photos": [photo], "csrfmiddlewaretoken": token}, **extra)


def text(response) -> str:
    return html.unescape(response.content.decode())


def test_default_limits_come_from_settings():
    assert ratelimit.rate("shoot_create") == ratelimit.Rate(30, 3600)
    assert ratelimit.rate("shoot_upload") == ratelimit.Rate(120, 3600)


def test_the_31st_shoot_in_an_hour_is_refused_with_429(seller, seller_client, new_media):
    for _ in range(30):
        assert post_shoot(seller_client).status_code == 302
    files = new_media()
    response = post_shoot(seller_client)
    assert response.status_code == 429
    assert "You have reached the limit of 30 new shoots per hour." in text(response)
    assert response["Retry-After"] == "3600"
    assert Shoot.objects.filter(seller=seller).count() == 30
    assert new_media() == files  # the refused upload stored nothing


def test_refused_uploads_do_not_use_up_shoots_but_count_as_uploads(settings, seller, seller_client):
    settings.RATE_LIMITS = settings.RATE_LIMITS | {"shoot_upload": (4, 3600)}
    for _ in range(3):
        assert post_shoot(seller_client, good=False).status_code == 422
    assert post_shoot(seller_client).status_code == 302  # 4th POST, first shoot
    response = post_shoot(seller_client)
    assert response.status_code == 429
    assert "Too many uploads in a short time (at most 4 per hour)." in text(response)
    assert Shoot.objects.filter(seller=seller).count() == 1


def test_the_page_itself_stays_reachable_and_shows_why(settings, seller_client):
    settings.RATE_LIMITS = settings.RATE_LIMITS | {"shoot_create": (1, 3600)}
    assert post_shoot(seller_client).status_code == 302
    refused = post_shoot(seller_client)
    assert refused.status_code == 429
    page = text(refused)
    assert "Please slow down" in page and 'href="/shoots/new/"' in page  # the site's layout
    assert seller_client.get(NEW_SHOOT).status_code == 200  # GET is never limited


def test_an_htmx_upload_over_the_limit_reloads_the_page_with_the_message(settings, seller_client):
    """htmx does not swap a 429 into the page (base.html's responseHandling): the response
    redirects the browser instead, and the message waits in the session."""
    settings.RATE_LIMITS = settings.RATE_LIMITS | {"shoot_create": (1, 3600)}
    assert post_shoot(seller_client, HTTP_HX_REQUEST="true")["HX-Redirect"]
    refused = post_shoot(seller_client, HTTP_HX_REQUEST="true")
    assert refused.status_code == 429 and refused["HX-Redirect"] == NEW_SHOOT
    page = text(seller_client.get(refused["HX-Redirect"]))
    assert "You have reached the limit of 1 new shoots per hour." in page


def test_limits_are_per_seller(settings, seller_client):
    settings.RATE_LIMITS = settings.RATE_LIMITS | {"shoot_create": (1, 3600)}
    assert post_shoot(seller_client).status_code == 302
    assert post_shoot(seller_client).status_code == 429
    other = csrf_client(SellerFactory().user)
    assert post_shoot(other).status_code == 302


def test_the_limit_lifts_when_the_window_has_passed(settings, seller_client):
    settings.RATE_LIMITS = settings.RATE_LIMITS | {"shoot_create": (1, 1)}
    assert post_shoot(seller_client).status_code == 302
    assert post_shoot(seller_client).status_code == 429
    time.sleep(1.3)
    assert post_shoot(seller_client).status_code == 302


def test_signed_out_posts_are_not_counted_against_anyone(settings, seller):
    settings.RATE_LIMITS = settings.RATE_LIMITS | {"shoot_upload": (1, 3600)}
    anonymous = csrf_client()
    token = csrf_token(anonymous, reverse("login"))
    response = anonymous.post(NEW_SHOOT, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert post_shoot(csrf_client(seller.user)).status_code == 302
