"""Rate limits on Django's cache: sign-in lockout and per-seller upload limits.

Every limit is a fixed-window counter in the default cache (``settings.RATE_LIMITS``: name ->
(limit, window seconds)). In production the cache is Redis, so all web processes share the
counters and ``INCR`` keeps them exact under concurrency; the embedded default's locmem cache
counts per process (good enough for one ``./dev run`` process, not for a multi-worker deploy).

Reaching a limit blocks for one full window *from that moment* (the counter's expiry is renewed
when it reaches the limit), so an attacker cannot spend a window's allowance at its very end and
the next one right after. Refused requests are not counted, so a block always ends.

If the cache is unreachable the limits fail open (logged): a Redis restart must not stop every
seller from signing in, and sessions already survive it the same way (``cached_db``).

Sign-in (``RateLimitedLoginView`` / ``RateLimitedAuthenticationForm``, and the admin's
``RateLimitedAdminAuthenticationForm``; both share the counters):
- ``login_username``: failed sign-ins per username (case-insensitive), e.g. 5 per 15 minutes;
- ``login_ip``: failed sign-ins per client address (IPv6: per /64), e.g. 20 per 15 minutes.
While either is reached every attempt is refused with the same message, before the password is
checked (so even the right password), and the seller page answers HTTP 429. A successful sign-in
clears the username's counter but not the address's (one valid account must not buy an attacker
fresh guesses against the others).

New shoots (``limit_shoot_uploads``, per seller):
- ``shoot_create``: shoots actually created, e.g. 30 per hour;
- ``shoot_upload``: new-shoot POSTs of any outcome, e.g. 120 per hour. Each POST may decode up
  to 8 photos of 40 megapixels, so refused uploads cost CPU too and are capped separately.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache as memoize
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.forms.forms import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.views.decorators.debug import sensitive_variables

logger = logging.getLogger(__name__)

#: the prefix of every counter key (tests and operators can find them with it)
KEY_PREFIX = "ratelimit"


# --- counters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    limit: int
    window: int  # seconds

    @property
    def window_text(self) -> str:
        return duration_text(self.window)


def rate(name: str) -> Rate:
    limit, window = settings.RATE_LIMITS[name]
    return Rate(int(limit), int(window))


def duration_text(seconds: int) -> str:
    """A window for messages: "hour", "15 minutes", "2 hours" ("per hour", "for 15 minutes")."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return "1 second" if seconds == 1 else f"{seconds} seconds"


def counter_key(scope: str, ident: str) -> str:
    # Hashed: usernames are attacker-chosen (length, spaces, unicode) and must not become raw
    # cache keys; the digest also keeps them out of Redis in clear text.
    digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{KEY_PREFIX}:{scope}:{digest}"


def _cache():
    return caches["default"]


def count(scope: str, ident: str) -> int:
    try:
        return int(_cache().get(counter_key(scope, ident)) or 0)
    except Exception:
        logger.warning("rate limit %s: cache unavailable, not limiting", scope, exc_info=True)
        return 0


def is_limited(scope: str, ident: str, limit: Rate) -> bool:
    return count(scope, ident) >= limit.limit


def hit(scope: str, ident: str, limit: Rate) -> int:
    """Count one event and return the new count (0 when the cache is unavailable)."""
    cache = _cache()
    key = counter_key(scope, ident)
    try:
        if cache.add(key, 1, limit.window):
            value = 1
        else:
            try:
                value = cache.incr(key)
            except ValueError:  # it expired between add() and incr(): a new window starts
                cache.add(key, 1, limit.window)
                value = 1
        if value == limit.limit:
            # The block lasts one full window from the event that reached the limit.
            cache.touch(key, limit.window)
        return value
    except Exception:
        logger.warning("rate limit %s: cache unavailable, not counting", scope, exc_info=True)
        return 0


def reset(scope: str, ident: str) -> None:
    try:
        _cache().delete(counter_key(scope, ident))
    except Exception:
        logger.warning("rate limit %s: cache unavailable, not reset", scope, exc_info=True)


def client_ip(request: HttpRequest) -> str:
    """The client's address as the rate limits see it.

    Behind a reverse proxy REMOTE_ADDR is the proxy, which would put every client in one
    bucket. ``RATE_LIMIT_TRUSTED_PROXIES`` (N) says how many proxies append to X-Forwarded-For;
    the Nth entry from the right is the address our outermost proxy saw. Entries further left
    are client-supplied and never trusted. IPv6 clients are grouped per /64 (one customer's
    allocation), or they could rotate addresses for free.
    """
    address = request.META.get("REMOTE_ADDR", "")
    proxies = int(getattr(settings, "RATE_LIMIT_TRUSTED_PROXIES", 0))
    if proxies > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


# --- sign-in lockout -----------------------------------------------------------------------------

LOCKED_CODE = "locked"


def locked_message(limit: Rate) -> str:
    return (
        "Too many failed sign-in attempts. For your security, signing in is paused for up to "
        f"{limit.window_text}; please try again later."
    )


class LoginThrottleMixin:
    """Refuses sign-in while the username or the client address has too many failures.

    Mixed into an ``AuthenticationForm``: the check runs in ``clean()`` before the password is
    checked, failures are counted only when the credentials were wrong (not when the right
    password belongs to an account that may not sign in here, e.g. a seller at /admin/).
    """

    request: HttpRequest | None
    cleaned_data: dict[str, Any]
    user_cache: Any

    def _throttles(self, username: str) -> list[tuple[str, str, Rate]]:
        # casefold: on a case-insensitive user lookup "ALICE" must not get fresh guesses
        throttles = [("login_username", username.casefold(), rate("login_username"))]
        if self.request is not None:
            throttles.append(("login_ip", client_ip(self.request), rate("login_ip")))
        return throttles

    @sensitive_variables("password")
    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return super().clean()  # Django's own "required" errors; nothing was tried
        throttles = self._throttles(username)
        for scope, ident, limit in throttles:
            if is_limited(scope, ident, limit):
                logger.warning("sign-in refused: %s limit reached", scope)
                raise ValidationError(locked_message(limit), code=LOCKED_CODE)
        try:
            cleaned = super().clean()
        except ValidationError:
            if self.user_cache is None:  # wrong username or password
                for scope, ident, limit in throttles:
                    hit(scope, ident, limit)
            else:  # right password, account refused (inactive, not staff): knows the password
                reset("login_username", username.casefold())
            raise
        reset("login_username", username.casefold())
        return cleaned


class RateLimitedAuthenticationForm(LoginThrottleMixin, AuthenticationForm):
    """The seller sign-in form (/accounts/login/)."""


class RateLimitedAdminAuthenticationForm(LoginThrottleMixin, AdminAuthenticationForm):
    """The admin sign-in form (/admin/login/): same accounts, same counters."""


class RateLimitedLoginView(LoginView):
    """Django's LoginView with the lockout; a locked-out attempt answers HTTP 429."""

    authentication_form = RateLimitedAuthenticationForm

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, code=LOCKED_CODE):
            response.status_code = 429
            response["Retry-After"] = str(
                max(rate("login_username").window, rate("login_ip").window)
            )
        return response


# --- per-seller upload limits --------------------------------------------------------------------

_TOO_MANY_PAGE = """{% extends "base.html" %}
{% block title %}Please slow down · Studio{% endblock %}
{% block content %}
<div class="page-head"><h1>Please slow down</h1></div>
<p class="message message--error" role="alert">{{ message }}</p>
<p><a class="btn" href="{{ back }}">Back</a></p>
{% endblock %}"""


@memoize
def _too_many_template():
    return engines["django"].from_string(_TOO_MANY_PAGE)


def too_many_requests(request: HttpRequest, message: str, limit: Rate) -> HttpResponse:
    """HTTP 429 with ``message`` for a person.

    The site's htmx config does not swap 4xx responses other than 422 into the page, so for an
    htmx request the message goes into the session and HX-Redirect reloads the page, where the
    message is shown; htmx follows HX-Redirect whatever the status.
    """
    if getattr(request, "htmx", False):
        messages.error(request, message)
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
        response["HX-Redirect"] = request.get_full_path()
    else:
        context = {"message": message, "back": request.get_full_path()}
        response = HttpResponse(_too_many_template().render(context, request), status=429)
    response["Retry-After"] = str(limit.window)
    return response


def _upload_owner(request: HttpRequest) -> str:
    seller = getattr(request, "seller", None)
    return f"seller:{seller.pk}" if seller is not None else f"user:{request.user.pk}"


def limit_shoot_uploads(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Per-seller limits on the new-shoot POST (``shoot_create`` and ``shoot_upload``).

    Goes inside ``seller_required`` so only signed-in sellers reach it. Every POST counts
    against ``shoot_upload`` before the view runs; a shoot counts against ``shoot_create`` when
    the view answered below 400 (it redirects after creating one, and answers 422 when it
    created nothing). GET requests are never limited.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        owner = _upload_owner(request)
        created, posted = rate("shoot_create"), rate("shoot_upload")
        if is_limited("shoot_create", owner, created):
            return too_many_requests(
                request,
                f"You have reached the limit of {created.limit} new shoots per "
                f"{created.window_text}. Please try again later.",
                created,
            )
        if is_limited("shoot_upload", owner, posted):
            return too_many_requests(
                request,
                f"Too many uploads in a short time (at most {posted.limit} per "
                f"{posted.window_text}). Please try again later.",
                posted,
            )
        hit("shoot_upload", owner, posted)
        response = view(request, *args, **kwargs)
        if response.status_code < 400:
            hit("shoot_create", owner, created)
        return response

    return wrapper
