"""Studio settings: one module, every value from the environment (django-environ).

With no environment at all you get the embedded default: SQLite, in-process job queues and local
media files. Production sets DATABASE_URL (PostgreSQL), REDIS_URL (RQ) and optionally S3.
Secrets may also come from files: ``SECRET_KEY_FILE=/run/secrets/...`` instead of ``SECRET_KEY``.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def secret(name: str, default: str | None = None) -> str | None:
    """Read a secret from NAME, or from the file named by NAME_FILE (Docker/K8s secrets)."""
    file_path = env.str(f"{name}_FILE", default="")
    if file_path:
        return Path(file_path).read_text().strip()
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=False)
_DEV_SECRET = "insecure-dev-key-only-for-local-runs-0123456789abcdefghijklmnopqrstuvwxyz"  # noqa: S105
SECRET_KEY = secret("SECRET_KEY", default=_DEV_SECRET if DEBUG else None)
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("Set SECRET_KEY (or SECRET_KEY_FILE) when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "django_rq",
    "seller",
    "generation",
    "facelibrary",
    "qa",
    "catalog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.DropMalformedSessionCookie",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions let the in-process worker thread and requests write side by
    # side without "database is locked" errors.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 20}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # libpq waits for a server that accepts TCP but never answers (hung host, packets dropped
    # in a failover) for as long as psycopg lets it (130 s), past gunicorn's worker timeout.
    # Fail the connect fast instead: the request errors cleanly and /healthz reports it.
    # A connect_timeout in DATABASE_URL's query string wins.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- queues ----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# rq: real Redis queues and worker processes. thread: in-process background thread (embedded
# default). sync: run right after commit in the caller (tests, scripts).
QUEUE_MODE = env.str("QUEUE_MODE", default="rq" if REDIS_URL else "thread")
QUEUE_NAMES = ("analysis", "gpu", "default")
RQ_QUEUES = {
    name: {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": timeout}
    for name, timeout in (("analysis", 600), ("gpu", 3600), ("default", 300))
}
RQ = {"COMMIT_MODE": "on_db_commit"}
# A shoot whose job is gone is retried this many times before it is marked failed.
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=3)
# Seconds without a worker heartbeat before its started jobs count as abandoned.
WORKER_DEAD_AFTER = env.int("WORKER_DEAD_AFTER", default=90)
# A shoot younger than this in analyzing/generating is left alone by the reconciler.
RECONCILE_GRACE_SECONDS = env.int("RECONCILE_GRACE_SECONDS", default=30)

# --- models ----------------------------------------------------------------------------------
MODEL_ROOT = Path(env.str("MODEL_ROOT", default=str(BASE_DIR / "var" / "models")))
INFERENCE_DEVICE = env.str("INFERENCE_DEVICE", default="cpu")
GENERATION_MODEL_SET = env.str("GENERATION_MODEL_SET", default="tiny-sd15")
VIDEO_MODEL_SET = env.str("VIDEO_MODEL_SET", default="tiny-svd")
COMMERCIAL_MODE = env.bool("COMMERCIAL_MODE", default=False)
# Shown with the time estimate on the face selection page (0: show time only).
GPU_COST_PER_HOUR = env.float("GPU_COST_PER_HOUR", default=0.0)
GPU_COST_CURRENCY = env.str("GPU_COST_CURRENCY", default="USD")
# Defaults for every generation job; a run's own settings override them key by key.
GENERATION_DEFAULTS = {
    "steps": env.int("GENERATION_STEPS", default=25),
    "guidance_scale": env.float("GENERATION_GUIDANCE", default=7.0),
    "max_side": env.int("GENERATION_MAX_SIDE", default=768),
    "video": env.bool("GENERATION_VIDEO", default=True),
    "video_model_set": VIDEO_MODEL_SET,
    "video_frames": env.int("VIDEO_FRAMES", default=14),
    "video_fps": env.int("VIDEO_FPS", default=7),
    "video_steps": env.int("VIDEO_STEPS", default=25),
    "video_max_side": env.int("VIDEO_MAX_SIDE", default=1024),
}
SAMPLES_DIR = Path(
    env.str("STUDIO_SAMPLES_DIR", default=str(BASE_DIR.parent / "shared" / "samples"))
)

# --- files -----------------------------------------------------------------------------------
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
# whitenoise warns on every start when the collectstatic folder is missing (tests, ./dev run).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
_media_backend = (
    {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "querystring_auth": True,  # private bucket, signed URLs
            "querystring_expire": env.int("AWS_QUERYSTRING_EXPIRE", default=3600),
            "file_overwrite": False,
            "default_acl": None,
        },
    }
    if AWS_STORAGE_BUCKET_NAME
    else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
)
STORAGES = {
    "default": _media_backend,
    "staticfiles": {
        # The manifest (hashed names, far-future caching) needs collectstatic; local runs and
        # tests serve straight from the finders instead.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env.bool("STATIC_MANIFEST", default=not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not env.bool("STATIC_MANIFEST", default=not DEBUG)
# Uploads: the view checks each file; Django refuses bodies over this before we see them.
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=25 * 1024 * 1024)
UPLOAD_MAX_PIXELS = env.int("UPLOAD_MAX_PIXELS", default=40_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- auth & security -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "seller:dashboard"
LOGOUT_REDIRECT_URL = "login"
SIGNUP_ENABLED = env.bool("SIGNUP_ENABLED", default=False)
# Sessions are read on every page: keep them in the cache, backed by the database.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- rate limits (core/ratelimit.py) -------------------------------------------------------
# name -> (limit, window in seconds), counted in the default cache (Redis in production). Reaching
# a limit blocks for one full window from then on. Behind a reverse proxy, set
# RATE_LIMIT_TRUSTED_PROXIES to the number of proxies that append to X-Forwarded-For, or every
# client shares the proxy's address (and its sign-in failure budget).
_LOGIN_WINDOW = env.int("LOGIN_LOCKOUT_SECONDS", default=15 * 60)
RATE_LIMITS = {
    # failed sign-ins (seller and admin sign-in alike) per username, and per client address
    "login_username": (env.int("LOGIN_FAILURES_PER_USERNAME", default=5), _LOGIN_WINDOW),
    "login_ip": (env.int("LOGIN_FAILURES_PER_IP", default=20), _LOGIN_WINDOW),
    # per seller: shoots created, and new-shoot POSTs of any outcome (each decodes up to 8 photos)
    "shoot_create": (env.int("SHOOTS_PER_HOUR", default=30), 3600),
    "shoot_upload": (env.int("SHOOT_UPLOADS_PER_HOUR", default=120), 3600),
}
RATE_LIMIT_TRUSTED_PROXIES = env.int("RATE_LIMIT_TRUSTED_PROXIES", default=0)

# --- caches ----------------------------------------------------------------------------------
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Not DRF's default (session + HTTP Basic): Basic auth on a view that relies on the default
    # (the schema and docs views) checks passwords with no lockout, beside the rate-limited
    # sign-in. The catalog views name their own (bearer token, staff session).
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    # catalog API (catalog.auth): per-client fixed windows, per-address for signed file links
    "DEFAULT_THROTTLE_RATES": {
        "catalog_client": env.str("CATALOG_API_RATE", default="6000/m"),
        "catalog_files": env.str("CATALOG_FILES_RATE", default="600/m"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Studio catalog API",
    "DESCRIPTION": "Approved model photos and videos for the marketplace catalog.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # staff browsing with their admin session is a convenience, not part of the client contract
    "AUTHENTICATION_WHITELIST": ["catalog.auth.ClientTokenAuthentication"],
}
# --- webhooks (catalog.webhooks) -------------------------------------------------------------
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)
WEBHOOK_BACKOFF_BASE = env.float("WEBHOOK_BACKOFF_BASE", default=30.0)  # seconds, doubles
WEBHOOK_BACKOFF_MAX = env.float("WEBHOOK_BACKOFF_MAX", default=6 * 3600.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=15)  # ~3 days, then "failed"
WEBHOOK_LEASE_SECONDS = env.int("WEBHOOK_LEASE_SECONDS", default=120)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
