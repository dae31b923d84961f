"""Secure headers and cookies as production really configures them, and secrets only from the
environment.

The production values are read from config/settings.py in a subprocess with a production
environment (DEBUG off, no overrides), then applied to this process, so the responses below are
what production sends, not what a test assumes. tests/test_settings.py already runs
``check --deploy`` and checks that production refuses to start without SECRET_KEY.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from functools import cache

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from tests.conftest import REPO
from tests.factories import SellerFactory

pytestmark = pytest.mark.django_db
PRODUCTION_ENV = {
    "ALLOWED_HOSTS": "studio.example.com,testserver",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "REDIS_URL": "redis://127.0.0.1:6379/3",
}
SECURITY_SETTINGS = [
    "DEBUG",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT",
    "SECURE_REDIRECT_EXEMPT",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "X_FRAME_OPTIONS",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_SAMESITE",
]
_DUMP = """
import json, django
django.setup()
from django.conf import settings
names = json.loads(input())
print(json.dumps({n: getattr(settings, n) for n in names}, default=str))
"""


def production_settings(names: list[str], **env: str) -> dict:
    clean = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **PRODUCTION_ENV,
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", _DUMP],
        input=json.dumps(names),
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@cache
def production_security() -> dict:
    return production_settings(SECURITY_SETTINGS, SECRET_KEY=secrets.token_urlsafe(50))


@pytest.fixture
def production():
    values = production_security()
    assert values["DEBUG"] is False
    with override_settings(**values):
        yield values


def test_production_turns_every_protection_on():
    values = production_security()
    assert values["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and values["SECURE_HSTS_PRELOAD"]
    assert values["SECURE_SSL_REDIRECT"] and values["SECURE_CONTENT_TYPE_NOSNIFF"]
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SESSION_COOKIE_HTTPONLY"]
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["SECURE_REFERRER_POLICY"] == "same-origin"
    assert values["SESSION_COOKIE_SAMESITE"] == values["CSRF_COOKIE_SAMESITE"] == "Lax"


def assert_secure_headers(response) -> None:
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_pages_carry_the_security_headers(production):
    client = Client()  # built inside the override: middleware reads settings when it loads
    assert_secure_headers(client.get(reverse("login"), secure=True))


def sign_in_over_https(client: Client, username: str, **headers):
    response = client.get(reverse("login"), secure=True)
    assert response.status_code == 200
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    data = {"username": username, "password": "pass-Word-123", "csrfmiddlewaretoken": token}
    return client.post(reverse("login"), data, secure=True, **headers)


def test_signing_in_sets_secure_httponly_samesite_cookies(production, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    seller = SellerFactory()
    client = Client(enforce_csrf_checks=True)
    response = sign_in_over_https(client, seller.user.username, HTTP_ORIGIN="https://testserver")
    assert response.status_code == 302
    assert_secure_headers(response)
    session = response.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    csrf = client.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["secure"] and csrf["samesite"] == "Lax"


def test_over_https_a_post_from_another_origin_is_refused_even_with_a_token(production):
    """Django checks Origin (or Referer) on secure requests: a stolen token is not enough."""
    seller = SellerFactory()
    for headers in (
        {"HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_REFERER": "https://evil.example/form"},
        {},  # neither header: refused too on HTTPS
    ):
        client = Client(enforce_csrf_checks=True)
        response = sign_in_over_https(client, seller.user.username, **headers)
        assert response.status_code == 403, headers


def test_plain_http_is_redirected_to_https_except_the_health_check(production):
    client = Client()
    response = client.get(reverse("login"))
    assert response.status_code == 301
    assert response["Location"] == "https://testserver" + reverse("login")
    assert client.get("/healthz").status_code in (200, 503)  # load balancers probe over http


def test_the_proxy_header_marks_a_request_as_https(production):
    """Behind the TLS-terminating proxy: X-Forwarded-Proto: https is trusted (no redirect loop)."""
    response = Client().get(reverse("login"), HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert "Strict-Transport-Security" in response


def test_seller_files_carry_the_headers_too(production, settings):
    from tests.seller.test_pages_builders import analysed_shoot

    seller = SellerFactory()
    shoot = analysed_shoot(seller)
    photo = shoot.photos.get()
    client = Client()
    client.force_login(seller.user)
    response = client.get(
        reverse("seller:photo_file", args=[shoot.pk, photo.pk, "image"]), secure=True
    )
    assert response.status_code == 200
    assert_secure_headers(response)
    assert response["Cache-Control"].startswith("private")
    b"".join(response.streaming_content)


def test_private_s3_media_is_served_through_short_lived_signed_urls():
    storages = production_settings(
        ["STORAGES"], SECRET_KEY=secrets.token_urlsafe(50), AWS_STORAGE_BUCKET_NAME="studio-media"
    )["STORAGES"]
    options = storages["default"]["OPTIONS"]
    assert storages["default"]["BACKEND"] == "storages.backends.s3.S3Storage"
    assert options["querystring_auth"] is True  # every URL is signed
    assert options["default_acl"] is None  # objects inherit the private bucket policy
    assert 0 < options["querystring_expire"] <= 3600
    assert options["file_overwrite"] is False


# --- secrets -------------------------------------------------------------------------------------


def test_production_uses_exactly_the_secret_key_it_is_given():
    key = secrets.token_urlsafe(50)
    assert production_settings(["SECRET_KEY"], SECRET_KEY=key)["SECRET_KEY"] == key


def test_the_dev_key_is_never_the_running_key_here():
    assert "insecure" not in settings.SECRET_KEY


def test_the_dotenv_file_settings_read_is_never_committed():
    result = subprocess.run(
        ["git", "check-ignore", "-q", ".env"], cwd=REPO, capture_output=True, check=False
    )
    assert result.returncode == 0, ".env must be listed in .gitignore"


SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN (RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "password in a database or cache URL": re.compile(
        r"\b(postgres(ql)?|redis|rediss|mysql|amqp)://[^\s:/@\"']+:[^\s@\"']+@"
    ),
    "GitHub / Slack / Stripe token": re.compile(
        r"\b(ghp_[A-Za-z0-9]{36}|xox[baprs]-[A-Za-z0-9-]{10,}|sk_live_[A-Za-z0-9]{16,})"
    ),
    "catalog API token": re.compile(r"\bstc_[A-Za-z0-9_-]{40,}"),
    "hard-coded SECRET_KEY": re.compile(r"""^\s*SECRET_KEY\s*=\s*["']""", re.MULTILINE),
}


def repository_text_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    skip = (".png", ".jpg", ".jpeg", ".webp", ".mp4", ".ico", ".woff", ".woff2", ".min.js")
    return [name for name in listed if not name.endswith(skip) and (REPO / name).is_file()]


def test_no_secret_is_hard_coded_in_the_repository():
    """Production secrets come from the environment (or *_FILE); none lives in the code, the
    docs or the test data. The dev key in settings is only used with DEBUG on."""
    files = repository_text_files()
    assert "config/settings.py" in files
    found = []
    for name in files:
        try:
            text = (REPO / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for label, pattern in SECRET_PATTERNS.items():
            found += [f"{name}: {label}: {m.group(0)[:40]}" for m in pattern.finditer(text)]
    assert found == []
