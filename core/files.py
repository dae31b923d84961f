"""Stored files shared by every app: reading images, writing files under random names, safe display
names, and removing what a failed write left (storage-agnostic: local disk or S3).

Files are written outside any transaction (slow I/O), then the rows that point to them are
committed. ``stored_files()`` owns the files of one such unit of work: if anything in its block
fails (a later write, inference, the transaction), every file written in it is removed again::

    with stored_files() as files:
        name = files.store("photos", data, "png")
        ...  # more writes, then the transaction that records them
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import uuid
from collections.abc import Iterator

import numpy as np
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.text import get_valid_filename
from PIL import Image


def open_rgb(field_file) -> Image.Image:
    with field_file.open("rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image.convert("RGB")


def open_mask(field_file) -> np.ndarray:
    with field_file.open("rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return np.asarray(image.convert("L"))


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=3)
    return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StorageWriteError(OSError):
    """A file could not be written (disk full, storage unavailable). Nothing of it was kept.

    ``str()`` is the message for the seller; the technical cause is chained (``__cause__``).
    """

    SELLER_MESSAGE = (
        "The result could not be saved right now (storage full or unavailable). "
        "Nothing was kept; please try again later."
    )


def store(prefix: str, data: bytes, extension: str) -> str:
    """Write bytes under a random name (never a user-supplied one) and return the storage name.

    A failed write leaves nothing behind: Django's FileSystemStorage keeps the partial file when
    the disk fills up mid-write (ENOSPC), and the caller never learns its name to delete it. The
    name is a fresh uuid, so removing it here can only remove our own partial write.
    """
    name = f"{prefix}/{uuid.uuid4().hex}.{extension}"
    try:
        return default_storage.save(name, ContentFile(data))
    except Exception as exc:
        delete_quietly([name])
        raise StorageWriteError(StorageWriteError.SELLER_MESSAGE) from exc


def delete_quietly(names: list[str]) -> None:
    """Remove files written for a write that did not commit."""
    for name in names:
        with contextlib.suppress(OSError):
            default_storage.delete(name)


class StoredFiles:
    """The files written for one unit of work that has not committed yet (see ``stored_files``)."""

    def __init__(self) -> None:
        self._names: list[str] = []

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def store(self, prefix: str, data: bytes, extension: str) -> str:
        """``store()`` the bytes and own the file; a failed write leaves nothing (see there)."""
        name = store(prefix, data, extension)
        self._names.append(name)
        return name

    def track(self, name: str) -> str:
        """Own a file written some other way (e.g. ``FieldFile.save``)."""
        if name:
            self._names.append(name)
        return name

    def discard(self) -> None:
        """Remove every owned file now (the result is dropped without an exception)."""
        names, self._names = self._names, []
        delete_quietly(names)

    def keep(self) -> list[str]:
        """Hand the owned files on (their rows committed): nothing is removed for them any more."""
        names, self._names = self._names, []
        return names


@contextlib.contextmanager
def stored_files() -> Iterator[StoredFiles]:
    """Own the files written in the block: on any exception (also ``KeyboardInterrupt`` or a
    worker's shutdown) they are removed and the exception goes on; on success they are kept.

    End the block with the transaction that records the files, so a failure before it commits
    leaves neither rows nor files. Pass ``files`` to helpers that write on the caller's behalf.
    """
    files = StoredFiles()
    try:
        yield files
    except BaseException:
        files.discard()
        raise


def safe_display_name(name: str) -> str:
    """A harmless display name: no directories, no control characters, bounded length."""
    base = os.path.basename((name or "").replace("\\", "/"))
    try:
        cleaned = get_valid_filename(base) if base.strip(". ") else ""
    except SuspiciousFileOperation:  # nothing usable left (e.g. "👗", "%%%"): not a 400
        cleaned = ""
    return (cleaned or "photo")[:120]
