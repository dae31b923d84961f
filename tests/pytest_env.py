"""Test environment, applied before Django reads its settings (loaded with ``-p``).

Tests run against real PostgreSQL and Redis. Every value can be overridden from the outside, e.g.
``DATABASE_URL=postgres://postgres@127.0.0.1:5432/studio_b REDIS_URL=redis://127.0.0.1:6379/3``
so two test runs on one machine do not share a database or a Redis db.
"""

import os
import tempfile

_DEFAULTS = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/studio",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789abcdefghijklmnopqrstuvwxyz",
    "DEBUG": "false",
    "STATIC_MANIFEST": "false",
    "SECURE_SSL_REDIRECT": "false",
    "SESSION_COOKIE_SECURE": "false",
    "CSRF_COOKIE_SECURE": "false",
    "RECONCILE_GRACE_SECONDS": "0",
    "LOG_LEVEL": "WARNING",
}
for key, value in _DEFAULTS.items():
    os.environ.setdefault(key, value)

# Worker subprocesses inherit these, so they must be set here, not in a fixture.
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="studio-test-media-"))
os.environ.setdefault("MODEL_ROOT", tempfile.mkdtemp(prefix="studio-test-models-"))
if os.environ["REDIS_URL"].rstrip("/").endswith("/0"):
    raise RuntimeError("Tests flush their Redis db; point REDIS_URL at a db other than 0.")
