"""What the generator needs to reproduce a library face: a reference image, an optional FaceID
embedding and the attributes that go into the prompt."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

#: age band -> words CLIP understands ("30 year old woman")
_AGE_WORDS = {
    "18-24": "20 year old",
    "25-34": "30 year old",
    "35-44": "40 year old",
    "45-54": "50 year old",
    "55-64": "60 year old",
    "65+": "70 year old",
}
_GENDER_WORDS = {"feminine": "woman", "masculine": "man", "androgynous": "androgynous person"}
#: Monk scale -> a plain description (the number means nothing to a text encoder)
_SKIN_WORDS = {
    1: "very fair-skinned",
    2: "fair-skinned",
    3: "light-skinned",
    4: "light-skinned",
    5: "olive-skinned",
    6: "tan-skinned",
    7: "brown-skinned",
    8: "brown-skinned",
    9: "dark-skinned",
    10: "deep dark-skinned",
}
_REGION_WORDS = {
    "east_asia": "East Asian",
    "southeast_asia": "Southeast Asian",
    "south_asia": "South Asian",
    "central_asia": "Central Asian",
    "mena": "Middle Eastern",
    "sub_saharan_africa": "African",
    "europe": "European",
    "latin_america": "Latin American",
    "north_america": "North American",
    "oceania": "Pacific Islander",
}
_HAIR_LENGTH = {"short": "short", "medium": "medium-length", "long": "long"}


@dataclass
class FaceIdentity:
    image: Image.Image | None = None
    #: 512-d insightface embedding for IP-Adapter FaceID (dlib's 128-d one does not fit it)
    embedding: np.ndarray | None = None
    attributes: dict[str, str] = field(default_factory=dict)


def face_identity_inputs(face) -> FaceIdentity:
    """Identity inputs for ``face`` (None: no face, e.g. a garment-only render).

    ``image`` is the primary reference photo as stored (RGB, upright, <= 2048 px, it passed the
    gate), ``embedding`` its 512-d ArcFace embedding when insightface weights were installed when
    it was added (else None: the engine then uses the image only).
    """
    if face is None:
        return FaceIdentity()
    from .selectors import primary_reference

    ref = primary_reference(face=face)
    image = embedding = None
    if ref is not None:
        image = _open_rgb(ref.image)
        if ref.embedding_512:
            embedding = np.asarray(ref.embedding_512, dtype=np.float32)
    return FaceIdentity(image=image, embedding=embedding, attributes=prompt_attributes(face))


def prompt_attributes(face) -> dict[str, str]:
    """The keys ``generation.inference.diffusion.describe_face`` reads, from library fields."""
    attributes = {"code": face.code}
    if face.age_band in _AGE_WORDS:
        attributes["age"] = _AGE_WORDS[face.age_band]
    if face.gender_presentation in _GENDER_WORDS:
        attributes["gender"] = _GENDER_WORDS[face.gender_presentation]
    if face.skin_tone in _SKIN_WORDS:
        attributes["skin_tone"] = _SKIN_WORDS[face.skin_tone]
    regions = face.region_tags or []
    if len(regions) == 1 and regions[0] in _REGION_WORDS:
        # several tags (mixed heritage) have no short, fair description: leave it to the image
        attributes["ethnicity"] = _REGION_WORDS[regions[0]]
    hair = _hair_words(face.hair, face.hair_color)
    if hair:
        attributes["hair"] = hair
    if face.expression:
        attributes["expression"] = face.expression
    return attributes


def _hair_words(hair: str, color: str) -> str:
    if hair == "bald":
        return "shaved head"
    if hair == "covered":
        return "wearing a headscarf"
    color_word = {"grey": "grey", "dyed": "dyed"}.get(color, color)
    if hair == "braids":
        return " ".join(p for p in (color_word, "braided hair") if p)
    length = _HAIR_LENGTH.get(hair, "")
    if not (length or color_word):
        return ""
    return " ".join(p for p in (length, color_word, "hair") if p)


def _open_rgb(field_file) -> Image.Image:
    with field_file.open("rb") as handle:
        image = Image.open(handle)
        image.load()
    return image.convert("RGB")
