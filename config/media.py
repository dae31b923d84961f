"""Local media files for staff, by role (admin previews: face thumbnails, consent documents).

Every seller's photos, every library face and every signed consent live under MEDIA_ROOT, so
nothing there is public: sellers get their own files through seller-scoped views, the catalog
through signed links, and staff through this view, **only the kinds of file their role works
with** (``MEDIA_ACCESS``): a staff account with no permissions gets nothing, a QA reviewer no
consent document. The kind of a file is its folder, the ``upload_to`` of its field (or the
folder ``core.files.store`` is given), so the table lists every one of them; a folder not in it
is served to superusers only. Anyone else gets a 404, which reveals nothing.
With S3 storage this route is not installed: the admin links are signed S3 URLs.
"""

from __future__ import annotations

import posixpath

from django.conf import settings
from django.http import Http404
from django.views.static import serve

#: who may look at the QA review page (qa/admin.py serves its own previews, see MEDIA_ACCESS)
QA_PAGES = ("qa.view_qareview",)
#: the face library's face and reference pages (facelibrary/admin.py thumbnails)
FACE_PAGES = ("facelibrary.view_face", "facelibrary.view_facereference")

#: folder under MEDIA_ROOT -> the permissions, any one of which lets a staff user fetch a file
#: there (core/roles.py gives them to the face_curators and qa_reviewers groups). Superusers
#: get every file; any other folder is a 404.
MEDIA_ACCESS: dict[str, tuple[str, ...]] = {
    # Consent.document (facelibrary.models.consent_document_path): signed releases, personal
    # data. The consent and face pages link them: face curators only.
    "facelibrary/consents/": ("facelibrary.view_consent",),
    # FaceReference.image / .thumbnail: curators (face pages); QA compares faces.
    "facelibrary/references/": (*FACE_PAGES, *QA_PAGES),
    "facelibrary/thumbnails/": (*FACE_PAGES, *QA_PAGES),
    # Asset.file / .poster (upload_to "assets/"): generated results, for QA.
    "assets/": QA_PAGES,
    # ShootPhoto.image (working copy, metadata stripped) for QA, and for whoever may see the
    # shoot admin's photo inline, which links it.
    "photos/": (*QA_PAGES, "seller.view_shootphoto"),
    # ShootPhoto.original: the seller's file byte for byte (EXIF, GPS). QA works on the working
    # copy, so only the shoot admin's photo inline (which links it) gets it.
    "originals/": ("seller.view_shootphoto",),
    # MaskVersion.mask / .feathered; PhotoAnalysis.pose_image / .person_mask: for QA.
    "masks/": QA_PAGES,
    "analysis/": QA_PAGES,
}


def may_see(user, path: str) -> bool:
    """Whether ``user`` may fetch the file at ``path`` (already normalised, relative)."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    for folder, permissions in MEDIA_ACCESS.items():
        if path.startswith(folder):
            return any(user.has_perm(permission) for permission in permissions)
    return False


def staff_media(request, path: str):
    # The same normalisation as django.views.static.serve, first: "assets/../facelibrary/
    # consents/x.pdf" is a consent document, whatever folder it starts with.
    path = posixpath.normpath(path).lstrip("/")
    if path.startswith("..") or not may_see(request.user, path):
        raise Http404("No such file.")
    # serve() normalises again and refuses anything outside document_root.
    return serve(request, path, document_root=settings.MEDIA_ROOT)
