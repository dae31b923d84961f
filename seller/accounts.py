"""Seller accounts: a Django user in the ``sellers`` group with a Seller profile."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from core.roles import SELLERS

from .models import Seller


@transaction.atomic
def seller_create(
    *, username: str, password: str, email: str = "", store_name: str, catalog_seller_id: str
) -> Seller:
    user = get_user_model().objects.create_user(username=username, password=password, email=email)
    group, _ = Group.objects.get_or_create(name=SELLERS)
    user.groups.add(group)
    return Seller.objects.create(
        user=user, store_name=store_name, catalog_seller_id=catalog_seller_id
    )
