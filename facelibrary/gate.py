"""Preparing a reference photo: validate and decode it, run the quality gate, embed, thumbnail.

Pure computation on bytes (no database, no storage), so services can run it before and outside
any transaction. Two halves:

- ``decode_reference``: safe decoding and the stored PNG, with PIL only. The curator's admin
  stores an upload with it and leaves the gate to the ``analysis`` worker: a page request never
  loads the ML stack.
- ``gate_reference``: the gate itself (``generation.inference.faces``: dlib, mediapipe, OpenCV),
  the optional 512-d insightface embedding and the thumbnail centred on the face. The face
  models are imported by the functions that run them, never when this module is imported.

``prepare_reference`` is both at once (the import command and the face generator run it
synchronously: they are not page requests).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from PIL import Image

from core.files import sha256
from generation.inference.errors import ModelMissingError
from generation.inference.intake import encode_jpeg, encode_png, load_upload

if TYPE_CHECKING:
    from generation.inference.faces import FaceQualityReport, QualityCheck

log = logging.getLogger(__name__)

#: long side of the stored reference; the gate measures this very image
REFERENCE_MAX_SIDE = 2048
THUMBNAIL_SIZE = 256
#: the thumbnail shows the face box grown by this factor (hair and chin included)
_THUMBNAIL_CONTEXT = 1.8


@dataclass
class PreparedReference:
    """Everything a FaceReference row stores, computed from the uploaded bytes."""

    png: bytes
    thumbnail_jpeg: bytes
    width: int
    height: int
    source_sha256: str
    report: FaceQualityReport
    embedding_512: list[float] | None

    @property
    def embedding(self) -> list[float] | None:
        emb = self.report.embedding
        return [float(x) for x in emb] if emb is not None else None


@dataclass
class DecodedReference:
    """An uploaded photo, decoded and normalised: the image the gate measures and the PNG stored."""

    image: Image.Image
    png: bytes
    source_sha256: str

    @classmethod
    def from_stored_png(cls, png: bytes, source_sha256: str) -> DecodedReference:
        """The stored reference read back (PNG is lossless: the very pixels the upload gave)."""
        with Image.open(io.BytesIO(png)) as image:
            return cls(image=image.convert("RGB"), png=png, source_sha256=source_sha256)

    def placeholder_thumbnail(self) -> bytes:
        """The centre of the photo, shown until the gate has found the face."""
        return encode_jpeg(thumbnail(self.image, None), quality=88)


def decode_reference(data: bytes) -> DecodedReference:
    """Decode ``data`` safely (PIL only); raises InvalidImageError for a non-image."""
    intake = load_upload(
        data,
        max_bytes=settings.UPLOAD_MAX_BYTES,
        max_pixels=settings.UPLOAD_MAX_PIXELS,
        max_side=REFERENCE_MAX_SIDE,
    )
    image = intake.image
    return DecodedReference(image=image, png=encode_png(image), source_sha256=sha256(data))


def gate_reference(decoded: DecodedReference) -> PreparedReference:
    """Run the quality gate on a decoded photo (model inference: workers and commands only)."""
    from generation.inference.faces import assess_face_photo  # the ML stack, loaded lazily

    image = decoded.image
    report = assess_face_photo(image)
    return PreparedReference(
        png=decoded.png,
        thumbnail_jpeg=encode_jpeg(thumbnail(image, report.face_box), quality=88),
        width=image.width,
        height=image.height,
        source_sha256=decoded.source_sha256,
        report=report,
        embedding_512=_insightface_embedding(image, report),
    )


def prepare_reference(data: bytes) -> PreparedReference:
    """Decode ``data`` safely and run the gate on it; raises InvalidImageError for a non-image."""
    return gate_reference(decode_reference(data))


def _insightface_embedding(image: Image.Image, report: FaceQualityReport) -> list[float] | None:
    from generation.inference.faces import InsightFaceEmbedder

    if report.face is None:
        return None
    try:
        embedder = InsightFaceEmbedder(settings.MODEL_ROOT)
    except ModelMissingError:
        # Optional: FaceID needs it, the gate and duplicate search do not.
        log.debug("no insightface weights under %s; 512-d embedding skipped", settings.MODEL_ROOT)
        return None
    return [float(x) for x in embedder.embed(image, report.face)]


def thumbnail(image: Image.Image, face_box: tuple[int, int, int, int] | None) -> Image.Image:
    """A square THUMBNAIL_SIZE crop centred on the face (the image centre when there is none)."""
    width, height = image.size
    if face_box is not None:
        left, top, right, bottom = face_box
        cx, cy = (left + right) / 2, (top + bottom) / 2
        side = max(right - left, bottom - top) * _THUMBNAIL_CONTEXT
    else:
        cx, cy, side = width / 2, height / 2, min(width, height)
    side = min(side, width, height)
    left = min(max(0, cx - side / 2), width - side)
    top = min(max(0, cy - side / 2), height - side)
    crop = image.crop((round(left), round(top), round(left + side), round(top + side)))
    return crop.resize((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)


def same_person_check(
    embedding: list[float] | None, primary_embedding: list[float] | None
) -> QualityCheck | None:
    """Does a further reference show the same person as the face's primary reference?

    One identity may have several photos, but a photo of somebody else would make the generator
    mix two people; dlib's own same-person threshold decides.
    """
    from generation.inference.faces import (
        DLIB_SAME_PERSON_THRESHOLD,
        QualityCheck,
        face_distance,
    )

    if embedding is None or primary_embedding is None:
        return None
    distance = face_distance(embedding, primary_embedding)
    passed = distance < DLIB_SAME_PERSON_THRESHOLD
    message = (
        f"Same person as the primary reference (distance {distance:.2f})."
        if passed
        else f"This photo shows a different person than the face's primary reference "
        f"(identity distance {distance:.2f}; the same person is below "
        f"{DLIB_SAME_PERSON_THRESHOLD:.2f}). Add it as a new face instead."
    )
    return QualityCheck("same_person", distance, DLIB_SAME_PERSON_THRESHOLD, passed, message)
