"""Catalog API: every endpoint with and without a valid token, scopes, cursors, files."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

from catalog import files
from catalog.models import CatalogClient, CatalogEvent, EventType, Publication
from catalog.services import client_token_revoke
from generation.models import Asset
from seller.models import Shoot, ShootStatus
from tests.factories import UserFactory
from tests.qa.factories import shoot_with_assets

pytestmark = pytest.mark.django_db

LIST = "/api/v1/assets/"
CHANGES = "/api/v1/changes/"


def detail(asset) -> str:
    return f"/api/v1/assets/{asset.pk}/"


def publish(asset) -> str:
    return f"/api/v1/assets/{asset.pk}/publish/"


def endpoints(asset):
    return [("get", LIST), ("get", detail(asset)), ("post", publish(asset)), ("get", CHANGES)]


# --- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer", "Token a b", "Bearer stc_é"])
def test_every_endpoint_refuses_a_missing_or_invalid_token(alice, header):
    api = APIClient()
    if header:
        api.credentials(HTTP_AUTHORIZATION=header)
    for method, url in endpoints(alice.assets[0]):
        response = getattr(api, method)(url)
        assert response.status_code == 401, (method, url, response.content)
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert Asset.objects.get(pk=alice.assets[0].pk).status == Asset.Status.QA_APPROVED


def test_a_revoked_token_or_inactive_client_is_refused_at_once(alice):
    api = alice.api()
    assert api.get(LIST).status_code == 200
    client_token_revoke(token=alice.token)
    assert api.get(LIST).status_code == 401
    assert api.get(CHANGES).status_code == 401


def test_an_inactive_client_is_refused(alice):
    CatalogClient.objects.filter(pk=alice.client.pk).update(is_active=False)
    assert alice.api().get(LIST).status_code == 401


# --- assets ---------------------------------------------------------------------------------------


def test_list_shows_only_the_clients_sellers_approved_assets_with_absolute_urls(alice, bob):
    body = alice.api().get(LIST).json()
    assert body["count"] == 2
    ids = [item["id"] for item in body["results"]]
    assert ids == [a.pk for a in alice.assets]
    item = body["results"][0]
    assert item["status"] == "approved"
    assert item["seller_id"] == alice.shoot.seller.catalog_seller_id
    assert item["sku"] == alice.shoot.sku
    assert item["url"].startswith("http://testserver/api/v1/files/")
    assert item["poster_url"] is None
    assert bob.api().get(LIST).json()["count"] == 1


def test_unapproved_assets_are_invisible(alice):
    _shoot, (asset,) = shoot_with_assets(1, seller=alice.shoot.seller)  # in seller review
    api = alice.api()
    assert api.get(detail(asset)).status_code == 404
    assert asset.pk not in [i["id"] for i in api.get(LIST).json()["results"]]


def test_filters_by_seller_sku_and_status(alice):
    api = alice.api()
    seller_id = alice.shoot.seller.catalog_seller_id
    assert api.get(LIST, {"seller": seller_id}).json()["count"] == 2
    assert api.get(LIST, {"seller": "someone-else"}).json()["count"] == 0
    assert api.get(LIST, {"sku": alice.shoot.sku}).json()["count"] == 2
    assert api.get(LIST, {"status": "published"}).json()["count"] == 0
    assert api.get(LIST, {"status": "bogus"}).status_code == 400


def test_pagination(alice):
    body = alice.api().get(LIST, {"limit": 1}).json()
    assert body["count"] == 2 and len(body["results"]) == 1
    assert "offset=1" in body["next"]


def test_retrieve_own_asset_and_not_another_clients(alice, bob):
    assert alice.api().get(detail(alice.assets[0])).json()["id"] == alice.assets[0].pk
    assert alice.api().get(detail(bob.assets[0])).status_code == 404
    assert bob.api().get(detail(alice.assets[0])).status_code == 404


# --- publish ------------------------------------------------------------------------------------


def test_publish_acknowledges_and_publishes_the_shoot_when_all_are_published(alice):
    api = alice.api()
    first, second = alice.assets
    response = api.post(publish(first), {"external_id": "sku-1-front"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "published"
    assert Shoot.objects.get(pk=alice.shoot.pk).status == ShootStatus.APPROVED
    assert api.post(publish(second)).status_code == 200
    assert Shoot.objects.get(pk=alice.shoot.pk).status == ShootStatus.PUBLISHED
    # acknowledging again is harmless
    assert api.post(publish(first)).status_code == 200
    assert Publication.objects.get(asset=first).external_id == "sku-1-front"
    assert api.get(LIST, {"status": "published"}).json()["count"] == 2


def test_publish_needs_the_publish_scope(bob):
    response = bob.api().post(publish(bob.assets[0]))
    assert response.status_code == 403
    assert Asset.objects.get(pk=bob.assets[0].pk).status == Asset.Status.QA_APPROVED


def test_publish_of_another_clients_asset_is_not_found(alice, bob):
    assert alice.api().post(publish(bob.assets[0])).status_code == 404
    assert Asset.objects.get(pk=bob.assets[0].pk).status == Asset.Status.QA_APPROVED


def test_publish_validates_its_body(alice):
    response = alice.api().post(publish(alice.assets[0]), {"external_id": "x" * 201}, format="json")
    assert response.status_code == 400


# --- change feed -------------------------------------------------------------------------------


def test_change_feed_from_the_start_and_from_a_cursor(alice, bob):
    api = alice.api()
    page = api.get(CHANGES).json()
    types = [e["type"] for e in page["results"]]
    assert types == [EventType.ASSET_APPROVED, EventType.ASSET_APPROVED, EventType.SHOOT_APPROVED]
    assert {e["seller_id"] for e in page["results"]} == {alice.shoot.seller.catalog_seller_id}
    assert page["results"][0]["asset"]["url"].startswith("http://testserver/api/v1/files/")
    assert page["results"][2]["asset_ids"] == [a.pk for a in alice.assets]
    assert page["has_more"] is False
    cursor = page["next_cursor"]
    assert cursor == page["results"][-1]["cursor"]
    # nothing new: the same cursor comes back
    again = api.get(CHANGES, {"since": cursor}).json()
    assert again == {"results": [], "next_cursor": cursor, "has_more": False}
    # a publication shows up after the cursor
    api.post(publish(alice.assets[0]))
    newer = api.get(CHANGES, {"since": cursor}).json()["results"]
    assert [e["type"] for e in newer] == [EventType.ASSET_PUBLISHED]


def test_change_feed_pages_with_limit(alice):
    api = alice.api()
    first = api.get(CHANGES, {"limit": 2}).json()
    assert len(first["results"]) == 2 and first["has_more"] is True
    rest = api.get(CHANGES, {"since": first["next_cursor"], "limit": 2}).json()
    assert len(rest["results"]) == 1 and rest["has_more"] is False


def test_change_feed_is_scoped_to_the_client(alice, bob):
    bob_events = bob.api().get(CHANGES).json()["results"]
    assert {e["shoot_id"] for e in bob_events} == {bob.shoot.pk}
    all_ids = set(CatalogEvent.objects.values_list("id", flat=True))
    assert len(all_ids) == 5  # alice 3 + bob 2


@pytest.mark.parametrize(
    "params",
    [
        {"since": "abc"},
        {"since": "-1"},
        {"since": "1.5"},
        {"since": "1e3"},
        {"since": "99999999999999999999"},
        {"since": "9223372036854775808"},
        {"since": "０１"},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
    ],
)
def test_bad_cursors_and_limits_are_a_400(alice, params):
    response = alice.api().get(CHANGES, params)
    assert response.status_code == 400, response.content
    assert set(response.json()) <= {"since", "limit"}


def test_an_empty_cursor_means_from_the_start_like_no_cursor(alice):
    api = alice.api()
    assert api.get(CHANGES, {"since": ""}).json() == api.get(CHANGES).json()


def test_a_cursor_beyond_the_end_is_an_empty_page(alice):
    body = alice.api().get(CHANGES, {"since": str(2**63 - 1)}).json()
    assert body["results"] == [] and body["next_cursor"] == str(2**63 - 1)


# --- files --------------------------------------------------------------------------------------


def test_signed_file_links_serve_the_file_and_nothing_else(alice, monkeypatch):
    url = alice.api().get(detail(alice.assets[0])).json()["url"]
    anonymous = APIClient()  # the signature is the credential
    response = anonymous.get(url)
    assert response.status_code == 200
    with alice.assets[0].file.open("rb") as handle:
        assert b"".join(response.streaming_content) == handle.read()
    token = url.rstrip("/").rsplit("/", 1)[1]
    tampered = token.replace(f"{alice.assets[0].pk}.file", f"{alice.assets[1].pk}.file", 1)
    assert tampered != token
    assert anonymous.get(reverse("catalog:asset-file", args=[tampered])).status_code == 404
    for junk in ("garbage", "1.file.99999999999.x", "..", "1.file.abc.def"):
        assert anonymous.get(reverse("catalog:asset-file", args=[junk])).status_code == 404
    monkeypatch.setattr(files, "FILE_URL_MAX_AGE", -1)
    expired = alice.api().get(detail(alice.assets[0])).json()["url"]
    assert anonymous.get(expired).status_code == 404


# --- throttling, browsing ---------------------------------------------------------------------


def test_throttling_per_client(alice, bob, settings, redis_conn):
    """(redis_conn empties the counters: client ids repeat between test runs)"""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"catalog_client": "3/m", "catalog_files": "3/m"},
    }
    api = alice.api()
    codes = [api.get(CHANGES).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert 0 < int(api.get(CHANGES)["Retry-After"]) <= 60
    assert bob.api().get(CHANGES).status_code == 200  # another client has its own budget


def test_browsable_api_renders_for_a_token(alice):
    response = alice.api().get(LIST, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Django REST framework" in response.content


def test_staff_can_browse_read_only_with_their_session(alice, bob):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_catalogclient"))
    api = APIClient()
    api.force_login(staff)
    assert api.get(LIST).json()["count"] == 3  # every seller
    assert api.post(publish(alice.assets[0])).status_code == 403
    plain = UserFactory(is_staff=True)
    api.force_login(plain)
    assert api.get(LIST).status_code == 401


def test_a_forged_session_cookie_is_ignored_not_a_server_error(alice):
    """PostgreSQL refuses NUL bytes in a query: a forged session key must never reach it."""
    api = alice.api()
    api.cookies["sessionid"] = "forged\x00key"
    assert api.get(LIST).status_code == 200
    anonymous = APIClient()
    anonymous.cookies["sessionid"] = "forged\x00key"
    assert anonymous.get(LIST).status_code == 401
