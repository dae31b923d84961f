from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from config.health import healthz
from config.ratelimit import RateLimitedAdminAuthenticationForm, RateLimitedLoginView
from seller.views import signup

# Sign-in lockout (config/ratelimit.py): the admin sign-in shares the seller sign-in's
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

if settings.DEBUG:
    # Development only, and staff only: admin pages (e.g. face thumbnails) link to MEDIA_URL,
    # but every seller's photos and every face live there, so a signed-out visitor or a seller
    # must not browse it. Sellers always get files through seller-scoped views; with DEBUG off
    # nothing under /media/ is served at all (docs/security.md, "Media exposure").
    import re

    from django.contrib.admin.views.decorators import staff_member_required
    from django.views.static import serve

    urlpatterns += [
        re_path(
            rf"^{re.escape(settings.MEDIA_URL.lstrip('/'))}(?P<path>.*)$",
            staff_member_required(serve),
            {"document_root": settings.MEDIA_ROOT},
        )
    ]
