"""Fixtures for the security tests: signed-in sellers, CSRF-enforcing clients, rate-limit counters
cleared between tests, and the set of files under MEDIA_ROOT."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.test import Client

from core.ratelimit import KEY_PREFIX
from seller.models import Seller
from tests.factories import SellerFactory


def clear_rate_limits() -> None:
    """Delete every rate-limit counter (only those: the cache may hold other tests' data).

    The tests run with REDIS_URL set, so the cache is Redis and counters outlive a test (and a
    test run: sellers get the same primary keys again in a fresh test database).
    """
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        client = cache._cache.get_client(None, write=True)
        keys = list(client.scan_iter(match=cache.make_key(f"{KEY_PREFIX}:*")))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    clear_rate_limits()
    yield
    clear_rate_limits()


@pytest.fixture
def seller(db) -> Seller:
    return SellerFactory()


def csrf_client(user=None) -> Client:
    """A client that enforces CSRF like a browser; ``post_form`` sends the token like a form."""
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


def csrf_token(client: Client, url: str) -> str:
    """The token a form on ``url`` would carry (GET the page, read the cookie)."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return client.cookies[settings.CSRF_COOKIE_NAME].value


@pytest.fixture
def seller_client(seller) -> Client:
    return csrf_client(seller.user)


def media_files() -> set[str]:
    """Every file under MEDIA_ROOT, as paths relative to it."""
    root = Path(settings.MEDIA_ROOT)
    found = set()
    for folder, _dirs, files in os.walk(root):
        for name in files:
            found.add(str((Path(folder) / name).relative_to(root)))
    return found


@pytest.fixture
def new_media() -> Callable[[], set[str]]:
    """Call it to get the files written under MEDIA_ROOT since the test started."""
    before = media_files()
    return lambda: media_files() - before
