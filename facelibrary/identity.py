"""What the generator needs to reproduce a library face: a reference image, an optional FaceID
embedding and the attributes that go into the prompt."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image


@dataclass
class FaceIdentity:
    image: Image.Image | None = None
    #: 512-d insightface embedding for IP-Adapter FaceID (dlib's 128-d one does not fit it)
    embedding: np.ndarray | None = None
    attributes: dict[str, str] = field(default_factory=dict)


def face_identity_inputs(face) -> FaceIdentity:
    """Identity inputs for ``face`` (None: no face, e.g. a garment-only render)."""
    if face is None:
        return FaceIdentity()
    return FaceIdentity(attributes={"code": face.code})
