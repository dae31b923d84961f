from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from config.health import healthz
from core.ratelimit import RateLimitedAdminAuthenticationForm, RateLimitedLoginView
from seller.views import signup

# Sign-in lockout (core/ratelimit.py): the admin sign-in shares the seller sign-in's
# per-username and per-address failure counters, so /admin/login/ is no side door.
admin.site.login_form = RateLimitedAdminAuthenticationForm

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("catalog.urls")),
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", signup, name="signup"),
    path("", include("seller.urls")),
]

if not settings.AWS_STORAGE_BUCKET_NAME:
    # Local storage: staff-only previews for the admin (config/media.py); a 404 for anyone else.
    import re

    from config.media import staff_media

    urlpatterns += [
        re_path(rf"^{re.escape(settings.MEDIA_URL.lstrip('/'))}(?P<path>.*)$", staff_media),
    ]
