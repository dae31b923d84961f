"""Reading and writing the image files behind shoots (storage-agnostic: local disk or S3)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import uuid

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
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
