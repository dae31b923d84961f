"""Local media files for staff only (admin previews: face references, QA side-by-side).

Every seller's photos and every library face live under MEDIA_ROOT, so nothing there is public:
sellers get their own files through seller-scoped views, the catalog through signed links, and
staff (curators, QA reviewers) through this view. Anyone else gets a 404, which reveals nothing.
With S3 storage this route is not installed: the admin links are signed S3 URLs.
"""

from __future__ import annotations

from django.http import Http404
from django.views.static import serve


def staff_media(request, path: str):
    if not (request.user.is_authenticated and request.user.is_active and request.user.is_staff):
        raise Http404("No such file.")
    # django.views.static.serve normalises the path and refuses anything outside document_root.
    from django.conf import settings

    return serve(request, path, document_root=settings.MEDIA_ROOT)
