"""CSRF on every form: seller pages, sign-in, sign-up, sign-out, and the admin.

Three layers:
1. structure: CsrfViewMiddleware is installed and no view in the whole URLconf is csrf_exempt,
   except the catalog API (DRF), whose only session authentication enforces CSRF itself;
2. every seller URL, built from the same table test_isolation uses, refuses a POST without the
   token (plain and htmx), and a POST *with* the token reaches the view, which also proves the
   table lists every route that accepts POST;
3. sign-in, sign-up, sign-out and the admin's actions and forms refuse a POST without the token.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authentication import SessionAuthentication
from rest_framework.views import APIView

from seller import urls as seller_urls
from seller.models import Seller
from tests.factories import SellerFactory, UserFactory
from tests.security.conftest import csrf_client, csrf_token
from tests.seller.test_isolation import LIBRARY, UNSCOPED, object_urls
from tests.seller.test_pages_builders import active_faces, reviewed_shoot

pytestmark = pytest.mark.django_db
CSRF_FAILED = "CSRF verification failed"


def walk(patterns=None, prefix: str = "") -> Iterator[tuple[str, object]]:
    """(route, view callback) for every URL pattern of the project, includes flattened."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


# --- 1. structure --------------------------------------------------------------------------------


def test_the_csrf_middleware_is_installed():
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE


def test_no_view_outside_the_token_api_is_csrf_exempt():
    exempt = [route for route, view in walk() if getattr(view, "csrf_exempt", False)]
    assert exempt, "the walk found the API's views: it does see csrf_exempt"
    assert all(route.startswith("api/") for route in exempt), exempt


def test_the_api_only_trusts_sessions_through_drf_session_auth_which_enforces_csrf():
    """DRF views are csrf_exempt: bearer tokens cannot be forged cross-site, and DRF's
    SessionAuthentication (staff browsing) runs the CSRF check itself."""
    for route, view in walk():
        if not route.startswith("api/"):
            continue
        cls = getattr(view, "cls", None)
        assert cls is not None and issubclass(cls, APIView), route
        for auth in cls.authentication_classes:
            if issubclass(auth, SessionAuthentication):
                assert auth.enforce_csrf is SessionAuthentication.enforce_csrf, (route, auth)


def test_api_endpoints_refuse_a_staff_session_post_without_the_token():
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_catalogclient"))
    client = csrf_client(staff)
    for url in ("/api/v1/assets/", "/api/v1/changes/"):
        assert client.get(url).status_code == 200, url  # the session is accepted for reading
        response = client.post(url, {})
        assert response.status_code in (403, 405), (url, response.status_code)


# --- 2. every seller URL -------------------------------------------------------------------------


@pytest.fixture
def owner() -> Seller:
    return SellerFactory()


@pytest.fixture
def all_seller_urls(owner) -> list[tuple[str, str]]:
    """(method the route is known for, url) for every seller route, one object each."""
    shoot = reviewed_shoot(owner, faces=1, variants=1, video=True)
    table = [(method, name, kwargs) for method, name, kwargs in object_urls(shoot)]
    table += [("get", name, {}) for name in sorted(UNSCOPED)] + [("post", "shoot_new", {})]
    face = active_faces(1)[0]
    table += [("get", name, {"face_id": face.pk}) for name in sorted(LIBRARY)]
    # A new seller route must be added to test_isolation's table, and so it is tested here too.
    assert {name for _, name, _ in table} == {p.name for p in seller_urls.urlpatterns}
    return [(method, reverse(f"seller:{name}", kwargs=kwargs)) for method, name, kwargs in table]


def test_every_seller_url_refuses_a_post_without_the_token(owner, all_seller_urls):
    client = csrf_client(owner.user)
    for _method, url in all_seller_urls:
        for extra in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.post(url, {"reason": "x", "mask": 1}, **extra)
            assert response.status_code == 403, (url, extra, response.status_code)
            assert CSRF_FAILED in response.content.decode(), url


def test_every_seller_post_route_accepts_the_token_and_the_table_lists_them_all(
    owner, all_seller_urls
):
    """With the token a POST reaches the view (anything but 403); GET-only views answer 405.
    So the routes that accept POST are exactly those the table marks as POST."""
    client = csrf_client(owner.user)
    token = csrf_token(client, reverse("seller:dashboard"))
    accepts_post = set()
    for _method, url in all_seller_urls:
        response = client.post(url, {"csrfmiddlewaretoken": token, "reason": "ok"})
        assert response.status_code not in (403, 500), (url, response.status_code)
        if response.status_code != 405:
            accepts_post.add(url)
    known = {url for method, url in all_seller_urls if method == "post"}
    assert accepts_post == known


def test_htmx_posts_carry_the_token_in_a_header(owner):
    """base.html puts the token in hx-headers (X-CSRFToken): that is what htmx sends."""
    shoot = reviewed_shoot(owner, faces=1, variants=1)
    asset = shoot.runs.get().jobs.get().assets.get()
    client = csrf_client(owner.user)
    page = client.get(reverse("seller:results", args=[shoot.pk])).content.decode()
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    assert "X-CSRFToken" in page
    url = reverse("seller:asset_approve", args=[shoot.pk, asset.pk])
    refused = client.post(url, HTTP_HX_REQUEST="true")
    assert refused.status_code == 403
    accepted = client.post(url, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200


def test_a_token_from_another_session_is_refused(owner):
    shoot = reviewed_shoot(owner, faces=1, variants=1)
    attacker = csrf_client(SellerFactory().user)
    foreign_token = csrf_token(attacker, reverse("seller:dashboard"))
    victim = csrf_client(owner.user)
    victim.get(reverse("seller:dashboard"))  # the victim has their own CSRF cookie
    response = victim.post(
        reverse("seller:send_to_qa", args=[shoot.pk]), {"csrfmiddlewaretoken": foreign_token}
    )
    assert response.status_code == 403


# --- 3. sign-in, sign-up, sign-out, admin --------------------------------------------------------


def test_sign_in_refuses_a_post_without_the_token():
    seller = SellerFactory()
    client = csrf_client()
    client.get(reverse("login"))
    response = client.post(
        reverse("login"), {"username": seller.user.username, "password": "pass-Word-123"}
    )
    assert response.status_code == 403 and CSRF_FAILED in response.content.decode()
    assert SESSION_KEY not in client.session


def test_sign_up_refuses_a_post_without_the_token_and_works_with_it(settings):
    settings.SIGNUP_ENABLED = True
    data = {
        "username": "newseller",
        "email": "new@example.com",
        "password1": "a-Long-pass-phrase-42",
        "password2": "a-Long-pass-phrase-42",
        "store_name": "New store",
        "catalog_seller_id": "cat-new-1",
    }
    client = csrf_client()
    token = csrf_token(client, reverse("signup"))
    assert client.post(reverse("signup"), data).status_code == 403
    assert not Seller.objects.filter(user__username="newseller").exists()
    assert client.post(reverse("signup"), data | {"csrfmiddlewaretoken": token}).status_code == 302
    assert Seller.objects.filter(user__username="newseller").exists()


def test_sign_out_needs_the_token(owner):
    client = csrf_client(owner.user)
    assert client.post(reverse("logout")).status_code == 403
    assert SESSION_KEY in client.session  # a cross-site page cannot sign the seller out


def test_every_admin_changelist_action_and_add_form_needs_the_token():
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client = csrf_client(superuser)
    token = csrf_token(client, reverse("admin:index"))
    checked = 0
    for model in admin.site._registry:
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        action = {"action": "delete_selected", "_selected_action": [], "index": 0}
        refused = client.post(changelist, action)
        assert refused.status_code == 403, (changelist, refused.status_code)
        assert CSRF_FAILED in refused.content.decode()
        accepted = client.post(changelist, action | {"csrfmiddlewaretoken": token})
        assert accepted.status_code in (200, 302), (changelist, accepted.status_code)
        add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        assert client.post(add, {}).status_code == 403, add
        checked += 1
    assert checked >= 5  # faces, consents, QA reviews, users, ... are all registered
