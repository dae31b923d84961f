"""Absolute, expiring links to asset files.

On S3 the storage itself signs (``querystring_auth``). On local disk, media are not served in
production, so we hand out ``/api/v1/files/<signed token>/``: an HMAC over the asset id, which
file and an expiry time, checked by ``asset_file`` below. Either way a link stops working after
``FILE_URL_MAX_AGE`` seconds and cannot be altered to reach another file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from functools import cache, cached_property

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.urls import reverse

from generation.models import Asset

from .selectors import visible_assets

FILE_URL_MAX_AGE = 3600
FIELDS = {"file": "file", "poster": "poster"}


class LinkSigner:
    """``<asset>.<which>.<expires>.<mac>``, mac = HMAC-SHA256 (first 128 bits) under a key
    derived once from SECRET_KEY.

    Django's TimestampSigner derives its HMAC key again on every call; a feed page signs up to
    500 links, so the key is derived once per process here.
    """

    _SALT = b"studio.catalog.asset-file"

    @cached_property
    def _key(self) -> bytes:
        return hashlib.sha256(self._SALT + settings.SECRET_KEY.encode()).digest()

    def _mac(self, payload: str) -> str:
        digest = hmac.digest(self._key, payload.encode(), "sha256")[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, asset_id: int, which: str) -> str:
        payload = f"{asset_id}.{which}.{int(time.time()) + FILE_URL_MAX_AGE}"
        return f"{payload}.{self._mac(payload)}"

    def unsign(self, token: str) -> tuple[int, str]:
        """(asset id, which) of a valid, unexpired token; ValueError otherwise."""
        payload, _, mac = token.rpartition(".")
        if not payload or not hmac.compare_digest(self._mac(payload), mac):
            raise ValueError("bad signature")
        asset_id, which, expires = payload.split(".")
        if int(expires) < time.time():
            raise ValueError("expired")
        return int(asset_id), which


_signer = LinkSigner()


def storage_signs_urls() -> bool:
    return bool(getattr(settings, "AWS_STORAGE_BUCKET_NAME", ""))


@cache
def _link_path(placeholder: str) -> str:
    return reverse("catalog:asset-file", args=[placeholder])


class FileLinks:
    """Makes the links for one response: the absolute URL prefix is resolved once, not per
    file (``reverse`` + ``build_absolute_uri`` cost more than the signature itself)."""

    _PLACEHOLDER = "TOKEN"

    def __init__(self, request) -> None:
        self.signed_by_storage = storage_signs_urls()
        if not self.signed_by_storage:
            template = request.build_absolute_uri(_link_path(self._PLACEHOLDER))
            self.head, self.tail = template.rsplit(self._PLACEHOLDER, 1)

    def url(self, *, asset_id: int, which: str, name: str) -> str | None:
        """An absolute, signed URL of an asset's ``file`` or ``poster`` (None if it has none)."""
        if not name:
            return None
        if self.signed_by_storage:
            return default_storage.url(name)
        return f"{self.head}{_signer.sign(asset_id, which)}{self.tail}"


def file_url(request, *, asset_id: int, which: str, name: str) -> str | None:
    """One link (serializers of single assets); lists make one FileLinks per response."""
    links = request.__dict__.get("_catalog_file_links")
    if links is None:
        links = request.__dict__["_catalog_file_links"] = FileLinks(request)
    return links.url(asset_id=asset_id, which=which, name=name)


def asset_file(request, token: str):
    """Serve a file behind a signed link (no token needed: the signature is the credential)."""
    try:
        asset_id, which = _signer.unsign(token)
        field = FIELDS[which]
        asset = visible_assets().get(pk=asset_id)
    except (ValueError, KeyError, Asset.DoesNotExist):
        raise Http404("No such file, or the link has expired.") from None
    file = getattr(asset, field)
    if not file:
        raise Http404("No such file.")
    response = FileResponse(file.open("rb"))
    response["Cache-Control"] = "private, max-age=3600"
    return response
