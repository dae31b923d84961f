"""face_identity_inputs: what the generation runner gets for a library face."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facelibrary import services
from facelibrary.identity import FaceIdentity, face_identity_inputs, prompt_attributes
from generation.inference.diffusion import describe_face

from .factories import DraftFaceFactory, FaceReferenceFactory, look

pytestmark = pytest.mark.django_db


def test_no_face_gives_empty_identity():
    assert face_identity_inputs(None) == FaceIdentity()


def test_primary_reference_image_and_attributes(face_bytes):
    face = DraftFaceFactory(
        **look("feminine", "25-34", 6, ["south_asia"], "smiling", "long", "black")
    )
    ref = services.reference_add(face=face, image_bytes=face_bytes(2), actor=None)
    identity = face_identity_inputs(face)
    assert isinstance(identity.image, Image.Image) and identity.image.mode == "RGB"
    assert identity.image.size == (ref.width, ref.height)
    assert identity.embedding is None  # no insightface weights: the engine uses the image
    assert identity.attributes == {
        "code": face.code,
        "age": "30 year old",
        "gender": "woman",
        "skin_tone": "tan-skinned",
        "ethnicity": "South Asian",
        "hair": "long black hair",
        "expression": "smiling",
    }
    assert describe_face(identity.attributes) == (
        "30 year old South Asian tan-skinned woman, long black hair, smiling expression"
    )


def test_stored_512d_embedding_is_handed_over():
    face = DraftFaceFactory()
    vector = list(np.linspace(-1, 1, 512))
    FaceReferenceFactory(face=face, embedding_512=vector)
    identity = face_identity_inputs(face)
    assert identity.embedding.shape == (512,) and identity.embedding.dtype == np.float32
    np.testing.assert_allclose(identity.embedding, vector, rtol=1e-6)


def test_face_without_photo_has_only_attributes():
    face = DraftFaceFactory(region_tags=["europe", "east_asia"], hair="covered")
    identity = face_identity_inputs(face)
    assert identity.image is None and identity.embedding is None
    assert "ethnicity" not in identity.attributes  # mixed heritage: left to the image
    assert identity.attributes["hair"] == "wearing a headscarf"


def test_face_embedding_property_feeds_qa():
    face = DraftFaceFactory()
    FaceReferenceFactory(face=face, embedding=[0.5] * 128)
    assert face.embedding == [0.5] * 128
    assert prompt_attributes(DraftFaceFactory(hair="", hair_color=""))["gender"] == "woman"
