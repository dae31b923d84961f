"""Brute force on sign-in: per-username and per-address lockout (core/ratelimit.py).

Through the real pages (/accounts/login/ and /admin/login/) with CSRF enforced, counters in the
test Redis. Limits are the settings' defaults (5 per username, 20 per address, 15 minutes) unless
a test lowers them; expiry is checked on real time with windows of a second or two.
"""

from __future__ import annotations

import base64
import logging
import time

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import caches
from django.test import Client, RequestFactory

from core import ratelimit
from tests.factories import SellerFactory, UserFactory
from tests.security.conftest import csrf_client, csrf_token

pytestmark = pytest.mark.django_db
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
PASSWORD = "pass-Word-123"  # tests.factories.UserFactory
LOCKED = "Too many failed sign-in attempts."


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    """Dozens of sign-ins per test: skip PBKDF2's deliberate slowness (set before users exist)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def sign_in(
    username: str, password: str, *, url: str = LOGIN, client: Client | None = None, **extra
):
    client = client or csrf_client()
    token = csrf_token(client, url)
    response = client.post(
        url,
        {"username": username, "password": password, "csrfmiddlewaretoken": token},
        **extra,
    )
    response.client_ = client
    return response


def signed_in(response) -> bool:
    return SESSION_KEY in response.client_.session


def fail(username: str, times: int, **extra) -> None:
    for _ in range(times):
        response = sign_in(username, "wrong-password", **extra)
        assert response.status_code == 200 and not signed_in(response)
        assert "Please enter a correct username and password" in response.content.decode()


def assert_locked(response) -> None:
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert "paused for up to 15 minutes" in response.content.decode()
    assert int(response["Retry-After"]) >= 15 * 60
    assert not signed_in(response)


# --- per username --------------------------------------------------------------------------------


def test_five_failures_lock_the_username_even_for_the_right_password():
    seller = SellerFactory()
    fail(seller.user.username, 5)
    assert_locked(sign_in(seller.user.username, PASSWORD))


def test_four_failures_do_not_lock_and_a_success_resets_the_count():
    seller = SellerFactory()
    fail(seller.user.username, 4)
    ok = sign_in(seller.user.username, PASSWORD)
    assert ok.status_code == 302 and signed_in(ok)
    fail(seller.user.username, 4)  # 8 failures in the window, but only 4 since the success
    assert signed_in(sign_in(seller.user.username, PASSWORD))


def test_the_lock_covers_every_case_variant_of_the_username():
    SellerFactory(user__username="alice")
    fail("ALICE", 3)
    fail("Alice", 2)
    assert_locked(sign_in("alice", PASSWORD))


def test_an_unknown_username_locks_the_same_way_so_nothing_is_enumerated():
    fail("nobody-here", 5)
    assert_locked(sign_in("nobody-here", "whatever"))


def test_the_lock_of_one_username_leaves_others_alone():
    victim, other = SellerFactory(), SellerFactory()
    fail(victim.user.username, 5)
    assert signed_in(sign_in(other.user.username, PASSWORD))


def test_refused_attempts_are_not_checked_or_counted(settings, django_assert_max_num_queries):
    """While locked, the password is not even looked at (no user query, no hashing)."""
    seller = SellerFactory()
    fail(seller.user.username, 5)
    client = csrf_client()
    token = csrf_token(client, LOGIN)
    with django_assert_max_num_queries(0):
        response = client.post(
            LOGIN, {"username": seller.user.username, "password": PASSWORD,
                    "csrfmiddlewaretoken": token},
        )  # fmt: skip
    assert response.status_code == 429
    key = ratelimit.counter_key("login_username", seller.user.username)
    assert caches["default"].get(key) == 5


def test_the_lock_ends_when_the_window_has_passed(settings):
    settings.RATE_LIMITS = settings.RATE_LIMITS | {"login_username": (2, 1)}
    seller = SellerFactory()
    fail(seller.user.username, 2)
    locked = sign_in(seller.user.username, PASSWORD)
    assert locked.status_code == 429 and not signed_in(locked)
    assert "paused for up to 1 second;" in locked.content.decode()
    time.sleep(1.3)
    assert signed_in(sign_in(seller.user.username, PASSWORD))


# --- per address ---------------------------------------------------------------------------------


def test_twenty_failures_from_one_address_lock_every_username_from_it():
    seller = SellerFactory()
    for n in range(5):
        fail(f"guess-{n}", 4, REMOTE_ADDR="203.0.113.7")  # 4 each: no username lock
    assert_locked(sign_in(seller.user.username, PASSWORD, REMOTE_ADDR="203.0.113.7"))
    # the same account from elsewhere is fine: the address is locked, not the seller
    assert signed_in(sign_in(seller.user.username, PASSWORD, REMOTE_ADDR="198.51.100.1"))


def test_a_success_does_not_reset_the_address_count():
    """An attacker with one valid account must not buy fresh guesses against the others."""
    own = SellerFactory()
    for n in range(4):
        fail(f"guess-{n}", 4, REMOTE_ADDR="203.0.113.8")
        assert signed_in(sign_in(own.user.username, PASSWORD, REMOTE_ADDR="203.0.113.8"))
    fail("guess-x", 4, REMOTE_ADDR="203.0.113.8")
    assert_locked(sign_in(own.user.username, PASSWORD, REMOTE_ADDR="203.0.113.8"))


def test_ipv6_clients_are_counted_per_64_network():
    for n in range(5):
        fail(f"guess-{n}", 4, REMOTE_ADDR=f"2001:db8:1:2::{n + 1:x}")
    seller = SellerFactory()
    assert_locked(sign_in(seller.user.username, PASSWORD, REMOTE_ADDR="2001:db8:1:2:ffff::1"))
    assert signed_in(sign_in(seller.user.username, PASSWORD, REMOTE_ADDR="2001:db8:1:3::1"))


def test_a_forged_x_forwarded_for_is_ignored_without_a_trusted_proxy():
    for n in range(5):
        fail(f"guess-{n}", 4, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    seller = SellerFactory()
    response = sign_in(
        seller.user.username, PASSWORD, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.9.9.9"
    )
    assert_locked(response)


def test_behind_a_trusted_proxy_clients_are_told_apart_and_cannot_forge_their_address(settings):
    settings.RATE_LIMIT_TRUSTED_PROXIES = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for n in range(5):
        # the client forges a left-hand entry; the proxy appends the real address
        forged = {"HTTP_X_FORWARDED_FOR": f"192.0.2.{n}, 203.0.113.10"}
        fail(f"guess-{n}", 4, **proxy, **forged)
    seller = SellerFactory()
    locked = sign_in(seller.user.username, PASSWORD, **proxy, HTTP_X_FORWARDED_FOR="203.0.113.10")
    assert_locked(locked)
    other = sign_in(seller.user.username, PASSWORD, **proxy, HTTP_X_FORWARDED_FOR="203.0.113.11")
    assert signed_in(other)


# --- admin sign-in shares the counters -----------------------------------------------------------


def test_admin_sign_in_is_locked_too_and_shares_the_username_count():
    staff = UserFactory(is_staff=True, is_superuser=True)
    for _ in range(3):
        response = sign_in(staff.username, "wrong", url=ADMIN_LOGIN)
        assert response.status_code == 200 and not signed_in(response)
    fail(staff.username, 2)  # 3 at /admin/ + 2 at /accounts/ = 5
    admin = sign_in(staff.username, PASSWORD, url=ADMIN_LOGIN)
    assert admin.status_code == 200 and LOCKED in admin.content.decode()
    assert not signed_in(admin)
    assert_locked(sign_in(staff.username, PASSWORD))


def test_a_seller_with_the_right_password_at_the_admin_is_refused_but_not_counted():
    seller = SellerFactory()
    for _ in range(6):
        response = sign_in(seller.user.username, PASSWORD, url=ADMIN_LOGIN)
        assert response.status_code == 200 and not signed_in(response)
    assert signed_in(sign_in(seller.user.username, PASSWORD))


# --- the counters themselves ---------------------------------------------------------------------


def test_reaching_the_limit_blocks_for_a_full_window_from_then():
    """A limit reached at the end of a window does not end with that window."""
    limit = ratelimit.Rate(2, 2)
    start = time.monotonic()
    ratelimit.hit("unit", "x", limit)
    time.sleep(1.0)
    reached = time.monotonic()
    assert ratelimit.hit("unit", "x", limit) == 2
    time.sleep(max(0.0, start + 2.4 - time.monotonic()))
    assert ratelimit.is_limited("unit", "x", limit)  # the first window is over, still blocked
    time.sleep(max(0.0, reached + 2.4 - time.monotonic()))
    assert not ratelimit.is_limited("unit", "x", limit)


def test_the_lockout_works_on_the_embedded_defaults_locmem_cache(settings):
    """Without REDIS_URL the cache is locmem (per process): the same code must hold there."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "ratelimit-locmem-test",
        }
    }
    assert caches["default"].__class__.__name__ == "LocMemCache"
    seller = SellerFactory()
    fail(seller.user.username, 5)
    assert_locked(sign_in(seller.user.username, PASSWORD))
    limit = ratelimit.Rate(2, 1)
    assert [ratelimit.hit("unit", "locmem", limit) for _ in range(2)] == [1, 2]
    assert ratelimit.is_limited("unit", "locmem", limit)
    time.sleep(1.2)
    assert not ratelimit.is_limited("unit", "locmem", limit)
    caches["default"].clear()


def test_counters_fail_open_when_the_cache_is_down(monkeypatch, caplog):
    class Down:
        def __getattr__(self, name):
            def broken(*args, **kwargs):
                raise ConnectionError("redis is restarting")

            return broken

    monkeypatch.setattr(ratelimit, "_cache", lambda: Down())
    limit = ratelimit.Rate(1, 60)
    with caplog.at_level(logging.WARNING, logger="core.ratelimit"):
        assert ratelimit.hit("unit", "y", limit) == 0
        assert not ratelimit.is_limited("unit", "y", limit)
        ratelimit.reset("unit", "y")
    assert "cache unavailable" in caplog.text
    seller = SellerFactory()
    assert signed_in(sign_in(seller.user.username, PASSWORD))  # sign-in still works


def test_client_ip_rules(settings):
    rf = RequestFactory()
    settings.RATE_LIMIT_TRUSTED_PROXIES = 0
    assert ratelimit.client_ip(rf.get("/", REMOTE_ADDR="198.51.100.4")) == "198.51.100.4"
    spoofed = rf.get("/", REMOTE_ADDR="198.51.100.4", HTTP_X_FORWARDED_FOR="1.1.1.1")
    assert ratelimit.client_ip(spoofed) == "198.51.100.4"
    assert ratelimit.client_ip(rf.get("/", REMOTE_ADDR="::ffff:198.51.100.4")) == "198.51.100.4"
    assert ratelimit.client_ip(rf.get("/", REMOTE_ADDR="2001:db8::1")) == "2001:db8::/64"
    settings.RATE_LIMIT_TRUSTED_PROXIES = 2
    chain = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 7.7.7.7, 10.0.0.1")
    assert ratelimit.client_ip(chain) == "7.7.7.7"
    short = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="7.7.7.7")
    assert ratelimit.client_ip(short) == "10.0.0.2"  # did not come through both proxies


def test_counter_keys_are_bounded_and_never_hold_the_username():
    key = ratelimit.counter_key("login_username", "ä" * 10_000 + " <x> ")
    assert len(key) < 80 and "ä" not in key and " " not in key


def test_the_limits_come_from_settings():
    assert ratelimit.rate("login_username") == ratelimit.Rate(5, 900)
    assert ratelimit.rate("login_ip") == ratelimit.Rate(20, 900)
    assert django_settings.RATE_LIMIT_TRUSTED_PROXIES == 0


# --- no side door: HTTP Basic auth anywhere would be an unlimited password oracle ----------------


def test_no_endpoint_checks_passwords_outside_the_rate_limited_sign_in(client):
    """DRF's default authentication includes HTTP Basic; a DRF view that relies on the defaults
    (the schema and docs views did) then answers a right and a wrong password differently, with
    no lockout. Every API URL must answer the same with either password as without one."""
    from tests.security.test_csrf import walk

    seller = SellerFactory()
    urls = ["/" + route for route, _view in walk() if route.startswith("api/") and "<" not in route]
    urls = [url for url in urls if "^" not in url]
    assert "/api/schema/" in urls and "/api/v1/changes/" in urls
    for url in urls:
        anonymous = client.get(url).status_code
        for password in (PASSWORD, "wrong-password"):
            token = base64.b64encode(f"{seller.user.username}:{password}".encode()).decode()
            response = client.get(url, HTTP_AUTHORIZATION=f"Basic {token}")
            assert response.status_code == anonymous, (url, password, response.status_code)
