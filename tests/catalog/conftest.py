"""Catalog fixtures: two sellers with approved shoots, a client (and token) for each."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from PIL import Image
from rest_framework.test import APIClient

from catalog.models import CatalogClient, ClientToken, Scope
from catalog.services import client_token_create
from generation.models import Asset
from qa.services import asset_qa_approve
from seller.models import Shoot
from seller.review import asset_seller_approve, shoot_send_to_qa
from tests.qa.factories import checks_passed, reviewer, shoot_with_assets


def approved_shoot(n: int = 2, **kwargs) -> tuple[Shoot, list[Asset]]:
    """A shoot taken through seller approval and QA with the real services."""
    image = Image.new("RGB", (600, 800), (180, 40, 90))
    shoot, assets = shoot_with_assets(n, image=image, **kwargs)
    for asset in assets:
        asset_seller_approve(asset=asset, actor=shoot.seller.user)
    shoot_send_to_qa(shoot=shoot, actor=shoot.seller.user)
    checks_passed(*assets)
    qa = reviewer()
    for asset in assets:
        asset_qa_approve(asset=Asset.objects.get(pk=asset.pk), reviewer=qa)
    return Shoot.objects.get(pk=shoot.pk), [Asset.objects.get(pk=a.pk) for a in assets]


@dataclass
class Party:
    shoot: Shoot
    assets: list[Asset]
    client: CatalogClient
    token: ClientToken
    raw: str

    def api(self, raw: str | None = None) -> APIClient:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw or self.raw}")
        return api


def make_party(name: str, scopes=(Scope.READ, Scope.PUBLISH), n: int = 2) -> Party:
    shoot, assets = approved_shoot(n)
    client = CatalogClient.objects.create(name=name)
    client.sellers.add(shoot.seller)
    token, raw = client_token_create(client=client, name=f"{name} sync", scopes=list(scopes))
    return Party(shoot, assets, client, token, raw)


@pytest.fixture
def alice(db) -> Party:
    return make_party("alice-market")


@pytest.fixture
def bob(db) -> Party:
    return make_party("bob-market", scopes=(Scope.READ,), n=1)
