"""Read-side queries for seller pages. Every query is scoped to the signed-in seller."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from .models import Seller, Shoot


def seller_for_user(user) -> Seller | None:
    return getattr(user, "seller", None) if user.is_authenticated else None


def shoots_for_seller(seller: Seller) -> QuerySet[Shoot]:
    return Shoot.objects.filter(seller=seller)


def shoot_for_seller(seller: Seller, shoot_id: int) -> Shoot:
    """The seller's own shoot or 404: another seller's shoot looks exactly like a missing one."""
    return get_object_or_404(shoots_for_seller(seller), pk=shoot_id)
