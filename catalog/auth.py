"""Who is calling the catalog API, what they may do, and how often.

A catalog client authenticates with ``Authorization: Bearer <token>``. The token's SHA-256 is
looked up (the token itself is never stored); a revoked token or an inactive client is refused.
The authenticated "user" is a ``Principal``: the client, its token's scopes and which sellers it
may see. Staff with ``catalog.view_catalogclient`` can also browse the API in the browser with
their admin session (read-only, every seller).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from .models import CatalogClient, ClientToken, Scope

TOKEN_PREFIX = "stc_"  # noqa: S105 - a public prefix that makes leaked tokens greppable
#: last_used_at is refreshed at most this often per token (not one UPDATE per request)
TOUCH_EVERY = timedelta(minutes=5)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """The caller of the catalog API (what ``request.user`` is inside the API)."""

    key: str
    name: str
    scopes: frozenset[str]
    all_sellers: bool
    client_id: int | None = None
    token_id: int | None = None

    is_authenticated = True
    is_anonymous = False

    @property
    def pk(self) -> str:
        return self.key

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass(frozen=True)
class ActiveToken:
    """What authentication needs of a token (``request.auth`` in the API)."""

    token_id: int
    scopes: tuple[str, ...]
    last_used_at: datetime | None
    client_id: int
    client_name: str
    all_sellers: bool


_LOOKUP_SQL = (
    "SELECT t.id, t.scopes, t.last_used_at, c.id, c.name, c.all_sellers "
    "FROM {token} t JOIN {client} c ON c.id = t.client_id "
    "WHERE t.key_hash = %s AND t.revoked_at IS NULL AND c.is_active"
)


def active_token(key_hash: str) -> ActiveToken | None:
    """The unrevoked token with this hash whose client is active.

    One hand-written query: it runs on every API request, and building the equivalent ORM
    query (select_related + only) cost more CPU than running it. The WHERE clause is the whole
    security decision; tests/catalog/test_api.py covers revoked tokens and inactive clients.
    Table names come from the models, never from input.
    """
    sql = _LOOKUP_SQL.format(token=ClientToken._meta.db_table, client=CatalogClient._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    # PostgreSQL hands Django's jsonb back as text; SQLite as text too
    scopes = json.loads(row[1]) if isinstance(row[1], str) else row[1]
    return ActiveToken(
        row[0], tuple(scopes or ()), db_datetime(row[2]), row[3], row[4], bool(row[5])
    )


def db_datetime(value) -> datetime | None:
    """A raw-SQL datetime as an aware datetime (SQLite hands back naive text, PostgreSQL an
    aware datetime)."""
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    if isinstance(value, str):
        value = parse_datetime(value)
    return timezone.make_aware(value, UTC) if timezone.is_naive(value) else value


class ClientTokenAuthentication(BaseAuthentication):
    keyword = "bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in (b"bearer", b"token"):
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        found = active_token(hash_token(raw))
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        self._touch(found)
        principal = Principal(
            key=f"client:{found.client_id}",
            name=found.client_name,
            scopes=frozenset(found.scopes),
            all_sellers=found.all_sellers,
            client_id=found.client_id,
            token_id=found.token_id,
        )
        return principal, found

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="catalog"'

    @staticmethod
    def _touch(token: ActiveToken) -> None:
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            ClientToken.objects.filter(pk=token.token_id).update(last_used_at=now)


class StaffSessionAuthentication(SessionAuthentication):
    """Admin staff browsing the API in a browser: read-only, every seller."""

    def authenticate(self, request):
        # Only a well-formed session key is worth a database lookup; a forged cookie (even one
        # with a NUL byte, which PostgreSQL refuses in a query) is simply not a session.
        key = request._request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
        if not key or not key.isalnum() or not key.isascii() or len(key) > 64:
            return None
        user = getattr(request._request, "user", None)
        if user is None or not user.is_active or not user.is_staff:
            return None
        if not user.has_perm("catalog.view_catalogclient"):
            return None
        self.enforce_csrf(request)
        principal = Principal(
            key=f"staff:{user.pk}",
            name=user.get_username(),
            scopes=frozenset({Scope.READ}),
            all_sellers=True,
        )
        return principal, None


class HasScope(BasePermission):
    """The view's ``required_scope`` (or ``required_scopes[action]``) must be on the token."""

    message = "This token lacks the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if not isinstance(principal, Principal):
            return False
        scopes = getattr(view, "required_scopes", {})
        needed = scopes.get(getattr(view, "action", None), getattr(view, "required_scope", None))
        return needed is None or principal.has_scope(needed)


_redis_clients: dict[int, object] = {}


def _redis_client(backend: RedisCache, key: str):
    """A redis client for the backend's write pool, made once per process.

    Django's get_client() builds a new redis.Redis object (about 50 attributes) on every call;
    the client is thread-safe and only wraps the shared connection pool.
    """
    pool_index = backend._cache._get_connection_pool_index(write=True)
    client = _redis_clients.get(pool_index)
    if client is None:
        client = _redis_clients[pool_index] = backend._cache.get_client(key, write=True)
    return client


def count_in_window(key: str, timeout: int) -> int:
    """Increment and return the counter ``key`` (expiring after ``timeout`` seconds).

    On Redis this is a single INCR per request (plus an EXPIRE for the first request of a
    window), not the three round trips of cache.add() + cache.incr() (incr checks EXISTS
    first): it runs on every API request. Keys carry the window number, so a counter that
    missed its EXPIRE (process killed between the two) is never read again.
    """
    backend = caches["default"]  # the backend itself, not django.core.cache.cache's proxy
    if isinstance(backend, RedisCache):
        full_key = backend.make_and_validate_key(key)
        client = _redis_client(backend, full_key)
        count = int(client.incr(full_key))
        if count == 1:
            client.expire(full_key, timeout)
        return count
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: start the window again
        cache.set(key, 1, timeout=timeout)
        return 1


class FixedWindowThrottle(BaseThrottle):
    """Requests per window, counted with one atomic cache INCR (O(1) per request).

    DRF's SimpleRateThrottle keeps a list of every request time in the window and rewrites it
    on each request: at catalog-sync rates (thousands a minute) that list is the bottleneck.
    """

    scope = ""

    def __init__(self) -> None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        self.num_requests, self.duration = self.parse_rate(rate)
        self.wait_seconds: float | None = None

    @staticmethod
    def parse_rate(rate: str | None) -> tuple[int | None, int]:
        if not rate:
            return None, 1
        count, period = rate.split("/")
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]
        return int(count), seconds

    def get_ident_key(self, request, view) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        if self.num_requests is None:
            return True
        ident = self.get_ident_key(request, view)
        if ident is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        count = count_in_window(f"throttle:{self.scope}:{ident}:{window}", self.duration + 1)
        if count > self.num_requests:
            self.wait_seconds = (window + 1) * self.duration - now
            return False
        return True

    def wait(self) -> float | None:
        return self.wait_seconds


class ClientRateThrottle(FixedWindowThrottle):
    scope = "catalog_client"

    def get_ident_key(self, request, view) -> str | None:
        principal = request.user
        return principal.pk if isinstance(principal, Principal) else None


class FileRateThrottle(FixedWindowThrottle):
    """Signed file links need no token; limit them per client address."""

    scope = "catalog_files"

    def get_ident_key(self, request, view) -> str | None:
        return self.get_ident(request)
