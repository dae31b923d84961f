"""The catalog gate, part by part, through the real API (docs/security.md, "Catalog gate").

A catalog client may see an asset only when all three hold (``catalog.selectors``):
1. the asset is ``qa_approved`` or ``published`` (asset status),
2. its shoot is ``approved`` or ``published`` (shoot status),
3. the client serves the shoot's seller (seller scope).

Each test builds a state where exactly one part is missing and checks every way a client reads
assets: the list, the detail, publishing, the signed file link and the change feed. Each test
was seen failing with its part of the condition deleted from ``catalog/selectors.py``.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from catalog import files
from catalog.models import CatalogClient, Scope
from catalog.services import client_token_create
from generation.models import Asset
from qa.models import RejectionReason
from qa.services import asset_qa_approve, asset_qa_reject
from seller.models import Shoot, ShootStatus
from seller.review import asset_seller_approve, shoot_send_to_qa
from tests.qa.factories import checks_passed, make_asset, reviewer, shoot_with_assets

pytestmark = pytest.mark.django_db

LIST = "/api/v1/assets/"
CHANGES = "/api/v1/changes/"
IMAGE = Image.new("RGB", (600, 800), (180, 40, 90))


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def signed_link(asset: Asset) -> str:
    """A valid signed link to the asset's file, as the API would make it. The API hands links
    out only for visible assets; the file view must not rely on that (a link copied from an
    older response, or one made by a bug elsewhere, must still check the gate)."""
    return reverse("catalog:asset-file", args=[files._signer.sign(asset.pk, "file")])


def feed_asset_ids(api: APIClient) -> set[int]:
    ids: set[int] = set()
    page = api.get(CHANGES, {"limit": 500}).json()
    assert page["has_more"] is False
    for event in page["results"]:
        if event.get("asset"):
            ids.add(event["asset"]["id"])
        ids.update(event.get("asset_ids", []))
    return ids


def what_the_client_sees(api: APIClient, asset: Asset) -> dict[str, object]:
    """Every way a client reads an asset, as one dict (so a failure shows all of them)."""
    listed = [item["id"] for item in api.get(LIST, {"limit": 500}).json()["results"]]
    return {
        "listed": asset.pk in listed,
        "detail": api.get(f"{LIST}{asset.pk}/").status_code,
        "file": APIClient().get(signed_link(asset)).status_code,
        "in feed": asset.pk in feed_asset_ids(api),
    }


HIDDEN = {"listed": False, "detail": 404, "file": 404, "in feed": False}
SHOWN = {"listed": True, "detail": 200, "file": 200, "in feed": True}


def assert_publish_is_404(api: APIClient, asset: Asset) -> None:
    before = fresh(asset).status
    assert api.post(f"{LIST}{asset.pk}/publish/").status_code == 404
    assert fresh(asset).status == before


def returned_round(seller) -> tuple[Shoot, Asset, Asset]:
    """QA approves one asset of a round and rejects the other (real services): the shoot goes
    back to the seller while the approved asset stays ``qa_approved``."""
    shoot, (kept, rejected) = shoot_with_assets(2, seller=seller, image=IMAGE)
    for asset in (kept, rejected):
        asset_seller_approve(asset=asset, actor=seller.user)
    shoot_send_to_qa(shoot=shoot, actor=seller.user)
    checks_passed(kept, rejected)  # the automatic checks ran and passed
    qa = reviewer()
    asset_qa_approve(asset=fresh(kept), reviewer=qa)
    asset_qa_reject(asset=fresh(rejected), reviewer=qa, reason=RejectionReason.HANDS)
    kept, rejected, shoot = fresh(kept), fresh(rejected), fresh(shoot)
    # the state the test is about: without it the test would prove nothing
    assert shoot.status == ShootStatus.SELLER_REVIEW
    assert kept.status == Asset.Status.QA_APPROVED
    assert rejected.status == Asset.Status.QA_REJECTED
    return shoot, kept, rejected


# --- (1) shoot status: qa_approved asset of a shoot returned to the seller ------------------------


def test_a_qa_approved_asset_of_a_shoot_returned_to_the_seller_is_hidden(alice):
    _shoot, kept, rejected = returned_round(alice.shoot.seller)
    api = alice.api()
    assert what_the_client_sees(api, kept) == HIDDEN
    assert what_the_client_sees(api, rejected) == HIDDEN
    assert_publish_is_404(api, kept)
    # the client's other assets are still there: the gate hides exactly the returned shoot
    assert what_the_client_sees(api, alice.assets[0]) == SHOWN


def test_the_kept_asset_appears_once_a_later_round_approves_the_shoot(alice):
    seller = alice.shoot.seller
    shoot, kept, rejected = returned_round(seller)
    redo = make_asset(shoot, image=IMAGE)  # the seller's regenerated result
    asset_seller_approve(asset=redo, actor=seller.user)
    shoot_send_to_qa(shoot=shoot, actor=seller.user)
    checks_passed(redo)
    asset_qa_approve(asset=fresh(redo), reviewer=reviewer())
    assert fresh(shoot).status == ShootStatus.APPROVED
    api = alice.api()
    assert what_the_client_sees(api, kept) == SHOWN
    assert what_the_client_sees(api, redo) == SHOWN
    # qa_rejected in an approved shoot: the asset-status part keeps it out
    assert what_the_client_sees(api, rejected) == HIDDEN
    assert_publish_is_404(api, rejected)


# --- (2) asset status: an undecided asset in an approved shoot ---------------------------------


@pytest.mark.parametrize(
    "status",
    [
        Asset.Status.SELLER_APPROVED,
        Asset.Status.GENERATED,
        Asset.Status.SELLER_REJECTED,
        Asset.Status.QA_REJECTED,
    ],
)
def test_an_asset_qa_did_not_approve_in_an_approved_shoot_is_hidden(alice, status):
    assert fresh(alice.shoot).status == ShootStatus.APPROVED
    asset = make_asset(alice.shoot, image=IMAGE, status=status)
    api = alice.api()
    assert what_the_client_sees(api, asset) == HIDDEN
    assert_publish_is_404(api, asset)


# --- (3) published: still visible, in a published shoot too -----------------------------------


def test_published_assets_stay_visible_in_an_approved_and_then_a_published_shoot(alice):
    api = alice.api()
    first, second = alice.assets
    assert api.post(f"{LIST}{first.pk}/publish/").status_code == 200
    assert fresh(first).status == Asset.Status.PUBLISHED
    assert fresh(alice.shoot).status == ShootStatus.APPROVED
    assert what_the_client_sees(api, first) == SHOWN
    assert api.get(f"{LIST}{first.pk}/").json()["status"] == "published"
    assert api.post(f"{LIST}{second.pk}/publish/").status_code == 200
    assert fresh(alice.shoot).status == ShootStatus.PUBLISHED
    for asset in (first, second):
        assert what_the_client_sees(api, asset) == SHOWN
    listed = api.get(LIST, {"status": "published"}).json()["results"]
    assert [item["id"] for item in listed] == [first.pk, second.pk]


# --- (4) seller scope: another seller's asset, for a client not serving that seller ------------


def test_a_client_never_sees_the_assets_of_a_seller_it_does_not_serve(alice, bob):
    api = alice.api()  # alice's client serves alice's seller only, and may publish
    assert not alice.client.sellers.filter(pk=bob.shoot.seller_id).exists()
    for asset in bob.assets:
        seen = what_the_client_sees(api, asset)
        # the signed link is the credential on its own (docs/api.md): it is not scoped
        assert {**seen, "file": 404} == HIDDEN, seen
        assert_publish_is_404(api, asset)
    feed = api.get(CHANGES, {"limit": 500}).json()["results"]
    assert {event["shoot_id"] for event in feed} == {alice.shoot.pk}
    # the same assets for a client that serves every seller: the gate hides nothing else
    client = CatalogClient.objects.create(name="everyone", all_sellers=True)
    _token, raw = client_token_create(client=client, name="all", scopes=[Scope.READ])
    everyone = APIClient()
    everyone.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    for asset in [*alice.assets, *bob.assets]:
        assert what_the_client_sees(everyone, asset) == SHOWN
