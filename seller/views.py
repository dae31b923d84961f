from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from .selectors import seller_for_user, shoots_for_seller


def seller_required(view):
    """Signed in and has a Seller profile; the profile is passed on as ``request.seller``."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        seller = seller_for_user(request.user)
        if seller is None:
            raise PermissionDenied("This page is for seller accounts.")
        request.seller = seller
        return view(request, *args, **kwargs)

    return wrapper


@seller_required
def dashboard(request):
    shoots = shoots_for_seller(request.seller)[:50]
    return render(request, "seller/dashboard.html", {"shoots": shoots})
